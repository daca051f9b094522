// List + watch into a local map, as client-go's reflector does: a paginated LIST gives the state
// and its resourceVersion, a watch from that version streams the changes (with bookmarks, so the
// version keeps moving when nothing of ours changes). A watch that ends is resumed from the last
// version seen; a cut stream or failed request is retried with capped exponential backoff; a
// 410 Expired (history compacted) relists. Nothing is served from here unless `live`.
import { isObject, parseObject, type JsonObject } from '../cni/validate';
import { log } from '../log';
import { KubeApiError, type KubeClient, type Stream } from './client';

export interface InformerOptions<T> {
  client: KubeClient;
  /** Collection path, e.g. /api/v1/pods (cluster-wide) */
  path: string;
  fieldSelector?: string;
  /** Validates an API object; a throw skips the object (logged), it never poisons the cache. */
  parse(obj: JsonObject): T;
  /** Server-side watch timeout; the watch is then resumed (client-go: 5-10 min). */
  watchTimeoutS?: number;
  backoffMs?: { min: number; max: number };
  pageSize?: number;
}

export interface Entry<T> {
  value: T;
  /** resourceVersion of this object's state. */
  rv: number;
  /** The version at which this object (this uid) first entered the cache. */
  firstRv: number;
}

export interface InformerStats {
  lists: number;
  watches: number;
  events: number;
  bookmarks: number;
  expired: number;
  failures: number;
}

const rvOf = (obj: JsonObject): number => {
  const m = isObject(obj.metadata) ? obj.metadata : {};
  const n = Number(typeof m.resourceVersion === 'string' ? m.resourceVersion : NaN);
  return Number.isFinite(n) ? n : 0;
};

const keyOf = (obj: JsonObject): string => {
  const m = isObject(obj.metadata) ? obj.metadata : {};
  return `${typeof m.namespace === 'string' ? m.namespace : ''}/${typeof m.name === 'string' ? m.name : ''}`;
};

const uidOf = (obj: JsonObject): string => {
  const m = isObject(obj.metadata) ? obj.metadata : {};
  return typeof m.uid === 'string' ? m.uid : '';
};

class Expired extends Error {}

export class Informer<T> {
  private items = new Map<string, Entry<T> & { uid: string }>();
  /** Everything up to this resourceVersion is reflected in `items`. */
  rv = 0;
  synced = false;
  /** Synced and a watch stream is open: the cache is only behind by what is in flight. */
  live = false;
  /** Date.now() of the last thing heard from the server (list, event, bookmark). */
  heardAt = 0;
  readonly stats: InformerStats = { lists: 0, watches: 0, events: 0, bookmarks: 0, expired: 0, failures: 0 };
  private stopped = false;
  private stream: Stream | undefined;
  private wake: (() => void) | undefined;
  private refreshing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private syncWaiters: (() => void)[] = [];
  private rvWaiters: Array<{ rv: number; done: () => void }> = [];

