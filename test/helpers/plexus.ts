// Running the built executable exactly as a container runtime does: a fresh process per call,
// CNI_* in a clean environment, the config on stdin.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { after } from 'node:test';

export const ROOT = resolve(__dirname, '..', '..');
export const PLEXUS = join(ROOT, 'dist', 'bin', 'plexus');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

/**
 * Which plugins the meta-plugin's delegates are in the e2e suites (scripts/test.sh runs them with
 * both): `reference`, the reference plugins exec'd; `builtin`, plexus's own macvlan, ipvlan,
 * bridge, host-device and IPAM (host-local, static) run in-process, the other plugins still the
 * reference ones.
 */
export type DelegateSet = 'reference' | 'builtin';

function delegateSet(v: string | undefined): DelegateSet {
  if (v === undefined || v === '' || v === 'reference') return 'reference';
  if (v === 'builtin') return 'builtin';
  throw new Error(`PLEXUS_TEST_DELEGATES=${v}: expected reference or builtin`);
}

export const DELEGATES: DelegateSet = delegateSet(process.env.PLEXUS_TEST_DELEGATES);

/** CNI_PATH when a call names none: where the delegate set's plugins are found. */
export const DELEGATE_PATH = DELEGATES === 'builtin' ? `${dirname(PLEXUS)}:${REFERENCE_PLUGINS}` : REFERENCE_PLUGINS;

/** A test's name saying which delegate set ran it, so a failure report is unambiguous. */
export function named(name: string): string {
  return DELEGATES === 'builtin' ? `${name} [built-in delegates]` : name;
}

/** The first `type` on DELEGATE_PATH, as a plugin on CNI_PATH is found. */
export function delegateBin(type: string): string {
  for (const dir of DELEGATE_PATH.split(':')) {
    if (existsSync(join(dir, type))) return join(dir, type);
  }
  throw new Error(`${type} is not on ${DELEGATE_PATH}`);
}

export interface Invocation {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  stdin: string;
  env?: Record<string, string | undefined>;
  bin?: string;
}

export interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
  json(): Record<string, unknown>;
}

export function requireBuild(): void {
  if (!existsSync(PLEXUS)) throw new Error(`${PLEXUS} is missing: run make build first`);
}

/** The environment a runtime would give a plugin: no NODE_EXTRA_CA_CERTS, nothing inherited. */
export function runtimeEnv(inv: Invocation): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: inv.command };
  if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
  if (inv.args !== undefined) env.CNI_ARGS = inv.args;
  env.CNI_PATH = inv.path ?? DELEGATE_PATH;
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

let inProcessRuns = 0;
let inProcessIpam = 0;

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** The fields of a pino line that matter here. */
interface LogLine {
  level?: unknown;
  msg?: unknown;
  bin?: unknown;
}

function logLine(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a meta-plugin's debug log (a call's stderr, or a daemon's): counts the delegates and IPAM
 * plugins that ran in-process and throws if one was exec'd although its binary is plexus itself,
 * since a built-in that silently fell back to exec would make the built-in pass prove nothing.
 */
export function checkDelegateLog(stderr: string, what: string): void {
  const self = realpathOr(PLEXUS);
  const wrong: string[] = [];
  for (const line of stderr.split('\n')) {
    const l = logLine(line);
    if (l?.msg === 'delegate runs in-process') inProcessRuns++;
    else if (l?.msg === 'ipam runs in-process') inProcessIpam++;
    else if ((l?.msg === 'delegate exec' || l?.msg === 'ipam exec') && typeof l.bin === 'string' && realpathOr(l.bin) === self) wrong.push(line);
  }
  if (wrong.length > 0) throw new Error(`${what}: the meta-plugin exec'd plexus instead of running the delegate in-process:\n${wrong.join('\n')}`);
}

/**
 * For an e2e file: in built-in mode the file fails unless at least one delegate ran in-process,
 * so a pass that quietly ran only reference plugins cannot look green.
 */
export function requireInProcessDelegates(): void {
  if (DELEGATES !== 'builtin') return;
  const file = relative(ROOT, process.argv[1] ?? '');
  after((t) => {
    // A file's root hook gets a TestContext; the type also allows a suite's, which has no diagnostic.
    const say = (msg: string) => ('diagnostic' in t ? t.diagnostic(msg) : process.stderr.write(`${msg}\n`));
    if (inProcessRuns > 0) {
      say(`${file}: ${inProcessRuns} delegate and ${inProcessIpam} IPAM runs in-process, none of plexus exec'd`);
      return;
    }
    // Not a throw: a failing hook skips the file's later after hooks (its API server's close, say)
    // and the file would hang. A non-zero exit fails the file in the runner's counts all the same.
    say(`FAIL: PLEXUS_TEST_DELEGATES=builtin but no delegate ran in-process in ${file} (CNI_PATH ${DELEGATE_PATH})`);
    process.exitCode = 1;
  });
}

/** pino's numeric level of "error", the meta-plugin's default. */
const DEFAULT_LEVEL = 50;

/**
 * In built-in mode, a meta-plugin configuration that sets no logging gets logLevel debug, so the
 * call's "delegate runs in-process" / "delegate exec" lines can be checked. Not one naming a
 * daemon: the daemon does the work and logs there (e2e-daemon checks its log), and the per-call
 * process must stay silent. Returns undefined when the stdin is left as it is.
 */
function withDebugLog(inv: Invocation): string | undefined {
  if (DELEGATES !== 'builtin') return undefined;
  let conf: unknown;
  try {
    conf = JSON.parse(inv.stdin);
  } catch {
    return undefined;
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return undefined;
  const c = conf as Record<string, unknown>;
  if (typeof c.type !== 'string' || !c.type.startsWith('plexus')) return undefined;
  if (['logLevel', 'logFile', 'logToStderr', 'daemonSocketDir'].some((k) => k in c)) return undefined;
  return JSON.stringify({ ...c, logLevel: 'debug' });
}

/** stderr as the test would have seen it without the injected debug level. */
function withoutInjected(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => {
      const level = logLine(line)?.level;
      return !(typeof level === 'number' && level < DEFAULT_LEVEL);
    })
    .join('\n');
}

/**
 * Async on purpose: the test API server lives in this process and must keep serving. Every call's
 * stderr goes through checkDelegateLog; in built-in mode the debug level it needs is injected and
 * its lines taken out again, so tests asserting on stderr see what they would have.
 */
export function runPlugin(inv: Invocation): Promise<Outcome> {
  const injected = withDebugLog(inv);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(inv.bin ?? PLEXUS, [], { env: runtimeEnv(inv), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(injected ?? inv.stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      try {
        checkDelegateLog(stderr, `${inv.command} (exit ${status})`);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const seen = injected === undefined ? stderr : withoutInjected(stderr);
      resolvePromise({
        status,
        stdout,
        stderr: seen,
        json() {
          return JSON.parse(stdout) as Record<string, unknown>;
        },
      });
    });
  });
}
