// The pool objects on the API: read or create an IPPool, commit one allocation or release with a
// JSON patch guarded by `test` on that one key (never a Lease, never a whole-object write), and
// the OverlappingRangeIPReservation beside it. Each function is one or two requests.
import { CniError, Code } from '../../cni/errors';
import { isObject, type Json, type JsonObject } from '../../cni/validate';
import { JSON_PATCH, KubeApiError, METADATA_ONLY, type KubeClient } from '../../k8s/client';
import { encodeExtra, extraKey, GROUP_PATH, parsePool, pointerToken, type Allocation, type PoolObject } from './layout';

/** etcd refuses requests over 1.5 MiB; keep room for the patch and metadata growth. */
export const MAX_POOL_BYTES = 1.5 * 1024 * 1024 - 16 * 1024;
/** One allocation's share of a pool object (entry + our annotation), for the size check. */
const ENTRY_BYTES = 220;
/** The apiserver refuses more than 256 KiB of annotations per object; leave room for others'. */
const MAX_ANNOTATION_BYTES = 240 * 1024;

/** Default total time of one API request, retries of 429/5xx included. */
const BUDGET_MS = 5_000;

export interface Counters {
  requests: number;
  conflicts: number;
}

/** How long a pool read stays good enough to pick free addresses from (the patch's `test` catches the rest). */
export const VIEW_MAX_AGE_MS = 10_000;

interface View {
  /** Absent until a read lands (the entry may exist only to carry `pending`). */
  pool?: PoolObject;
  at: number;
  /** Addresses this process is committing right now: a second local pick skips them. */
  pending: Set<bigint>;
}

/**
 * A long-lived process's last read of each pool, kept current with its own writes, so that one
 * node's ADDs in a burst read a large pool once instead of once each. Only free-address picks use
 * it: every write is still guarded by the patch's `test`, so a stale view costs a lost race (one
 * refused patch), never a duplicate; finding an attachment's existing address and DEL always read.
 */
export class PoolViews {
  private readonly views = new Map<string, View>();
  constructor(readonly maxAgeMs: number = VIEW_MAX_AGE_MS) {}

  /** The view of pool `key` if it is recent enough. */
  fresh(key: string, now = Date.now()): PoolObject | undefined {
    const v = this.views.get(key);
    if (!v?.pool) return undefined;
    if (now - v.at <= this.maxAgeMs) return v.pool;
    // A large pool's read is megabytes of memory: an agent idle for a while holds none.
    delete v.pool;
    return undefined;
  }

  pending(key: string): Set<bigint> {
    let v = this.views.get(key);
    if (!v) {
      v = { at: 0, pending: new Set() };
      this.views.set(key, v);
    }
    return v.pending;
  }

  /** A read just landed: it replaces the view. */
  store(key: string, pool: PoolObject, at = Date.now()): void {
    const v = this.views.get(key);
    this.views.set(key, { pool, at, pending: v?.pending ?? new Set() });
  }

  /** One of this process's writes landed on a pool object other than the view's: mirror it. */
  mirror(key: string, from: PoolObject, offset: string): void {
    const v = this.views.get(key);
    if (!v?.pool || v.pool === from) return;
    const a = from.allocations.get(offset);
    if (a) v.pool.allocations.set(offset, a);
    else v.pool.allocations.delete(offset);
  }

  forget(key: string): void {
    const v = this.views.get(key);
    if (v) delete v.pool;
  }
}

/** The daemon's views: one per process, which is one per node. One-shot calls never reuse theirs. */
export const processViews = new PoolViews();

export class PoolApi {
  readonly counters: Counters = { requests: 0, conflicts: 0 };
  constructor(
    readonly client: KubeClient,
    readonly namespace: string,
    /** Total time of one request, retries included: ADD can wait, DEL answers 11 soon so the runtime retries. */
    readonly budgetMs: number = BUDGET_MS,
    /** Where reads are kept between calls (a long-lived process); none: every ADD reads. */
    readonly views?: PoolViews,
  ) {}

  /** The views' key of pool `name`: one process may talk to several clusters or namespaces. */
  viewKey(name: string): string {
    return `${this.client.access.server.href}|${this.namespace}|${name}`;
  }

  /** A recent read of pool `name` to pick free addresses from, if this process keeps views and has one. */
  recentPool(name: string): PoolObject | undefined {
    return this.views?.fresh(this.viewKey(name));
  }

  /** Addresses this process is committing in pool `name` (a fresh set when it keeps no views). */
  pendingIn(name: string): Set<bigint> {
    return this.views ? this.views.pending(this.viewKey(name)) : new Set();
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    this.counters.requests += 1;
    return f();
  }