  constructor(private readonly o: InformerOptions<T>) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.live = false;
    this.stream?.abort();
    this.wake?.();
    await this.loop;
  }

  get(key: string): Entry<T> | undefined {
    return this.items.get(key);
  }

  size(): number {
    return this.items.size;
  }

  /** Resolves true once listed and watching (live), false after timeoutMs. */
  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.live) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.syncWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Resolves true once the cache reflects everything up to `rv`, false after timeoutMs. */
  reached(rv: number, timeoutMs: number): Promise<boolean> {
    if (this.rv >= rv) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.rvWaiters = this.rvWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = {
        rv,
        done: () => {
          clearTimeout(t);
          resolve(true);
        },
      };
      this.rvWaiters.push(waiter);
    });
  }

  private advanced(): void {
    const ready = this.rvWaiters.filter((w) => w.rv <= this.rv);
    if (ready.length === 0) return;
    this.rvWaiters = this.rvWaiters.filter((w) => w.rv > this.rv);
    for (const w of ready) w.done();
  }

  /** A consistent LIST now (coalesced: callers arriving during one share it). */
  refresh(): Promise<void> {
    this.refreshing ??= this.list().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.o.fieldSelector) q.set('fieldSelector', this.o.fieldSelector);
    return `${this.o.path}?${q.toString()}`;
  }

  private async list(): Promise<void> {
    const next = new Map<string, Entry<T> & { uid: string }>();
    let cont = '';
    let listRv = 0;
    do {
      const page = await this.o.client.get(this.query({ limit: String(this.o.pageSize ?? 500), ...(cont ? { continue: cont } : {}) }), { budgetMs: 5000, timeoutMs: 5000 });
      const meta = isObject(page.metadata) ? page.metadata : {};
      listRv = rvOf(page);
      cont = typeof meta.continue === 'string' ? meta.continue : '';
      for (const obj of Array.isArray(page.items) ? page.items : []) {
        if (!isObject(obj)) continue;
        const key = keyOf(obj);
        const old = this.items.get(key);
        const uid = uidOf(obj);
        const value = this.parse(obj);
        if (value === undefined) continue;
        next.set(key, { value, rv: rvOf(obj), firstRv: old && old.uid === uid ? old.firstRv : rvOf(obj), uid });
      }
    } while (cont);
    this.stats.lists += 1;
    // A watch running meanwhile may already be past this list: never go back in time.
    if (listRv < this.rv) return;
    this.items = next;
    this.rv = listRv;
    this.heardAt = Date.now();
    this.advanced();
    this.synced = true;
  }

  private parse(obj: JsonObject): T | undefined {
    try {
      return this.o.parse(obj);
    } catch (err) {
      log.warn('watch cache: skipping an invalid object', { path: this.o.path, object: keyOf(obj), err: (err as Error).message });
      return undefined;
    }
  }

  private apply(line: string): void {
    const ev = parseObject(line, `watch ${this.o.path}: event`);
    const type = ev.type;
    const obj = isObject(ev.object) ? ev.object : {};
    this.heardAt = Date.now();
    if (type === 'ERROR') {
      if (obj.code === 410) throw new Expired(typeof obj.message === 'string' ? obj.message : 'Expired');
      throw new KubeApiError({ status: typeof obj.code === 'number' ? obj.code : 500, reason: typeof obj.reason === 'string' ? obj.reason : '', message: typeof obj.message === 'string' ? obj.message : 'watch error', method: 'GET', path: this.o.path });
    }
    const rv = rvOf(obj);
    if (type === 'BOOKMARK') {
      this.stats.bookmarks += 1;
      if (rv > this.rv) this.rv = rv;
      this.advanced();
      return;
    }
    // Already reflected by a list that overtook this stream.
    if (rv <= this.rv) return;
    this.stats.events += 1;
    const key = keyOf(obj);
    if (type === 'DELETED') this.items.delete(key);
    else if (type === 'ADDED' || type === 'MODIFIED') {
      const value = this.parse(obj);
      const old = this.items.get(key);
      const uid = uidOf(obj);
      if (value === undefined) this.items.delete(key);
      else this.items.set(key, { value, rv, firstRv: old && old.uid === uid ? old.firstRv : rv, uid });
    }
    this.rv = rv;
    this.advanced();
  }

  private watch(): Promise<void> {
    this.stats.watches += 1;
    const timeout = this.o.watchTimeoutS ?? 300;
    let expired: Expired | undefined;
    let failure: unknown;
    const s = this.o.client.stream(
      this.query({ watch: 'true', resourceVersion: String(this.rv), allowWatchBookmarks: 'true', timeoutSeconds: String(timeout) }),
      (line) => {
        if (expired || failure) return;
        try {
          this.apply(line);
        } catch (err) {
          if (err instanceof Expired) expired = err;
          else failure = err;
          s.abort();
        }
      },
      // Bookmarks come about once a minute from kube-apiserver: silence past the watch's own
      // timeout plus a margin is a dead connection, not a quiet cluster.
      (timeout + 30) * 1000,
      () => {
        this.live = this.synced;
        if (this.live) for (const w of this.syncWaiters.splice(0)) w();
      },
    );
    this.stream = s;
    return s.done.then(
      () => {
        if (expired) throw expired;
        if (failure) throw failure;
      },
      (err: unknown) => {
        throw expired ?? failure ?? err;
      },
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const { min, max } = this.o.backoffMs ?? { min: 200, max: 30_000 };
    let delay = min;
    let relist = true;
    while (!this.stopped) {
      try {
        if (relist) await this.refresh();
        relist = false;
        await this.watch();
        delay = min;
      } catch (err) {
        this.live = false;
        if (this.stopped) break;
        if (err instanceof Expired || (err instanceof KubeApiError && err.status === 410)) {
          this.stats.expired += 1;
          log.info('watch cache: resourceVersion expired, relisting', { path: this.o.path, rv: this.rv });
          relist = true;
          continue;
        }
        this.stats.failures += 1;
        log.warn('watch cache: watch failed, retrying', { path: this.o.path, rv: this.rv, delayMs: delay, err: (err as Error).message });
        await this.sleep(Math.round(delay * (0.8 + Math.random() * 0.4)));
        delay = Math.min(delay * 2, max);
      }
      this.live = false;
    }
    this.live = false;
  }
}
