// Running plexus as a container runtime does: a fresh process per call, CNI_* in a clean
// environment (no NODE_EXTRA_CA_CERTS, nothing else inherited), the config on stdin.
import { spawn, type ChildProcess } from 'node:child_process';

export interface CniCall {
  command: 'ADD' | 'CHECK' | 'DEL';
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
  stdin: string;
}

export interface CniOutcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment containerd gives a plugin (go-cni/libcni set exactly these CNI_* keys). */
export function cniEnv(call: CniCall): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname,
    CNI_ARGS: call.args,
    CNI_PATH: call.path,
  };
}

const running = new Set<ChildProcess>();

/** Stops the plugins in flight (Ctrl-C, SIGTERM): their callers then see a signal outcome. */
export function stopRunning(): void {
  for (const child of running) {
    if (child.pid === undefined) continue;
    // The whole group: a delegate plexus started must not outlive it and create a bridge or
    // veth after the clean-up already looked for them.
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
  }
}

/**
 * Async on purpose: the test API server lives in this process, and a spawnSync would block the
 * event loop so the server could never answer plexus.
 */
export function runPlexus(bin: string, call: CniCall): Promise<CniOutcome> {
  return new Promise((resolve, reject) => {
    // Its own process group: a Ctrl-C reaches only the demo, which decides what to stop (it
    // SIGTERMs a call in flight, but lets the clean-up DEL finish even on a second Ctrl-C).
    const child = spawn(bin, [], { env: cniEnv(call), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // A plugin that exits before reading stdin must not crash the demo with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(call.stdin);
    // Runtimes bound every CNI call; containerd's default is minutes, a demo needs far less.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** The CNI error a plugin printed, else its stderr: what an operator would need to see. */
export function describeFailure(out: CniOutcome): string {
  if (out.signal) return `killed by ${out.signal}`;
  try {
    const err = JSON.parse(out.stdout) as { code?: number; msg?: string; details?: string };
    const details = err.details ? ` (${err.details})` : '';
    return `exit ${out.status}, CNI error ${err.code}: ${err.msg}${details}`;
  } catch {
    return `exit ${out.status}: ${(out.stdout + out.stderr).trim().slice(0, 2000)}`;
  }
}
