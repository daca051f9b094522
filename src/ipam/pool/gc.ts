// Leak cleanup, two ways, neither ever freeing a live pod's address:
// - CNI GC on a node: the runtime lists the attachments it still has; this node's pool entries of
//   any other container are leaks (a DEL that never came). Entries from other nodes, from
//   Whereabouts (no node recorded) and claim-bound ones are not this call's to judge.
// - `plexus ipam gc`: every pool entry whose pod is gone from the API, or was replaced by a new pod
//   of the same name (a StatefulSet's): the pod UID recorded at ADD tells them apart. An entry
//   without a recorded UID is freed only when no pod of that name exists. Orphaned
//   OverlappingRangeIPReservations (no pool entry holds their container) go too, after a grace
//   period that covers an ADD in flight.
import { isObject, type JsonObject } from '../../cni/validate';
import { KubeApiError, METADATA_LIST, type KubeClient } from '../../k8s/client';
import { log } from '../../log';
import type { Allocator, Target } from './allocate';
import { getClaim } from './claims';
import { ifnameOf, type Allocation, type PoolObject } from './layout';
import type { PoolApi } from './store';

export async function gcNode(allocator: Allocator, targets: Target[], keep: ReadonlySet<string>, node: string | undefined): Promise<number> {
  const keptIds = new Set([...keep].map((k) => k.split('|')[0]));
  let freed = 0;
  for (const t of targets) {
    const pool = await allocator.api.getPool(t.pool);
    if (!pool) continue;
    const sliced = t.net !== t.range.net;
    for (const a of [...pool.allocations.values()]) {
      const ours = sliced || (node !== undefined && a.extra?.node === node);
      if (!ours || a.extra?.claim) continue;
      const ifname = ifnameOf(a);
      const live = ifname === undefined ? keptIds.has(a.id) : keep.has(`${a.id}|${ifname}`);
      if (live) continue;
      if (await allocator.releaseEntry(t, pool, a)) freed += 1;
    }
  }
  return freed;
}

export interface ClusterGcReport {
  pools: number;
  freed: Array<{ pool: string; offset: string; id: string; podref: string; why: string }>;
  kept: number;
  reservationsDeleted: string[];
}

type PodState = { exists: false } | { exists: true; uid: string };

async function podState(client: KubeClient, cache: Map<string, PodState>, podref: string): Promise<PodState | undefined> {
  const [ns, name, ...rest] = podref.split('/');
  if (!ns || !name || rest.length) return undefined;
  const hit = cache.get(podref);
  if (hit) return hit;
  let s: PodState;
  try {
    const pod = await client.get(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`, { budgetMs: 10_000 });
    const meta = isObject(pod.metadata) ? pod.metadata : {};
    s = { exists: true, uid: typeof meta.uid === 'string' ? meta.uid : '' };
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    s = { exists: false };
  }
  cache.set(podref, s);
  return s;
}

/** Why entry `a` is a leak, or undefined when it may be in use. */
async function leakReason(client: KubeClient, pods: Map<string, PodState>, a: Allocation): Promise<string | undefined> {
  if (a.extra?.claim) {
    const [ns, name] = a.extra.claim.split('/');
    if (ns && name && (await getClaim(client, ns, name))) return undefined;
  }
  const p = await podState(client, pods, a.podref);
  if (!p) return undefined;
  if (!p.exists) return a.extra?.claim ? 'claim and pod deleted' : 'pod deleted';
  if (a.extra?.uid && p.uid && a.extra.uid !== p.uid) return `pod re-created (uid ${a.extra.uid} is now ${p.uid})`;
  return undefined;
}

/** A collection's items; none when its CRD is not installed (a cluster that never used the pool IPAM). */
async function listOrNone(api: PoolApi, resource: 'ippools' | 'overlappingrangeipreservations'): Promise<JsonObject[]> {
  try {
    return await api.list(resource);
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return [];
    throw err;
  }
}

export interface ClusterGcOptions {
  dryRun: boolean;
  graceMs: number;
  now?: number;
  /** Stops the sweep between two entries (the agent shutting down). Aborting throws: a sweep cut
   * short never reaches the reservations, whose orphan test needs every pool's live entries. */
  signal?: AbortSignal;
}

/** Leaks freed by one patch (each is 2–3 operations; the apiserver takes patches up to 3 MiB). */
const RELEASE_BATCH = 256;
/** A namespace holding more entries' pods than this is read with one LIST instead of a GET per pod. */
export const LIST_NAMESPACE_FROM = 8;
const PAGE = 500;

/**
 * The pods of namespace `ns` as `ns/name` → uid, metadata only and paged over one consistent
 * snapshot; undefined when the snapshot expired mid-way (410), and the caller asks pod by pod.
 */
async function podsOf(client: KubeClient, ns: string, signal?: AbortSignal): Promise<Map<string, string> | undefined> {
  const out = new Map<string, string>();
  let cont = '';
  do {
    signal?.throwIfAborted();
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (cont) q.set('continue', cont);
    let page: JsonObject;
    try {
      page = await client.get(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods?${q}`, { budgetMs: 30_000, accept: METADATA_LIST });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 410) return undefined;
      throw err;
    }
    for (const item of Array.isArray(page.items) ? page.items : []) {
      const m = isObject(item) && isObject(item.metadata) ? item.metadata : undefined;
      if (m && typeof m.name === 'string') out.set(`${ns}/${m.name}`, typeof m.uid === 'string' ? m.uid : '');
    }
    cont = isObject(page.metadata) && typeof page.metadata.continue === 'string' ? page.metadata.continue : '';
  } while (cont);
  return out;
}

