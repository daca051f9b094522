// The CNI exec protocol's environment, validated as libcni's skel and utils do.
import { CniError, Code } from './errors';

export const VERBS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type Verb = (typeof VERBS)[number];

export interface CniEnv {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string[];
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Why an interface name is unusable, or undefined if it is fine (libcni ValidateInterfaceName). */
export function ifnameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 bytes';
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'may not contain "/", ":" or whitespace';
  return undefined;
}

export function containerIdProblem(id: string): string | undefined {
  if (id === '') return 'is empty';
  if (!CONTAINER_ID.test(id)) return 'must match [a-zA-Z0-9][a-zA-Z0-9_.-]*';
  return undefined;
}

function isVerb(s: string): s is Verb {
  return (VERBS as readonly string[]).includes(s);
}

/** Reads and validates the variables each verb needs (SPEC.md §2, skel getCmdArgsFromEnv). */
export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (command === '') throw new CniError(Code.InvalidEnv, 'CNI_COMMAND is not set');
  if (!isVerb(command)) throw new CniError(Code.InvalidEnv, `CNI_COMMAND: unknown command ${JSON.stringify(command)}`);

  const needs = (name: string): boolean => {
    switch (command) {
      case 'ADD':
      case 'CHECK':
        return ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'].includes(name);
      case 'DEL':
        return ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'].includes(name);
      case 'GC':
      case 'STATUS':
        return name === 'CNI_PATH';
      default:
        return false;
    }
  };
  const missing = ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'].filter((n) => needs(n) && !env[n]);
  if (missing.length > 0) {
    throw new CniError(Code.InvalidEnv, `required environment variables missing for ${command}: ${missing.join(', ')}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (needs('CNI_CONTAINERID')) {
    const p = containerIdProblem(containerId);
    if (p) throw new CniError(Code.InvalidEnv, `CNI_CONTAINERID ${JSON.stringify(containerId)} ${p}`);
  }
  if (needs('CNI_IFNAME')) {
    const p = ifnameProblem(ifname);
    if (p) throw new CniError(Code.InvalidEnv, `CNI_IFNAME ${JSON.stringify(ifname)} ${p}`);
  }
  const netns = env.CNI_NETNS ?? '';
  if (netns !== '' && !netns.startsWith('/')) {
    throw new CniError(Code.InvalidEnv, `CNI_NETNS ${JSON.stringify(netns)} must be an absolute path`);
  }
  return {
    command,
    containerId,
    netns,
    ifname,
    args: env.CNI_ARGS ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}
