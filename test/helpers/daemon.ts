// A resident `plexus daemon DIR` for e2e tests: started, waited for by its own "listening on" line
// (no sleeping), stopped with SIGTERM and its delegate log checked as a one-shot call's is.
import { spawn } from 'node:child_process';
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
