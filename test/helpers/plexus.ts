// Running the built executable exactly as a container runtime does: a fresh process per call,
// CNI_* in a clean environment, the config on stdin.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const PLEXUS = join(ROOT, 'dist', 'bin', 'plexus');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

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
  env.CNI_PATH = inv.path ?? REFERENCE_PLUGINS;
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Async on purpose: the test API server lives in this process and must keep serving. */
export function runPlugin(inv: Invocation): Promise<Outcome> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(inv.bin ?? PLEXUS, [], { env: runtimeEnv(inv), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(inv.stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolvePromise({
        status,
        stdout,
        stderr,
        json() {
          return JSON.parse(stdout) as Record<string, unknown>;
        },
      });
    });
  });
}
