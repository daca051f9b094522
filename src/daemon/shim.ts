// The per-call side of daemon mode: forward the CNI call to a resident plexus over a unix socket
// and print its answer. When the daemon is not there, answer `undefined` so the caller does the
// work itself: a stopped daemon must never leave a pod that cannot be attached or torn down.
// Once sent, a call whose answer is lost is never redone here, except DEL: DEL is idempotent, so
// when the daemon dies or closes without answering, the caller runs the DEL itself (a DEL that
// the runtime has to retry is a DEL that may never come, and a leaked IP or journal record).
import { connect } from 'node:net';
import { join } from 'node:path';
import { formatRequest, parseReply, SOCKET_NAME, type DaemonReply } from './protocol';

/** The socket the config points at (`daemonSocketDir`, Multus's thick-plugin key), if any. */
export function daemonSocketOf(stdin: string): string | undefined {
  if (!stdin.includes('daemonSocketDir')) return undefined;
  try {
    const v: unknown = JSON.parse(stdin);
    if (v && typeof v === 'object' && 'daemonSocketDir' in v) {
      const dir = (v as { daemonSocketDir: unknown }).daemonSocketDir;
      if (typeof dir === 'string' && dir !== '') return join(dir, SOCKET_NAME);
    }
  } catch {
    // malformed stdin: the meta-plugin reports it precisely
  }
  return undefined;
}

function retryable(socket: string, what: string): DaemonReply {
  return { status: 1, stdout: JSON.stringify({ cniVersion: '1.1.0', code: 11, msg: `plexus daemon at ${socket} ${what}; retry` }) + '\n' };
}

export function forward(socket: string, env: NodeJS.ProcessEnv, stdin: string, timeoutMs = 300_000): Promise<DaemonReply | undefined> {
  const request = formatRequest(env, stdin);
  if (request === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let buf = '';
    let sent = false;
    const s = connect(socket);
    s.setTimeout(timeoutMs, () => s.destroy(new Error('timeout')));
    s.on('connect', () => {
      sent = true;
      s.end(request);
    });
    s.on('data', (c: Buffer) => (buf += c.toString('utf8')));
    // Unreachable before sending: the caller does the work itself. After sending, the daemon may
    // have acted, so a lost answer is a retryable failure, never silently redone here (but DEL).
    const redo = env.CNI_COMMAND === 'DEL';
    s.on('error', () => resolve(sent && !redo ? retryable(socket, 'failed mid-call') : undefined));
    s.on('close', () => {
      const reply = parseReply(buf);
      if (reply) resolve(reply);
      else resolve(sent && !redo ? retryable(socket, 'closed without an answer') : undefined);
    });
  });
}
