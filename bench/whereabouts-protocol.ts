// The baseline of bench (c): Whereabouts 0.6.3's request sequence for one ADD, replayed against the
// same test apiserver in the same loop as plexus, so the ratio holds on whatever machine runs it.
// From its source (pkg/storage/kubernetes/ipam.go IPManagement / IPManagementKubernetesUpdate,
// client-go leaderelection with LeaseDuration 1500 ms, RetryPeriod 500 ms, ReleaseOnCancel):
// take the cluster-wide Lease "whereabouts" (get, then create or update; a waiter polls every
// RetryPeriod with client-go's jitter), list the pools (its Status check), get the pool, pick the
// lowest free address, get its OverlappingRangeIPReservation, patch the pool guarded by its
// resourceVersion (re-read and retry on 422), create the reservation, release the Lease.
// Not product code: only what the benchmark needs to count requests and time the serialisation.
import { isObject, type Json, type JsonObject } from '../src/cni/validate';
import { JSON_PATCH, KubeApiError, type KubeClient } from '../src/k8s/client';

const LEASE_MS = 1500;
const RETRY_MS = 500;
const G = '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system';
const LEASE = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/whereabouts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const micro = () => new Date().toISOString().replace('Z', '000Z');

async function getOr404(c: KubeClient, path: string): Promise<JsonObject | undefined> {
  try {
    return await c.get(path, { budgetMs: 60_000 });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return undefined;
    throw err;
  }
}

async function acquire(c: KubeClient, me: string): Promise<void> {
  for (;;) {
    const lease = await getOr404(c, LEASE);
    const spec: JsonObject = lease && isObject(lease.spec) ? lease.spec : {};
    const holder = typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '';
    const renewed = typeof spec.renewTime === 'string' ? Date.parse(spec.renewTime) : 0;
    if (lease && holder !== '' && holder !== me && Date.now() < renewed + LEASE_MS) {
      await sleep(RETRY_MS * (1 + Math.random() * 1.2)); // wait.JitterUntil(retryPeriod, 1.2)
      continue;
    }
    const next: JsonObject = { holderIdentity: me, leaseDurationSeconds: 1, acquireTime: micro(), renewTime: micro(), leaseTransitions: 0 };
    try {
      if (!lease) await c.post('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', { metadata: { name: 'whereabouts' }, spec: next }, { budgetMs: 60_000 });
      else await c.put(LEASE, { ...lease, spec: next }, { budgetMs: 60_000 });
      return;
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.status === 409 || err.status === 422))) throw err;
      await sleep(RETRY_MS * (1 + Math.random() * 1.2));
    }
  }
}

async function release(c: KubeClient): Promise<void> {
  const lease = await c.get(LEASE, { budgetMs: 60_000 });
  const spec = isObject(lease.spec) ? lease.spec : {};
  await c.put(LEASE, { ...lease, spec: { ...spec, holderIdentity: '', leaseDurationSeconds: 1 } }, { budgetMs: 60_000 });
}

/** One Whereabouts ADD of `id` into pool `name` (range `range`, IPv4 /24 or smaller). */
export async function whereaboutsAdd(c: KubeClient, me: string, name: string, range: string, id: string): Promise<void> {
  await acquire(c, me);
  try {
    await c.get(`${G}/ippools`, { budgetMs: 60_000 });
    for (let attempt = 0; attempt < 100; attempt++) {
      let pool = await getOr404(c, `${G}/ippools/${name}`);
      if (!pool) {
        await c.post(`${G}/ippools`, { metadata: { name }, spec: { range, allocations: {} } }, { budgetMs: 60_000 }).catch(() => undefined);
        continue; // "k8s pool initialized": another round reads it
      }
      const spec = isObject(pool.spec) ? pool.spec : {};
      const allocations = isObject(spec.allocations) ? spec.allocations : {};
      let offset = 1;
      while (Object.hasOwn(allocations, String(offset))) offset++;
      const base = range.split('/')[0] ?? '';
      const ip = base.split('.').slice(0, 3).join('.') + '.' + String(Number(base.split('.')[3]) + offset);
      await getOr404(c, `${G}/overlappingrangeipreservations/${ip}`);
      const meta = isObject(pool.metadata) ? pool.metadata : {};
      const ops: Json[] = [
        { op: 'test', path: '/metadata/resourceVersion', value: meta.resourceVersion ?? '' },
        { op: 'test', path: `/spec/allocations/${offset}`, value: null },
        { op: 'add', path: `/spec/allocations/${offset}`, value: { id, podref: `bench/${id}` } },
      ];
      try {
        await c.patch(`${G}/ippools/${name}`, ops, JSON_PATCH, { budgetMs: 60_000 });
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 422) {
          pool = undefined;
          continue;
        }
        throw err;
      }
      await c.post(`${G}/overlappingrangeipreservations`, { metadata: { name: ip }, spec: { podref: `bench/${id}` } }, { budgetMs: 60_000 });
      return;
    }
    throw new Error('whereabouts: retries exhausted');
  } finally {
    await release(c);
  }
}
