// What the pod benchmarks share: the test API server in its own process (TLS, bearer token), the
// pod and NAD objects in it, the pod's netns, and running plugins untimed to set up or undo a run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import type { Step } from './lib';

export const ROOT = resolve(__dirname, '..');
export const PLEXUS = join(ROOT, 'dist', 'bin', 'plexus');
export const REF = '/usr/lib/cni';
export const OURS = join(ROOT, 'dist', 'bin');
export const TOKEN = 'bench-token';
// Seeding pods and NADs is an admin's job (kubectl); plexus's TOKEN is held to deploy/'s ClusterRole.
export const ADMIN_TOKEN = 'bench-admin-token';
export const PATH_ENV = '/usr/sbin:/usr/bin:/sbin:/bin';

export function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
}
export const quiet = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' });

export interface Api {
  proc: ChildProcess;
  url: string;
  ca: string;
  kubeconfig: string;
}

export async function startApi(dir: string): Promise<Api> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/apiserver/main.ts'), '--tls', '--token', TOKEN, '--admin-token', ADMIN_TOKEN, '--state-dir', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '' },
  });
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) res(buf.slice(0, nl));
    });
    proc.on('exit', (code) => rej(new Error(`test API exited with ${code}`)));
  });
  const info = JSON.parse(line) as { url: string; ca: string; kubeconfig: string };
  return { proc, url: info.url, ca: readFileSync(info.ca, 'utf8'), kubeconfig: info.kubeconfig };
}

export function post(api: Api, path: string, body: object): Promise<{ metadata: { uid: string } }> {
  return new Promise((res, rej) => {
    const data = JSON.stringify(body);
    const req = request(`${api.url}${path}`, { method: 'POST', ca: api.ca, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } }, (r) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString()));
      r.on('end', () => ((r.statusCode ?? 500) < 300 ? res(JSON.parse(text) as { metadata: { uid: string } }) : rej(new Error(`POST ${path}: ${r.statusCode} ${text}`))));
    });
    req.on('error', rej);
    req.end(data);
  });
}

export interface Net {
  name: string;
  ifname: string;
  conf: Record<string, unknown>;
  /** What the pod's selection element asks of this network (ips, mac), as runtimeConfig keys. */
  request?: Record<string, unknown>;
}

/** Creates the pod (selecting `secondaries` by `annotation`) and one NAD per secondary network. */
export async function createPod(api: Api, namespace: string, pod: string, annotations: Record<string, string>, secondaries: Net[]): Promise<string> {
  const created = await post(api, `/api/v1/namespaces/${namespace}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace, annotations } });
  for (const n of secondaries) {
    await post(api, `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`, {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name: n.name, namespace },
      spec: { config: JSON.stringify(n.conf) },
    });
  }
  return created.metadata.uid;
}

/** A fresh, empty network namespace `name`. */
export function freshNs(name: string): void {
  quiet('ip', 'netns', 'del', name);
  sh('ip', 'netns', 'add', name);
}

/**
 * Runs steps untimed (the set-up or undo of a run). `onAdd` sees each direct plugin ADD's result,
 * which a CHECK of the floor needs as prevResult.
 */
export function runSteps(steps: Step[], onAdd?: (step: Step, stdout: Buffer) => void): void {
  for (const s of steps) {
    const r = spawnSync(s.cmd, [], { env: { PATH: PATH_ENV, ...s.env }, input: s.input, argv0: s.argv0 ?? s.cmd });
    if (r.status !== (s.status ?? 0)) throw new Error(`setup ${s.cmd}: ${r.stdout}${r.stderr}`);
    if (s.env?.CNI_COMMAND === 'ADD') onAdd?.(s, r.stdout);
  }
}

/**
 * The floor: each network's plugin called directly, in order (reverse for DEL), as a runtime
 * would call them without a meta-plugin. A network's `request` reaches it as runtimeConfig.
 */
export function directSteps(nets: Net[], command: string, pluginDir: string, env: (command: string, ifname: string) => Record<string, string>): Step[] {
  const order = command === 'DEL' ? [...nets].reverse() : nets;
  return order.map((n) => {
    const conf = n.request ? { ...n.conf, runtimeConfig: n.request } : n.conf;
    return { cmd: join(pluginDir, String(n.conf.type)), env: env(command, n.ifname), input: JSON.stringify(conf) };
  });
}
