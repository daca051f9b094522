// The shim and the daemon speak one JSON object each way over a unix socket, newline-terminated:
// the CNI call as the runtime made it, and what the plugin would have printed and exited with.
import { isObject } from '../cni/validate';

export interface DaemonRequest {
  env: Record<string, string>;
  stdin: string;
}

export interface DaemonReply {
  stdout: string;
  status: number;
}

export const SOCKET_NAME = 'plexus.sock';
/** The environment the shim forwards: the CNI variables, nothing else of the caller's. */
export const FORWARDED_ENV = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH', 'CNI_NETNS_OVERRIDE'];

export function parseRequest(line: string): DaemonRequest | undefined {
  try {
    const v: unknown = JSON.parse(line);
    if (!isObject(v) || typeof v.stdin !== 'string' || !isObject(v.env)) return undefined;
    const env: Record<string, string> = {};
    for (const k of FORWARDED_ENV) {
      const val = v.env[k];
      if (typeof val === 'string') env[k] = val;
    }
    return { env, stdin: v.stdin };
  } catch {
    return undefined;
  }
}

export function parseReply(line: string): DaemonReply | undefined {
  try {
    const v: unknown = JSON.parse(line);
    if (!isObject(v) || typeof v.stdout !== 'string' || typeof v.status !== 'number') return undefined;
    return { stdout: v.stdout, status: v.status };
  } catch {
    return undefined;
  }
}