  poolPath(name: string): string {
    return `${GROUP_PATH}/namespaces/${encodeURIComponent(this.namespace)}/ippools/${encodeURIComponent(name)}`;
  }

  private reservationPath(name?: string): string {
    const base = `${GROUP_PATH}/namespaces/${encodeURIComponent(this.namespace)}/overlappingrangeipreservations`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  private toPool(obj: JsonObject, bytes: number): PoolObject {
    try {
      return parsePool(obj, bytes);
    } catch (err) {
      throw new CniError(Code.DecodeFailure, (err as Error).message);
    }
  }

  /** A fresh read of pool `name` (and the new view of it, where views are kept). */
  async getPool(name: string): Promise<PoolObject | undefined> {
    let bytes = 0;
    const onResponseBytes = (n: number) => void (bytes = n);
    try {
      const pool = this.toPool(await this.call(() => this.client.get(this.poolPath(name), { budgetMs: this.budgetMs, onResponseBytes })), bytes);
      this.views?.store(this.viewKey(name), pool);
      return pool;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) {
        this.views?.forget(this.viewKey(name));
        return undefined;
      }
      throw err;
    }
  }

  /** The pool, created empty (with our annotations map, so later patches need no second form) if absent. */
  async getOrCreatePool(name: string, range: string): Promise<PoolObject> {
    const found = await this.getPool(name);
    if (found) return found;
    const body: JsonObject = {
      apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
      kind: 'IPPool',
      metadata: { name, namespace: this.namespace, annotations: {} },
      spec: { range, allocations: {} },
    };
    try {
      const path = `${GROUP_PATH}/namespaces/${encodeURIComponent(this.namespace)}/ippools`;
      let bytes = 0;
      const pool = this.toPool(await this.call(() => this.client.post(path, body, { budgetMs: this.budgetMs, onResponseBytes: (n) => void (bytes = n) })), bytes);
      this.views?.store(this.viewKey(name), pool);
      return pool;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      const again = await this.getPool(name);
      if (!again) throw err;
      return again;
    }
  }

  /** Checks the pool can still grow by one entry; the apiserver would refuse it with a bare 500. */
  checkRoom(pool: PoolObject): void {
    if (pool.bytes + ENTRY_BYTES > MAX_POOL_BYTES) {
      throw new CniError(
        Code.Internal,
        `IPPool ${pool.namespace}/${pool.name} is full by size, not by addresses: ${pool.allocations.size} allocations take ${pool.bytes} bytes and the API server stores at most 1.5 MiB per object; set node_slice_size or split the range`,
      );
    }
  }

  /**
   * Writes allocation `a` at its offset if that key is still absent. false: someone holds it now
   * (the patch's `test` failed, 422). Other writers' changes to other keys never conflict.
   */
  async claimOffset(pool: PoolObject, a: Allocation): Promise<boolean> {
    const key = a.offset.toString();
    const entry: JsonObject = { id: a.id, podref: a.podref };
    if (a.ifname) entry.ifname = a.ifname;
    const ops: Json[] = [
      { op: 'test', path: `/spec/allocations/${key}`, value: null },
      { op: 'add', path: `/spec/allocations/${key}`, value: entry },
    ];
    // Past the annotation cap the entry goes in without our extra facts: leak cleanup then falls
    // back to the pod's name (as Whereabouts does) instead of ADD failing.
    const extraValue = a.extra ? encodeExtra(a.extra) : '';
    if (a.extra && pool.annotationBytes + extraKey(a.offset).length + extraValue.length > MAX_ANNOTATION_BYTES) delete a.extra;
    if (a.extra) {
      if (pool.hasAnnotations) ops.push({ op: 'add', path: `/metadata/annotations/${pointerToken(extraKey(a.offset))}`, value: encodeExtra(a.extra) });
      else ops.push({ op: 'test', path: '/metadata/annotations', value: null }, { op: 'add', path: '/metadata/annotations', value: { [extraKey(a.offset)]: encodeExtra(a.extra) } });
    }
    if (!(await this.guarded(pool, ops))) return false;
    pool.allocations.set(key, a);
    this.views?.mirror(this.viewKey(pool.name), pool, key);
    pool.bytes += ENTRY_BYTES;
    if (a.extra) {
      pool.hasAnnotations = true;
      pool.annotationBytes += extraKey(a.offset).length + extraValue.length;
    }
    return true;
  }

