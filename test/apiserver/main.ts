// Runs the test apiserver on its own, for `make demo` and benchmarks:
//   node --import tsx test/apiserver/main.ts [--port N] [--tls] [--token T] [--admin-token A] [--state-dir DIR] [--no-rbac]
// Prints one JSON line {url, port, pid, ca?, kubeconfig?} once it listens; with --state-dir it
// writes DIR/ca.crt and DIR/kubeconfig there. Exits 0 on SIGTERM/SIGINT after closing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startApiServer } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      tls: { type: 'boolean', default: false },
      token: { type: 'string' },
      // for seeding objects as kubectl would: exempt from RBAC (system:masters)
      'admin-token': { type: 'string' },
      'state-dir': { type: 'string' },
      // RBAC is deploy/'s ClusterRole by default, as in every test; off for raw REST checks.
      'no-rbac': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port: ${values.port}`);
  const api = await startApiServer({ port, tls: values.tls, ...(values.token ? { token: values.token } : {}), ...(values['admin-token'] ? { adminToken: values['admin-token'] } : {}), ...(values['no-rbac'] ? { rbac: false as const } : {}) });
  const out: Record<string, string | number> = { url: api.url, port: api.port, pid: process.pid };
  const dir = values['state-dir'];
  if (dir) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (api.caPem) {
      out.ca = resolve(join(dir, 'ca.crt'));
      writeFileSync(out.ca, api.caPem);
    }
    out.kubeconfig = resolve(join(dir, 'kubeconfig'));
    // The CA file in the kubeconfig must outlive the server's own temp dir: point at the copy.
    api.writeKubeconfig(out.kubeconfig, api.caPem ? { ca: 'data' } : {});
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    api.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`apiserver: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
