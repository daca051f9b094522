// The node agent's watch caches against the test apiserver: list + watch, resume after a cut
// stream, relist after 410, and the staleness rule (src/daemon/caches.ts): an ADD never gets a
// NAD older than its pod's binding, however late the watch is, and reads nothing otherwise.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { CniEnv } from '../src/cni/env';
import type { JsonObject } from '../src/cni/validate';
import { ClusterCache, type Consistency } from '../src/daemon/caches';
import { destroyAgents, KubeClient } from '../src/k8s/client';
import { Informer } from '../src/k8s/informer';
import { loadClusterAccess } from '../src/k8s/kubeconfig';
import { parseNad } from '../src/k8s/pods';
import { startApiServer, type FakeApi } from './apiserver/server';
import { tempDir } from './helpers/host';

const NODE = 'node-a';
const WAIT = 5000;

async function setup(t: TestContext): Promise<{ api: FakeApi; kubeconfig: string }> {
  const api = await startApiServer({ tls: true, token: 'tok' });
  t.after(async () => {
    destroyAgents();
    await api.close();
  });
  const kubeconfig = join(tempDir(t), 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  return { api, kubeconfig };
}

function cache(t: TestContext, kubeconfig: string, consistency: Consistency = 'pod'): ClusterCache {
  const c = new ClusterCache(kubeconfig, NODE, consistency);
  c.start();
  t.after(() => c.stop());
  return c;
}

const rvOf = (o: JsonObject) => Number((o.metadata as JsonObject).resourceVersion);
const reads = (api: FakeApi) => api.requests().filter((r) => r.method === 'GET' && !r.query.includes('watch=true'));
const writes = (api: FakeApi) => api.requests().filter((r) => r.method !== 'GET');

function envFor(pod: JsonObject): CniEnv {
  const m = pod.metadata as JsonObject;
  return { command: 'ADD', containerId: 'c1', netns: '/var/run/netns/x', ifname: 'eth0', path: [], args: `K8S_POD_NAMESPACE=${String(m.namespace)};K8S_POD_NAME=${String(m.name)};K8S_POD_UID=${String(m.uid)}` };
}

function bound(api: FakeApi, name: string, networks: string): JsonObject {
  return api.putPod({ metadata: { name, namespace: 'ns1', annotations: { 'k8s.v1.cni.cncf.io/networks': networks } }, spec: { nodeName: NODE } });
}

test('an informer lists, follows the watch, resumes a cut stream from its version, and relists after 410 Expired', { timeout: 30000 }, async (t) => {
  const { api, kubeconfig } = await setup(t);
  api.putNad('ns1', 'a', '{"type":"bridge"}');
  const inf = new Informer({ client: new KubeClient(loadClusterAccess(kubeconfig)), path: '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions', parse: (o) => parseNad(o), backoffMs: { min: 20, max: 100 } });
  inf.start();
  t.after(() => inf.stop());
  assert.ok(await inf.whenSynced(WAIT));
  assert.equal(inf.get('ns1/a')?.value.config, '{"type":"bridge"}');
  const b = api.putNad('ns1', 'b', '{"type":"macvlan"}');
  assert.ok(await inf.reached(rvOf(b), WAIT));
  assert.equal(inf.get('ns1/b')?.value.config, '{"type":"macvlan"}');

  // Cut mid-stream; a change made while nobody watches is delivered by the resumed watch.
  const watchesBefore = inf.stats.watches;
  assert.equal(api.cutWatches(), 1);
  const c = api.putNad('ns1', 'a', '{"type":"ipvlan"}');
  api.deleteNad('ns1', 'b');
  assert.ok(await inf.reached(Number(api.resourceVersion()), WAIT));
  assert.equal(inf.get('ns1/a')?.value.config, '{"type":"ipvlan"}');
  assert.equal(inf.get('ns1/a')?.rv, rvOf(c));
  assert.equal(inf.get('ns1/b'), undefined);
  assert.equal(inf.stats.lists, 1, 'resumed from its resourceVersion: no relist');
  assert.ok(inf.stats.watches > watchesBefore);
  const resumed = api.requests().filter((r) => r.query.includes('watch=true')).at(-1);
  assert.match(resumed?.query ?? '', /resourceVersion=\d+/);
  assert.doesNotMatch(resumed?.query ?? '', /resourceVersion=0&/);

  // History compacted while cut: the resumed watch is told 410 Expired, and the informer relists.
  api.cutWatches();
  api.putNad('ns1', 'd', '{}');
  api.compact();
  const e = api.putNad('ns1', 'e', '{}');
  assert.ok(await inf.reached(rvOf(e), WAIT));
  assert.equal(inf.stats.expired >= 1 || inf.stats.lists >= 2, true);
  assert.ok(inf.get('ns1/d') && inf.get('ns1/e'), 'both changes are in the cache after the relist');
  assert.ok(inf.stats.lists >= 2, 'relisted');
});

test('an informer retries with backoff while the API fails, then syncs', { timeout: 30000 }, async (t) => {
  const { api, kubeconfig } = await setup(t);
  api.putNad('ns1', 'a', '{}');
  api.inject({ method: 'GET', times: 3, status: 503 });
  const inf = new Informer({ client: new KubeClient(loadClusterAccess(kubeconfig)), path: '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions', parse: (o) => parseNad(o), backoffMs: { min: 20, max: 100 } });
  inf.start();
  t.after(() => inf.stop());
  assert.ok(await inf.whenSynced(WAIT));
  assert.ok(inf.get('ns1/a'));
  assert.ok(api.requests().filter((r) => r.status === 503).length === 3);
});

test('an ADD through the caches reads nothing: pod and NADs from the watches, only the writes go out', { timeout: 30000 }, async (t) => {
  const { api, kubeconfig } = await setup(t);
  api.putNad('ns1', 'net-a', '{"type":"bridge"}');
  api.putNad('ns1', 'net-b', '{"type":"macvlan"}');
  const pod = bound(api, 'web', 'net-a,net-b');
  const c = cache(t, kubeconfig);
  assert.ok(await c.whenSynced(WAIT));
  assert.ok(await c.pods!.reached(rvOf(pod), WAIT));
  // The first request may bring the NAD cache up to the pod's binding (one LIST); later ones read nothing.
  const first = c.forRequest(envFor(pod), 5000);
  await first.getPod('ns1', 'web');
  await first.getNad('ns1', 'net-a');
  api.clearRequests();
  const r = c.forRequest(envFor(pod), 5000);
  const p = await r.getPod('ns1', 'web');
  assert.equal(p.uid, (pod.metadata as JsonObject).uid);
  const [a, b] = await Promise.all([r.getNad('ns1', 'net-a'), r.getNad('ns1', 'net-b')]);
  assert.equal(a?.config, '{"type":"bridge"}');
  assert.equal(b?.config, '{"type":"macvlan"}');
  await r.patchPodAnnotations({ namespace: 'ns1', name: 'web', uid: p.uid }, { 'k8s.v1.cni.cncf.io/network-status': '[]' });
  assert.deepEqual(reads(api), [], 'no read at all');
  assert.equal(writes(api).length, 1);
  assert.equal(c.counters.nadHits >= 3, true);
});

test('a NAD updated between two ADDs is honoured even while the NAD watch lags: the pod fence forces one LIST', { timeout: 30000 }, async (t) => {
  const { api, kubeconfig } = await setup(t);
  api.putNad('ns1', 'net-a', '{"type":"bridge","v":1}');
  const pod1 = bound(api, 'one', 'net-a');
  const c = cache(t, kubeconfig, 'pod');
  const loose = cache(t, kubeconfig, 'watch');
  assert.ok(await c.whenSynced(WAIT));
  assert.ok(await loose.whenSynced(WAIT));
  assert.ok(await c.pods!.reached(rvOf(pod1), WAIT));
  assert.equal((await c.forRequest(envFor(pod1), 5000).getNad('ns1', 'net-a'))?.config, '{"type":"bridge","v":1}');

  // The NAD changes, then a pod is bound that uses it; the watches deliver neither yet.
  api.holdWatches(true);
  api.putNad('ns1', 'net-a', '{"type":"bridge","v":2}');
  const pod2 = bound(api, 'two', 'net-a');
  api.clearRequests();
  const r = c.forRequest(envFor(pod2), 5000);
  const p = await r.getPod('ns1', 'two');
  assert.equal(p.uid, (pod2.metadata as JsonObject).uid, 'the pod not in the cache yet: read once');
  assert.equal((await r.getNad('ns1', 'net-a'))?.config, '{"type":"bridge","v":2}', 'never the stale config');
  const got = reads(api).map((q) => `${q.path}${q.query.includes('limit') ? ' (list)' : ''}`);
  assert.deepEqual(got, ['/api/v1/namespaces/ns1/pods/two', '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions (list)']);
  // The negative control: serving whatever the watch has returns the old config here.
  const stale = await loose.forRequest(envFor(pod2), 5000).getNad('ns1', 'net-a');
  assert.equal(stale?.config, '{"type":"bridge","v":1}', 'cacheConsistency "watch" trades this guarantee for zero reads');
  api.holdWatches(false);
  assert.ok(await c.nads.reached(Number(api.resourceVersion()), WAIT));
  assert.ok(await c.pods!.reached(rvOf(pod2), WAIT));
  api.clearRequests();
  const again = c.forRequest(envFor(pod2), 5000);
  await again.getPod('ns1', 'two');
  assert.equal((await again.getNad('ns1', 'net-a'))?.config, '{"type":"bridge","v":2}');
  assert.deepEqual(reads(api), [], 'once the watches caught up, nothing is read');
});

test('a NAD created a moment ago, not yet in the cache, is read; a missing one is null; a re-created pod is read', { timeout: 30000 }, async (t) => {
  const { api, kubeconfig } = await setup(t);
  const pod = bound(api, 'web', 'fresh');
  const c = cache(t, kubeconfig, 'watch');
  assert.ok(await c.whenSynced(WAIT));
  assert.ok(await c.pods!.reached(rvOf(pod), WAIT));
  api.holdWatches(true);
  api.putNad('ns1', 'fresh', '{"type":"bridge"}');
  api.clearRequests();
  const r = c.forRequest(envFor(pod), 5000);
  assert.equal((await r.getNad('ns1', 'fresh'))?.config, '{"type":"bridge"}');
  assert.equal(await r.getNad('ns1', 'absent'), null);
  assert.equal(reads(api).length, 2, 'one GET per miss');
  // Deleted and re-created under the same name: the runtime's uid is not the cached one.
  api.deletePod('ns1', 'web');
  const again = bound(api, 'web', 'fresh');
  api.clearRequests();
  const p = await c.forRequest(envFor(again), 5000).getPod('ns1', 'web');
  assert.equal(p.uid, (again.metadata as JsonObject).uid);
  assert.equal(reads(api).length, 1);
  api.holdWatches(false);
});
