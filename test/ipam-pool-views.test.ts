// The agent's pool views (src/ipam/pool/store.ts PoolViews) and the pool-first write order, on the
// wire against the test apiserver: a node's burst reads a pool once, its concurrent ADDs never race
// each other, a stale view costs a refused patch and never a duplicate, a patch reply comes back as
// metadata only, and an entry left without its reservation by a crash is repaired by the retried ADD.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Allocator, sharedTarget, type Attachment } from '../src/ipam/pool/allocate';
import { ipString } from '../src/ipam/pool/addrs';
import { ipamSection, loadPoolConf, type PoolConf } from '../src/ipam/pool/config';
import { PoolApi, PoolViews } from '../src/ipam/pool/store';
import { destroyAgents, KubeApiError, KubeClient, METADATA_ONLY } from '../src/k8s/client';
import { loadKubeconfig } from '../src/k8s/kubeconfig';
import { requireBuild } from './helpers/plexus';
import { ipsOf, POOL_NS, poolWorld, type PoolWorld } from './helpers/pool';

requireBuild();

/** One node's agent: its own connection (tlsServerName keys the socket) and its own views. */
// Views kept for 10 minutes: what the tests prove must not depend on how fast this machine is.
function agent(w: PoolWorld, conf: PoolConf, node: string, views = new PoolViews(600_000)) {
  const access = loadKubeconfig(w.kubeconfig);
  const api = new PoolApi(new KubeClient({ ...access, tlsServerName: access.tlsServerName ?? 'localhost' }, { timeoutMs: 10_000 }), POOL_NS, 10_000, views);
  const allocator = new Allocator(api, conf);
  const target = sharedTarget(conf, conf.ranges[0]!);
  const att = (id: string): Attachment => ({ containerId: id, ifname: 'net1', podref: `default/${id}`, node });
  return {
    api,
    views,
    add: async (id: string) => ipString((await allocator.allocate(target, att(id))).ip, 4),
    del: (id: string) => allocator.release(target, att(id)),
  };
}

function poolConf(w: PoolWorld, range: string): PoolConf {
  const { net, ipam } = ipamSection(w.conf({ range }));
  return loadPoolConf(net, ipam);
}

test('a node’s burst reads the pool once: PATCH + reservation per ADD after the first, no race among its own ADDs', async (t) => {
  const w = await poolWorld(t);
  t.after(destroyAgents);
  const conf = poolConf(w, '10.80.0.0/28');
  const a = agent(w, conf, 'node-a');
  await a.add('first');
  const before = w.api.requests().length;
  const got = await Promise.all(Array.from({ length: 8 }, (_, i) => a.add(`burst-${i}`)));
  const reqs = w.api.requests().slice(before);
  assert.equal(new Set(got).size, 8, `distinct addresses: ${got.join(' ')}`);
  assert.deepEqual(reqs.map((r) => r.method).sort(), [...Array(8).fill('PATCH'), ...Array(8).fill('POST')].sort(), 'no pool read, and no lost race among this node’s own ADDs');
  assert.equal(a.api.counters.conflicts, 0);
  const ids = Object.values(w.allocations('10.80.0.0-28')).map((e) => e.id).sort();
  assert.deepEqual(ids, ['burst-0', 'burst-1', 'burst-2', 'burst-3', 'burst-4', 'burst-5', 'burst-6', 'burst-7', 'first']);
});

test('a stale view costs one refused patch and a fresh read, never a duplicate', async (t) => {
  const w = await poolWorld(t);
  t.after(destroyAgents);
  const conf = poolConf(w, '10.81.0.0/30'); // two usable addresses
  const a = agent(w, conf, 'node-a');
  const b = agent(w, conf, 'node-b');
  const mine = await a.add('a1');
  const theirs = await b.add('b1'); // node-a's view still shows this address free
  assert.notEqual(mine, theirs);
  await assert.rejects(a.add('a2'), /all addresses are allocated/);
  assert.equal(a.api.counters.conflicts, 1, 'the view’s pick was refused by the patch’s test');
  assert.deepEqual(Object.values(w.allocations('10.81.0.0-30')).map((e) => e.id).sort(), ['a1', 'b1']);
  // The fresh read after the refusal became the view: DEL of b1 elsewhere is then seen on the next read only.
  await b.del('b1');
  assert.equal(await a.add('a2'), theirs, 'a view with nothing free is re-read before giving up');
});

test('a pool deleted under a kept view is created again by the next ADD', async (t) => {
  const w = await poolWorld(t);
  t.after(destroyAgents);
  const conf = poolConf(w, '10.84.0.0/29');
  const a = agent(w, conf, 'node-a');
  await a.add('before');
  assert.ok(w.api.removeObject('ippools', POOL_NS, '10.84.0.0-29'));
  const ip = await a.add('after');
  assert.deepEqual(Object.values(w.allocations('10.84.0.0-29')).map((e) => e.id), ['after'], `${ip} in the new pool`);
});

