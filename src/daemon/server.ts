// `plexus daemon [socketDir]`: the meta-plugin resident, so the API client, its TLS session and
// the code are loaded once instead of on every pod operation. Each request runs exactly the code a
// one-shot call runs (the same skel dispatch); only the process is shared.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { readEnv } from '../cni/env';
import { asCniError, Code } from '../cni/errors';
import { dispatch } from '../cni/skel';
import { LATEST_VERSION, SUPPORTED_VERSIONS } from '../cni/version';
import { metaPlugin } from '../delegates/meta';
import { formatReply, parseRequest, SOCKET_NAME, type DaemonReply } from './protocol';

function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && SUPPORTED_VERSIONS.includes(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

export async function handle(data: string): Promise<DaemonReply> {
  const req = parseRequest(data);
  if (!req) return { status: 1, stdout: JSON.stringify({ cniVersion: LATEST_VERSION, code: Code.DecodeFailure, msg: 'plexus daemon: malformed request' }) + '\n' };
  try {
    const env = readEnv(req.env);
    return { status: 0, stdout: await dispatch(metaPlugin, env, req.stdin, { env: req.env }) };
  } catch (err) {
    return { status: 1, stdout: JSON.stringify(asCniError(err).toJSON(versionOf(req.stdin))) + '\n' };
  }
}

function serve(sock: Socket): void {
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  // The request ends where the shim half-closes its side.
  sock.on('end', () => {
    void handle(Buffer.concat(chunks).toString('utf8')).then((reply) => sock.end(formatReply(reply)));
  });
  sock.on('error', () => undefined);
}

export async function runDaemon(socketDir: string): Promise<void> {
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  const path = join(socketDir, SOCKET_NAME);
  rmSync(path, { force: true });
  // The shim half-closes after its request; the answer still has to go back on the same socket.
  const server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  process.stderr.write(`plexus daemon: listening on ${path}\n`);
  const stop = () => {
    rmSync(path, { force: true });
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
