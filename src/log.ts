// A logging facade whose cost is paid only when a line is written: pino is required lazily,
// because most CNI calls log nothing at the default level and every call is a fresh process.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';
import { RotatingFile, type RotateOptions } from './log-rotate';

export type Level = 'debug' | 'verbose' | 'info' | 'warn' | 'error' | 'panic';
// Multus levels: debug > verbose > error > panic ("panic" = only fatal). We add info/warn.
const rank: Record<Level, number> = { debug: 10, verbose: 20, info: 30, warn: 40, error: 50, panic: 60 };
const pinoLevel: Record<Level, string> = { debug: 'debug', verbose: 'debug', info: 'info', warn: 'warn', error: 'error', panic: 'fatal' };

export interface LogOptions {
  level: Level;
  file?: string;
  toStderr: boolean;
  /** Multus's logOptions for `file`: maxSize (MB), maxAge (days), maxBackups, compress. */
  rotate?: RotateOptions;
  /** A long-lived process (the daemon): compress rotated files in the background. */
  background?: boolean;
}

export function isLevel(s: string): s is Level {
  return s in rank;
}

let opts: LogOptions = { level: 'error', toStderr: true };
let pinos: Logger[] | undefined;
let bindings: Record<string, unknown> = {};
let files = new Map<string, RotatingFile>();
// The daemon runs requests concurrently: each one's bindings (containerId, ...) live in its own
// async scope, so lines of interleaved requests never carry each other's ids.
const scope = new AsyncLocalStorage<Record<string, unknown>>();

export function configureLog(o: LogOptions): void {
  // The daemon configures logging on every request with, usually, the same options: keep the
  // open files then, instead of opening one more descriptor per request.
  if (JSON.stringify(o) === JSON.stringify(opts) && pinos) return;
  if (JSON.stringify(o.rotate) !== JSON.stringify(opts.rotate)) closeLogFiles();
  opts = o;
  pinos = undefined;
}

export function bindLog(b: Record<string, unknown>): void {
  const mine = scope.getStore();
  if (mine) Object.assign(mine, b);
  else bindings = { ...bindings, ...b };
}

/** Runs fn with log bindings of its own (one daemon request). */
export function withLogScope<T>(fn: () => T): T {
  return scope.run({}, fn);
}

function fileFor(path: string): RotatingFile {
  let f = files.get(path);
  if (!f) {
    f = new RotatingFile(path, opts.rotate ?? {}, opts.background);
    files.set(path, f);
  }
  return f;
}

/** Closes log files (tests; a daemon at exit). */
export function closeLogFiles(): void {
  for (const f of files.values()) f.close();
  files = new Map();
  pinos = undefined;
}

function sinks(): Logger[] {
  if (pinos) return pinos;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pino = require('pino') as typeof import('pino');
  const make = (dest: import('pino').DestinationStream) =>
    pino.default({ level: pinoLevel[opts.level], base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  const out: Logger[] = [];
  // sync destinations only: an async one loses every line when the process exits right after.
  if (opts.toStderr) out.push(make(pino.destination({ dest: 2, sync: true })));
  if (opts.file) {
    const file = opts.file;
    const rf = fileFor(file);
    let failed = false;
    // Synchronous appends (lines survive an exit right after); rotation checks the file's size.
    out.push(
      make({
        write: (line: string) => {
          try {
            rf.write(line);
          } catch (err) {
            if (!failed) process.stderr.write(`plexus: cannot write log file ${file}: ${(err as Error).message}\n`);
            failed = true;
          }
        },
      }),
    );
  }
  pinos = out;
  return out;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (rank[level] < rank[opts.level]) return;
  if (!opts.toStderr && !opts.file) return;
  const method = pinoLevel[level] as 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  const all = { ...bindings, ...scope.getStore(), ...fields };
  for (const l of sinks()) l[method](all, msg);
}

// hrtime, not performance.now(): the `performance` global loads perf_hooks (~1.6 ms of CPU per call).
const started = process.hrtime.bigint();

/** Milliseconds since the process started its work, for `phase` lines (where time goes). */
export function sinceStart(): number {
  return Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
}

export const log = {
  /** A debug line marking the end of a phase, with the time since start: where a call's time goes. */
  phase: (name: string, f?: Record<string, unknown>) => {
    if (rank.debug >= rank[opts.level]) write('debug', `phase ${name}`, { ...f, atMs: sinceStart(), uptimeMs: Math.round(process.uptime() * 1000) });
  },
  debug: (msg: string, f?: Record<string, unknown>) => write('debug', msg, f),
  verbose: (msg: string, f?: Record<string, unknown>) => write('verbose', msg, f),
  info: (msg: string, f?: Record<string, unknown>) => write('info', msg, f),
  warn: (msg: string, f?: Record<string, unknown>) => write('warn', msg, f),
  error: (msg: string, f?: Record<string, unknown>) => write('error', msg, f),
  enabled: (level: Level) => rank[level] >= rank[opts.level] && (opts.toStderr || !!opts.file),
};
