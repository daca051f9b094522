// Running a plugin binary the way libcni's invoke package does: found on a search path, config on
// stdin, the result or a CNI error on stdout, stderr passed through to ours.
import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code, PluginExecError } from './errors';
import { isObject } from './validate';

export interface PluginRun {
  verb: string;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string[];
}

/** The first executable named `type` on `path`, or undefined. */
export function findPlugin(type: string, path: readonly string[]): string | undefined {
  if (type === '' || type.includes('/')) return undefined;
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: keep looking, like exec.LookPath over CNI_PATH
    }
  }
  return undefined;
}

export function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function pluginEnv(run: PluginRun): NodeJS.ProcessEnv {
  // Delegates see our environment with only the CNI_* values overridden (invoke.DelegateAdd).
  const env: NodeJS.ProcessEnv = { ...process.env };
  env.CNI_COMMAND = run.verb;
  env.CNI_CONTAINERID = run.containerId;
  env.CNI_NETNS = run.netns;
  env.CNI_IFNAME = run.ifname;
  env.CNI_ARGS = run.args;
  env.CNI_PATH = run.path.join(':');
  return env;
}

interface ExecOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
}

function spawnOnce(bin: string, env: NodeJS.ProcessEnv, stdin: string): Promise<ExecOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    // A plugin may exit before reading its stdin (VERSION, or an early error): ignore EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(chunks) }));
  });
}

const TEXT_BUSY_RETRIES = 5;

/**
 * Executes a plugin and returns its stdout. A non-zero exit becomes a CniError carrying the
 * plugin's own code and message, so the runtime sees what the plugin said.
 */
export async function execPlugin(bin: string, run: PluginRun, stdin: string): Promise<Buffer> {
  const env = pluginEnv(run);
  let out: ExecOutput | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      out = await spawnOnce(bin, env, stdin);
      break;
    } catch (err) {
      // An upgrade that is replacing the binary right now: libcni retries "text file busy".
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ETXTBSY' && attempt < TEXT_BUSY_RETRIES) {
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        continue;
      }
      throw new PluginExecError(Code.TryAgainLater, `exec ${bin}: ${(err as Error).message}`);
    }
  }
  if (out.code === 0) return out.stdout;
  throw pluginFailure(bin, out);
}

function pluginFailure(bin: string, out: ExecOutput): CniError {
  const text = out.stdout.toString('utf8').trim();
  if (text !== '') {
    try {
      const parsed: unknown = JSON.parse(text);
      if (isObject(parsed) && typeof parsed.msg === 'string') {
        const code = typeof parsed.code === 'number' ? parsed.code : Code.Internal;
        const details = typeof parsed.details === 'string' ? parsed.details : '';
        return new CniError(code, parsed.msg, details);
      }
    } catch {
      // not a CNI error object: report the raw output below
    }
  }
  const how = out.signal ? `was killed by ${out.signal}` : `exited with status ${out.code}`;
  if (out.signal) return new PluginExecError(Code.TryAgainLater, `${bin} ${how}${text ? `: ${text.slice(0, 500)}` : ''}`);
  return new CniError(Code.Internal, `${bin} ${how}${text ? `: ${text.slice(0, 500)}` : ' and printed no error'}`);
}