/**
 * Fills `pods` for the namespaces many entries point into, one LIST each. Only for podrefs read
 * from pools listed before this call: a pod exists before its ADD writes its entry, so a pod that
 * is missing from a later snapshot is gone (the reverse, a pod created after the snapshot, could
 * only belong to an entry this sweep has not read).
 */
async function prefetchPods(client: KubeClient, pods: Map<string, PodState>, podrefs: Iterable<string>, signal?: AbortSignal): Promise<void> {
  const byNs = new Map<string, Set<string>>();
  for (const ref of podrefs) {
    const [ns, name, ...rest] = ref.split('/');
    if (!ns || !name || rest.length) continue;
    let set = byNs.get(ns);
    if (!set) byNs.set(ns, (set = new Set()));
    set.add(ref);
  }
  for (const [ns, refs] of byNs) {
    if (refs.size < LIST_NAMESPACE_FROM) continue;
    const uids = await podsOf(client, ns, signal);
    if (!uids) continue;
    for (const ref of refs) {
      const uid = uids.get(ref);
      pods.set(ref, uid === undefined ? { exists: false } : { exists: true, uid });
    }
  }
}

export async function gcCluster(api: PoolApi, opts: ClusterGcOptions): Promise<ClusterGcReport> {
  const report: ClusterGcReport = { pools: 0, freed: [], kept: 0, reservationsDeleted: [] };
  const pods = new Map<string, PodState>();
  const liveIds = new Set<string>();
  const pools: PoolObject[] = [];
  for (const obj of await listOrNone(api, 'ippools')) {
    try {
      pools.push(api.parse(obj));
    } catch (err) {
      log.warn('skipping an IPPool that does not parse', { err: (err as Error).message });
    }
  }
  await prefetchPods(api.client, pods, pools.flatMap((p) => [...p.allocations.values()].map((a) => a.podref)), opts.signal);
  for (const pool of pools) {
    report.pools += 1;
    const leaks: Array<{ a: Allocation; why: string }> = [];
    for (const a of [...pool.allocations.values()]) {
      opts.signal?.throwIfAborted();
      const why = await leakReason(api.client, pods, a);
      if (why) leaks.push({ a, why });
      else {
        report.kept += 1;
        liveIds.add(a.id);
      }
    }
    // Every write rewrites the whole pool on the server: a pool's leaks go in guarded batches, and
    // one by one only when an entry changed meanwhile (then the batch applied nothing).
    for (let i = 0; i < leaks.length; i += RELEASE_BATCH) {
      const batch = leaks.slice(i, i + RELEASE_BATCH);
      const together = !opts.dryRun && batch.length > 1 && (await api.releaseAll(pool, batch.map((l) => l.a)));
      for (const { a, why } of batch) {
        opts.signal?.throwIfAborted();
        if (!opts.dryRun && !together && !(await api.releaseOffset(pool, a))) {
          liveIds.add(a.id); // changed under us: judge it next run
          continue;
        }
        report.freed.push({ pool: pool.name, offset: a.offset.toString(), id: a.id, podref: a.podref, why });
      }
    }
  }
  const now = opts.now ?? Date.now();
  for (const r of await listOrNone(api, 'overlappingrangeipreservations')) {
    opts.signal?.throwIfAborted();
    const meta = isObject(r.metadata) ? r.metadata : {};
    const spec: JsonObject = isObject(r.spec) ? r.spec : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const created = typeof meta.creationTimestamp === 'string' ? Date.parse(meta.creationTimestamp) : now;
    if (!name || now - created < opts.graceMs) continue;
    const id = typeof spec.containerid === 'string' ? spec.containerid : '';
    const podref = typeof spec.podref === 'string' ? spec.podref : '';
    const pod = podref ? await podState(api.client, pods, podref) : undefined;
    const orphan = id !== '' ? !liveIds.has(id) : pod !== undefined && !pod.exists;
    if (!orphan) continue;
    if (!opts.dryRun) await api.unreserve(name);
    report.reservationsDeleted.push(name);
  }
  return report;
}
