// `plexus daemon` for the e2e tests: started on a socket dir, ready once it says it listens (no
// sleeping), stopped with SIGTERM and its delegate log checked the way runPlugin checks a one-shot
// call's.
import { spawn } from 'node:child_process';
import { checkDelegateLog, PLEXUS } from './plexus';

export interface Daemon {
  /** Everything the daemon wrote to stderr so far: it logs the requests it serves. */
  log(): string;
  /** SIGTERM, then its delegate log checked the way runPlugin checks a one-shot call's; once only. */
  stop(): Promise<void>;
}

/** Starts `plexus daemon DIR` and resolves once it says it listens (no sleeping). */
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
