// The shims and the daemon speak a framing simple enough for the C shim to write without a JSON
// library. Request: "PLEXUS1\n", one "KEY=value\n" line per forwarded CNI variable, an empty line,
// then stdin's bytes until the shim half-closes. Reply: the exit status in decimal and "\n", then
// stdout's bytes until the daemon closes.

export interface DaemonRequest {
  env: Record<string, string>;
  stdin: string;
}

export interface DaemonReply {
  stdout: string;
  status: number;
}

export const SOCKET_NAME = 'plexus.sock';
const MAGIC = 'PLEXUS1';
/** The environment the shims forward: the CNI variables, nothing else of the caller's. */
export const FORWARDED_ENV = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH', 'CNI_NETNS_OVERRIDE'];

/** undefined when a value cannot be framed (a newline in it): the caller then runs locally. */
export function formatRequest(env: NodeJS.ProcessEnv, stdin: string): string | undefined {
  const lines = [MAGIC];
  for (const k of FORWARDED_ENV) {
    const v = env[k];
    if (v === undefined) continue;
    if (v.includes('\n')) return undefined;
    lines.push(`${k}=${v}`);
  }
  return `${lines.join('\n')}\n\n${stdin}`;
}

export function parseRequest(data: string): DaemonRequest | undefined {
  const end = data.indexOf('\n\n');
  if (end < 0) return undefined;
  const [magic, ...vars] = data.slice(0, end).split('\n');
  if (magic !== MAGIC) return undefined;
  const env: Record<string, string> = {};
  for (const line of vars) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    if (eq > 0 && FORWARDED_ENV.includes(key)) env[key] = line.slice(eq + 1);
  }
  return { env, stdin: data.slice(end + 2) };
}

export function formatReply(r: DaemonReply): string {
  return `${r.status}\n${r.stdout}`;
}

export function parseReply(data: string): DaemonReply | undefined {
  const nl = data.indexOf('\n');
  if (nl < 0) return undefined;
  const status = Number(data.slice(0, nl));
  if (!Number.isInteger(status) || data.slice(0, nl).trim() === '') return undefined;
  return { status, stdout: data.slice(nl + 1) };
}
