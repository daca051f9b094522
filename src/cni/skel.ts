// The plugin side of the exec protocol, like libcni's skel: read env and stdin, guard versions,
// dispatch the verb, print the result or a CNI error on stdout. Logs never go to stdout.
import { readFileSync, statSync } from 'node:fs';
import { CniError, Code, asCniError } from './errors';
import { readEnv, type CniEnv, type Verb } from './env';
import { atLeast, SUPPORTED_VERSIONS, LATEST_VERSION } from './version';
import { isObject } from './validate';

export interface PluginHandlers {
  add(env: CniEnv, stdin: string): Promise<string>;
  del(env: CniEnv, stdin: string): Promise<void>;
  check(env: CniEnv, stdin: string): Promise<void>;
  status(env: CniEnv, stdin: string): Promise<void>;
  gc(env: CniEnv, stdin: string): Promise<void>;
}

export interface SkelIO {
  env: NodeJS.ProcessEnv;
  readStdin(): string;
  write(s: string): void;
}

export const processIO: SkelIO = {
  env: process.env,
  readStdin: () => {
    try {
      return readFileSync(0, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EOF') return '';
      throw new CniError(Code.IOFailure, `reading stdin: ${(err as Error).message}`);
    }
  },
  write: (s) => process.stdout.write(s),
};

export function versionReply(): string {
  return JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n';
}

/** The cniVersion the request names, for version guards and the error object; "" when unknown. */
function requestVersion(stdin: string): string {
  try {
    const v: unknown = JSON.parse(stdin);
    if (isObject(v) && typeof v.cniVersion === 'string') return v.cniVersion;
  } catch {
    // the handler reports malformed JSON with a precise message
  }
  return '';
}

const MIN_VERSION: Partial<Record<Verb, string>> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

function sameNetns(path: string): boolean {
  try {
    const a = statSync(path);
    const b = statSync('/proc/self/ns/net');
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/**
 * One guarded call into a plugin's handlers: version checks, then the verb. Returns what goes on
 * stdout (empty for verbs without output). Shared by the process entry and in-process delegation,
 * so a plugin behaves the same whichever way it runs.
 */
export async function dispatch(handlers: PluginHandlers, env: CniEnv, stdin: string, io: Pick<SkelIO, 'env'> = processIO): Promise<string> {
  if (env.command === 'VERSION') return versionReply();
  const version = requestVersion(stdin);
  if (version !== '' && !SUPPORTED_VERSIONS.includes(version)) {
    throw new CniError(Code.IncompatibleVersion, `cniVersion: ${JSON.stringify(version)} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  }
  const min = MIN_VERSION[env.command];
  if (min && version !== '' && !atLeast(version, min)) {
    throw new CniError(Code.IncompatibleVersion, `cniVersion: ${env.command} needs ${min} or later, the configuration says ${version}`);
  }
  if ((env.command === 'ADD' || env.command === 'DEL') && env.netns !== '' && !io.env.CNI_NETNS_OVERRIDE && sameNetns(env.netns)) {
    throw new CniError(Code.InvalidNetns, `CNI_NETNS ${env.netns} is the plugin's own network namespace`);
  }
  switch (env.command) {
    case 'ADD':
      return (await handlers.add(env, stdin)) + '\n';
    case 'DEL':
      await handlers.del(env, stdin);
      return '';
    case 'CHECK':
      await handlers.check(env, stdin);
      return '';
    case 'STATUS':
      await handlers.status(env, stdin);
      return '';
    case 'GC':
      await handlers.gc(env, stdin);
      return '';
  }
}

/** Runs one CNI invocation; returns the process exit code. */
export async function pluginMain(handlers: PluginHandlers, io: SkelIO = processIO): Promise<number> {
  let version = '';
  try {
    const env = readEnv(io.env);
    if (env.command === 'VERSION') {
      io.write(versionReply());
      return 0;
    }
    const stdin = io.readStdin();
    version = requestVersion(stdin);
    io.write(await dispatch(handlers, env, stdin, io));
    return 0;
  } catch (err) {
    const e = asCniError(err);
    io.write(JSON.stringify(e.toJSON(SUPPORTED_VERSIONS.includes(version) ? version : LATEST_VERSION)) + '\n');
    return 1;
  }
}
