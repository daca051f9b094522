// The daemon's scheduling: at most `limit` requests run at once (the rest wait, first come first
// served), and the requests of one container never overlap and run in arrival order. A pod
// burst then costs bounded memory and CPU, and an ADD and a DEL of one sandbox (a runtime that
// gives up on a slow ADD and tears down) never interleave their journal writes and links.
export class Scheduler {
  running = 0;
  waiting = 0;
  private readonly slots: Array<() => void> = [];
  /** The tail of each container's chain; removed when its last request finishes. */
  private readonly chains = new Map<string, Promise<void>>();
  private idleWaiters: Array<() => void> = [];

  constructor(readonly limit: number) {}

  private acquire(): Promise<void> {
    if (this.running < this.limit) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slots.push(resolve));
  }

  private release(): void {
    const next = this.slots.shift();
    if (next) next(); // the slot passes on: running stays the same
    else this.running -= 1;
  }

  /** Runs fn after every earlier request of `key` and once a slot is free. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    const before = this.chains.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = before.then(() => mine);
    if (key) this.chains.set(key, tail);
    try {
      await before;
      await this.acquire();
    } finally {
      this.waiting -= 1;
    }
    try {
      return await fn();
    } finally {
      this.release();
      done();
      if (key && this.chains.get(key) === tail) this.chains.delete(key);
      if (this.running === 0 && this.waiting === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when nothing runs or waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