  /** Removes the allocation at `a.offset` if it is still `a.id`'s. false: it changed meanwhile. */
  async releaseOffset(pool: PoolObject, a: Allocation): Promise<boolean> {
    const key = a.offset.toString();
    const ops: Json[] = [
      { op: 'test', path: `/spec/allocations/${key}/id`, value: a.id },
      { op: 'remove', path: `/spec/allocations/${key}` },
    ];
    if (a.extra) ops.push({ op: 'remove', path: `/metadata/annotations/${pointerToken(extraKey(a.offset))}` });
    if (!(await this.guarded(pool, ops))) return false;
    pool.allocations.delete(key);
    this.views?.mirror(this.viewKey(pool.name), pool, key);
    return true;
  }

  /** Removes every allocation of `all` in one patch if each is still its container's; false: none removed. */
  async releaseAll(pool: PoolObject, all: Allocation[]): Promise<boolean> {
    const ops: Json[] = [];
    for (const a of all) {
      const key = a.offset.toString();
      ops.push({ op: 'test', path: `/spec/allocations/${key}/id`, value: a.id }, { op: 'remove', path: `/spec/allocations/${key}` });
      if (a.extra) ops.push({ op: 'remove', path: `/metadata/annotations/${pointerToken(extraKey(a.offset))}` });
    }
    if (!(await this.guarded(pool, ops))) return false;
    for (const a of all) {
      pool.allocations.delete(a.offset.toString());
      this.views?.mirror(this.viewKey(pool.name), pool, a.offset.toString());
    }
    return true;
  }

  /** Hands the allocation at `a.offset` from container `fromId` to `a` (an IPAMClaim's address moving pods). */
  async moveOffset(pool: PoolObject, fromId: string, a: Allocation): Promise<boolean> {
    const key = a.offset.toString();
    const entry: JsonObject = { id: a.id, podref: a.podref };
    if (a.ifname) entry.ifname = a.ifname;
    const ops: Json[] = [
      { op: 'test', path: `/spec/allocations/${key}/id`, value: fromId },
      { op: 'replace', path: `/spec/allocations/${key}`, value: entry },
    ];
    if (a.extra) ops.push({ op: 'add', path: `/metadata/annotations/${pointerToken(extraKey(a.offset))}`, value: encodeExtra(a.extra) });
    if (!(await this.guarded(pool, ops))) return false;
    pool.allocations.set(key, a);
    this.views?.mirror(this.viewKey(pool.name), pool, key);
    return true;
  }

  private async guarded(pool: PoolObject, ops: Json[]): Promise<boolean> {
    try {
      // The caller keeps its view current instead of decoding the pool again, so the reply is asked
      // for as metadata only: a full pool is ~0.5 MiB the server would encode and send for nothing.
      await this.call(() => this.client.patch(this.poolPath(pool.name), ops, JSON_PATCH, { budgetMs: this.budgetMs, discardBody: true, accept: METADATA_ONLY }));
      return true;
    } catch (err) {
      // 422: a `test` failed (evanphx json-patch via the apiserver); the key changed under us.
      if (err instanceof KubeApiError && (err.status === 422 || err.status === 409)) {
        this.counters.conflicts += 1;
        return false;
      }
      throw err;
    }
  }

  /** Creates the cluster-wide reservation of one address; false when another holds it. */
  async reserve(name: string, spec: { containerid: string; podref: string; ifname: string }): Promise<boolean> {
    const body: JsonObject = {
      apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
      kind: 'OverlappingRangeIPReservation',
      metadata: { name, namespace: this.namespace },
      spec,
    };
    try {
      await this.call(() => this.client.post(this.reservationPath(), body, { budgetMs: this.budgetMs }));
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        this.counters.conflicts += 1;
        return false;
      }
      throw err;
    }
  }

  async getReservation(name: string): Promise<JsonObject | undefined> {
    try {
      return await this.call(() => this.client.get(this.reservationPath(name), { budgetMs: this.budgetMs }));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async unreserve(name: string): Promise<void> {
    try {
      await this.call(() => this.client.delete(this.reservationPath(name), { budgetMs: this.budgetMs }));
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
  }

  async list(resource: 'ippools' | 'overlappingrangeipreservations'): Promise<JsonObject[]> {
    const out = await this.call(() => this.client.get(`${GROUP_PATH}/namespaces/${encodeURIComponent(this.namespace)}/${resource}`, { budgetMs: this.budgetMs }));
    return Array.isArray(out.items) ? out.items.filter(isObject) : [];
  }

  /** A pool from a LIST; its size is estimated by encoding it again (a LIST reply holds many). */
  parse(obj: JsonObject): PoolObject {
    return this.toPool(obj, Buffer.byteLength(JSON.stringify(obj)));
  }
}
