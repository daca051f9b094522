// A logging facade whose cost is paid only when a line is written: pino is required lazily,
// because most CNI calls log nothing at the default level and every call is a fresh process.
import type { Logger } from 'pino';

export type Level = 'debug' | 'verbose' | 'info' | 'warn' | 'error' | 'panic';
// Multus levels: debug > verbose > error > panic ("panic" = only fatal). We add info/warn.
const rank: Record<Level, number> = { debug: 10, verbose: 20, info: 30, warn: 40, error: 50, panic: 60 };
const pinoLevel: Record<Level, string> = { debug: 'debug', verbose: 'debug', info: 'info', warn: 'warn', error: 'error', panic: 'fatal' };

export interface LogOptions {
  level: Level;
  file?: string;
  toStderr: boolean;
}

export function isLevel(s: string): s is Level {
  return s in rank;
}

let opts: LogOptions = { level: 'error', toStderr: true };
let pinos: Logger[] | undefined;
let bindings: Record<string, unknown> = {};

export function configureLog(o: LogOptions): void {
  opts = o;
  pinos = undefined;
}

export function bindLog(b: Record<string, unknown>): void {
  bindings = { ...bindings, ...b };
  pinos = undefined;
}

function sinks(): Logger[] {
  if (pinos) return pinos;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pino = require('pino') as typeof import('pino');
  const make = (dest: import('pino').DestinationStream) =>
    pino.default({ level: pinoLevel[opts.level], base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  const out: Logger[] = [];
  // sync destinations only: an async one loses every line when the process exits right after.
  if (opts.toStderr) out.push(make(pino.destination({ dest: 2, sync: true })));
  if (opts.file) {
    try {
      out.push(make(pino.destination({ dest: opts.file, sync: true, mkdir: true })));
    } catch (err) {
      process.stderr.write(`plexus: cannot open log file ${opts.file}: ${(err as Error).message}\n`);
    }
  }
  pinos = out;
  return out;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (rank[level] < rank[opts.level]) return;
  if (!opts.toStderr && !opts.file) return;
  const method = pinoLevel[level] as 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  for (const l of sinks()) {
    if (fields) l[method](fields, msg);
    else l[method](msg);
  }
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