test('a pool patch is answered with metadata only (PartialObjectMetadata), not the whole pool', async (t) => {
  const w = await poolWorld(t);
  t.after(destroyAgents);
  const conf = poolConf(w, '10.82.0.0/24');
  const a = agent(w, conf, 'node-a');
  const bytes: number[] = [];
  const client = a.api.client;
  const missing = await client.patch(`/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${POOL_NS}/ippools/none`, [], 'application/json-patch+json', { accept: METADATA_ONLY }).catch((e: unknown) => e);
  assert.ok(missing instanceof KubeApiError && missing.status === 404 && missing.reason === 'NotFound', 'a Status is never transformed');
  await a.add('one');
  const pool = w.api.getObject('ippools', POOL_NS, '10.82.0.0-24');
  assert.ok(pool);
  const reply = await client.patch(`/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${POOL_NS}/ippools/10.82.0.0-24`, [{ op: 'test', path: '/spec/range', value: '10.82.0.0/24' }], 'application/json-patch+json', {
    accept: METADATA_ONLY,
    onResponseBytes: (n) => bytes.push(n),
  });
  assert.equal(reply.kind, 'PartialObjectMetadata');
  assert.equal(reply.apiVersion, 'meta.k8s.io/v1');
  assert.equal(reply.spec, undefined);
  assert.equal((reply.metadata as { name: string }).name, '10.82.0.0-24');
  const full = await client.get(`/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${POOL_NS}/ippools/10.82.0.0-24`, { onResponseBytes: (n) => bytes.push(n) });
  assert.equal(full.kind, 'IPPool');
  assert.ok(bytes[0]! < bytes[1]!, `metadata reply ${bytes[0]} B < object ${bytes[1]} B`);
  assert.ok(w.api.requests().some((r) => r.method === 'PATCH' && r.body.includes('"one"')), 'the allocation itself was a patch');
  // An Accept the server cannot satisfy is refused before the patch applies, as kube-apiserver does.
  const rv = (w.api.getObject('ippools', POOL_NS, '10.82.0.0-24')?.metadata as { resourceVersion: string }).resourceVersion;
  const refused = await client.patch(`/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${POOL_NS}/ippools/10.82.0.0-24`, [{ op: 'add', path: '/metadata/labels', value: { x: 'y' } }], 'application/json-patch+json', { accept: 'application/json;as=Table;g=meta.k8s.io;v=v1' }).catch((e: unknown) => e);
  assert.ok(refused instanceof KubeApiError && refused.status === 406 && refused.reason === 'NotAcceptable', String(refused));
  assert.equal((w.api.getObject('ippools', POOL_NS, '10.82.0.0-24')?.metadata as { resourceVersion: string }).resourceVersion, rv, 'not applied');
});

test('an entry a crash left without its reservation: the retried ADD keeps the address and reserves it; another pod’s reservation fails it clearly', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.83.0.0/29' });
  w.api.putObject('ippools', { metadata: { name: '10.83.0.0-29', namespace: POOL_NS }, spec: { range: '10.83.0.0/29', allocations: { '3': { id: 'crashed', podref: 'default/crashed', ifname: 'net1' }, '4': { id: 'twice', podref: 'default/twice', ifname: 'net1' } } } });
  const again = await w.run('ADD', 'crashed', conf);
  assert.equal(again.status, 0, again.stdout);
  assert.deepEqual(ipsOf(again), ['10.83.0.3/29']);
  assert.deepEqual(w.api.getObject('overlappingrangeipreservations', POOL_NS, '10.83.0.3')?.spec, { containerid: 'crashed', podref: 'default/crashed', ifname: 'net1' });
  // .4 is reserved by a pod of an overlapping range: handed out twice, which ADD must not hide.
  w.api.putObject('overlappingrangeipreservations', { metadata: { name: '10.83.0.4', namespace: POOL_NS }, spec: { containerid: 'other', podref: 'ns2/other', ifname: 'net1' } });
  const twice = await w.run('ADD', 'twice', conf);
  assert.equal(twice.status, 1);
  assert.match(twice.json().msg as string, /address 10\.83\.0\.4 of container twice is also reserved by another pod \(OverlappingRangeIPReservation 10\.83\.0\.4\)/);
  assert.deepEqual(w.api.getObject('overlappingrangeipreservations', POOL_NS, '10.83.0.4')?.spec, { containerid: 'other', podref: 'ns2/other', ifname: 'net1' }, 'the other pod’s reservation untouched');
});
