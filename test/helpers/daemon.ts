// Resident plexus processes for tests, each waited for by its own "listening on" line (no
// sleeping): `plexus daemon DIR` for e2e tests (stopped with SIGTERM, its delegate log checked as a
// one-shot call's is), and the node agent `plexus daemon --config FILE` with its metrics socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import type { JsonObject } from '../../src/cni/validate';
import type { Cleanup } from './host';
import { checkDelegateLog, PLEXUS } from './plexus';

export interface Daemon {
  /** Everything the daemon wrote to stderr so far: it logs the requests it serves. */
  log(): string;
  /** SIGTERM, then its delegate log checked; once only. */
  stop(): Promise<void>;
}

export function startDaemon(dir: string): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const d = spawn(PLEXUS, ['daemon', dir], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let err = '';
    // 'close', not 'exit': the log is complete only once stderr is read to the end.
    const closed = new Promise<void>((done) => d.once('close', () => done()));
    let stopped: Promise<void> | undefined;
    const stop = async () => {
      if (d.exitCode === null && d.signalCode === null) d.kill('SIGTERM');
      await closed;
      checkDelegateLog(err, 'plexus daemon');
    };
    d.stderr!.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      if (err.includes('listening on')) resolve({ log: () => err, stop: () => (stopped ??= stop()) });
    });
    d.on('exit', (code) => reject(new Error(`daemon exited with ${code}: ${err}`)));
  });
}

/** A `plexus daemon --config FILE` (the node agent) with /metrics, /healthz, /readyz on a unix socket. */
export interface Agent {
  proc: ChildProcess;
  sockDir: string;
  metricsSocket: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** GET on its metrics socket. */
  get(path: string): Promise<{ status: number; text: string }>;
  /** One sample of /metrics, by name and exact labels; undefined when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  exited: Promise<number | null>;
}

/** Starts the agent as node `node` with `config` as its daemon-config.json; SIGKILLed after the test unless it ended. */
export async function startAgent(t: Cleanup, dir: string, config: JsonObject, node: string): Promise<Agent> {
  mkdirSync(dir, { recursive: true });
  const sockDir = typeof config.socketDir === 'string' ? config.socketDir : join(dir, 'run');
  const metricsSocket = join(dir, 'metrics.sock');
  const file = join(dir, 'daemon-config.json');
  writeFileSync(file, JSON.stringify({ metricsSocket, ...config, socketDir: sockDir }));
  const proc = spawn(PLEXUS, ['daemon', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', PLEXUS_NODE_NAME: node } });
  let err = '';
  // 'exit', not 'close': a delegate the daemon started may hold its stderr open after it died.
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      if (err.includes('listening on')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`daemon exited with ${code}: ${err}`)));
  });
  const get = (path: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ socketPath: metricsSocket, path, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        })
        .on('error', reject);
    });
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
    const line = (await get('/metrics')).text.split('\n').find((l) => l.startsWith(want ? `${name}{${want}} ` : `${name} `));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  return { proc, sockDir, metricsSocket, stderr: () => err, get, metric, exited };
}
