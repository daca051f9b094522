// The node agent's periodic IPAM leak sweep end to end: real `plexus daemon` processes (one per
// node name) against the test API server, which enforces deploy/10-rbac.yaml (the Lease Role
// included). The short interval is configuration (ipamGcIntervalSeconds: 1); every wait polls the
// API or /metrics with a deadline.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { JsonObject } from '../src/cni/validate';
import { encodeExtra, extraKey } from '../src/ipam/pool/layout';
import { startApiServer, type FakeApi } from './apiserver/server';
import { startAgent as startNodeAgent } from './helpers/daemon';
import { tempDir } from './helpers/host';
import { requireBuild } from './helpers/plexus';

requireBuild();
const NS = 'kube-system';
const POOL = 'gc-10.198.0.0-24';

/** Polls a condition (no fixed sleep); fails with `what` after 20 s. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An agent as these tests run it: no caches, info logs (each freed entry is an info line). */
const startAgent = (t: TestContext, dir: string, node: string, config: JsonObject) => startNodeAgent(t, dir, { watchCaches: false, logLevel: 'info', ...config }, node);

const hourAgo = () => new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');

/** An allocation at `offset`, with plexus's annotation recording the pod UID when given. */
function entry(pool: JsonObject, offset: number, id: string, podref: string, uid?: string): void {
  ((pool.spec as JsonObject).allocations as JsonObject)[String(offset)] = { id, podref, ifname: 'net1' };
  if (uid) ((pool.metadata as JsonObject).annotations as JsonObject)[extraKey(BigInt(offset))] = encodeExtra({ cid: id.slice(0, 12), if: 'net1', uid, node: 'node-a' });
}

function allocations(api: FakeApi): string[] {
  const pool = api.getObject('ippools', NS, POOL);
  return Object.keys(((pool?.spec as JsonObject | undefined)?.allocations as JsonObject | undefined) ?? {}).sort();
}

function addLeak(api: FakeApi, offset: number, pod: string): void {
  const pool = structuredClone(api.getObject('ippools', NS, POOL)!);
  entry(pool, offset, `cid-leak-${offset}-0000000000`, `team/${pod}`, `uid-of-deleted-${pod}`);
  api.putObject('ippools', pool);
}

function holder(api: FakeApi): { holder: string; transitions: number } | undefined {
  const lease = api.getObject('leases', NS, 'plexus-ipam-gc');
  if (!lease) return undefined;
  const spec = lease.spec as JsonObject;
  return { holder: String(spec.holderIdentity), transitions: Number(spec.leaseTransitions) };
}

async function seededCluster(t: TestContext): Promise<{ api: FakeApi; kubeconfig: string; dir: string; liveId: string }> {
  const dir = tempDir(t);
  const api = await startApiServer({ tls: true, token: 'tok' });
  t.after(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const live = api.putPod({ metadata: { name: 'web', namespace: 'team' } });
  api.putPod({ metadata: { name: 'sts-0', namespace: 'team' } }); // the re-created pod: a new UID
  api.putPod({ metadata: { name: 'legacy', namespace: 'team' } });
  const liveId = 'cid-live-00000000000000';
  const pool: JsonObject = { metadata: { name: POOL, namespace: NS, annotations: {} }, spec: { range: '10.198.0.0/24', allocations: {} } };
  entry(pool, 1, liveId, 'team/web', String((live.metadata as JsonObject).uid));
  entry(pool, 2, 'cid-gone-00000000000000', 'team/gone', 'uid-of-a-deleted-pod');
  entry(pool, 3, 'cid-sts0-00000000000000', 'team/sts-0', 'uid-before-re-creation');
  entry(pool, 4, 'cid-legacy-000000000000', 'team/legacy'); // Whereabouts-made: no UID; its pod exists
  api.putObject('ippools', pool);
  const reservation = (name: string, containerid: string, podref: string, creationTimestamp?: string) =>
    api.putObject('overlappingrangeipreservations', { metadata: { name, namespace: NS, ...(creationTimestamp ? { creationTimestamp } : {}) }, spec: { containerid, podref, ifname: 'net1' } });
  reservation('10.198.0.1', liveId, 'team/web', hourAgo());
  reservation('10.198.0.9', 'cid-orphan-00000000000', 'team/gone', hourAgo());
  reservation('10.198.0.10', 'cid-adding-00000000000', 'team/new'); // an ADD in flight: within the grace
  return { api, kubeconfig, dir, liveId };
}

test('agents elect one sweeper: it frees exactly the leaks, the other skips, and takes over when the holder dies', { timeout: 90_000 }, async (t) => {
  const { api, kubeconfig, dir } = await seededCluster(t);
  const config = { kubeconfig, ipamGcIntervalSeconds: 1 };
  const a = await startAgent(t, join(dir, 'a'), 'node-a', config);
  await until('node-a swept once', async () => ((await a.metric('plexus_ipam_gc_runs_total', { result: 'swept' })) ?? 0) >= 1);
  assert.deepEqual(allocations(api), ['1', '4'], 'the live pod and the UID-less entry of an existing pod are kept');
  const annotations = Object.keys((api.getObject('ippools', NS, POOL)!.metadata as JsonObject).annotations as JsonObject);
  assert.deepEqual(annotations, [extraKey(1n)], 'freed entries take their annotation with them');
  assert.deepEqual(api.listObjects('overlappingrangeipreservations').map((r) => (r.metadata as JsonObject).name).sort(), ['10.198.0.1', '10.198.0.10']);
  assert.equal(await a.metric('plexus_ipam_gc_freed_total'), 2);
  assert.equal(await a.metric('plexus_ipam_gc_reservations_deleted_total'), 1);
  assert.ok(((await a.metric('plexus_ipam_gc_last_success_timestamp_seconds')) ?? 0) * 1000 > Date.now() - 60_000);
  assert.equal(await a.metric('plexus_ipam_gc_leader'), 1);
  assert.deepEqual(holder(api), { holder: 'node-a', transitions: 0 });
  const stsUid = String((api.getPod('team', 'sts-0')!.metadata as JsonObject).uid);
  const freedLog = a.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as JsonObject).filter((l) => l.msg === 'ipam gc freed an allocation');
  assert.deepEqual(freedLog.map((l) => [l.pod, l.why]), [['team/gone', 'pod deleted'], ['team/sts-0', `pod re-created (uid uid-before-re-creation is now ${stsUid})`]]);

  const b = await startAgent(t, join(dir, 'b'), 'node-b', config);
  await until('node-b skipped twice', async () => ((await b.metric('plexus_ipam_gc_runs_total', { result: 'skipped' })) ?? 0) >= 2);
  addLeak(api, 5, 'gone-too');
  await until('the new leak is freed', () => !allocations(api).includes('5'));
  assert.equal(await a.metric('plexus_ipam_gc_freed_total'), 3, 'node-a freed it');
  assert.equal(await b.metric('plexus_ipam_gc_runs_total', { result: 'swept' }), 0, 'node-b never swept while node-a held the Lease');
  assert.equal(await b.metric('plexus_ipam_gc_freed_total'), 0);
  assert.equal(await b.metric('plexus_ipam_gc_leader'), 0);
  assert.equal(await b.metric('plexus_ipam_gc_runs_total', { result: 'failed' }), 0);
  assert.equal(holder(api)?.holder, 'node-a');

  // A crashed holder never gives the Lease back: node-b takes it once it has not changed for
  // leaseDurationSeconds (2 intervals) as node-b saw it.
  a.proc.kill('SIGKILL');
  await a.exited;
  await until('node-b holds the Lease', () => holder(api)?.holder === 'node-b');
  assert.equal(holder(api)?.transitions, 1);
  addLeak(api, 6, 'gone-three');
  await until('node-b frees a leak', () => !allocations(api).includes('6'));
  assert.equal(await b.metric('plexus_ipam_gc_freed_total'), 1);
  assert.equal(await b.metric('plexus_ipam_gc_leader'), 1);
  assert.deepEqual(allocations(api), ['1', '4'], 'the live entries outlived both sweepers');

  // A holder stopped cleanly hands the Lease back: the next agent need not wait it out.
  b.proc.kill('SIGTERM');
  assert.equal(await b.exited, 0);
  assert.equal(holder(api)?.holder, '', 'released on SIGTERM');
  const c = await startAgent(t, join(dir, 'c'), 'node-c', config);
  await until('node-c holds the Lease', () => holder(api)?.holder === 'node-c');
  assert.equal(holder(api)?.transitions, 2);
  assert.equal(await c.metric('plexus_ipam_gc_runs_total', { result: 'skipped' }), 0, 'taken at its first round');
});

test('a failing sweep is a warning and a metric, never /readyz; SIGTERM cuts a sweep short', { timeout: 60_000 }, async (t) => {
  const { api, kubeconfig, dir } = await seededCluster(t);
  // Not a 5xx: the client would retry that within the request's budget, and the round succeed.
  api.inject({ method: 'GET', pathPrefix: '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools', status: 403, times: 1 });
  const a = await startAgent(t, dir, 'node-a', { kubeconfig, ipamGcIntervalSeconds: 1 });
  await until('a failed round', async () => ((await a.metric('plexus_ipam_gc_runs_total', { result: 'failed' })) ?? 0) >= 1);
  const ready = await new Promise<number>((resolve, reject) => {
    http.get({ socketPath: join(dir, 'metrics.sock'), path: '/readyz', agent: false }, (res) => resolve(res.resume().statusCode ?? 0)).on('error', reject);
  });
  assert.equal(ready, 200, 'a failed sweep does not make the agent unready');
  assert.match(a.stderr(), /ipam gc sweep failed; retried next interval/);
  await until('the next round sweeps', async () => ((await a.metric('plexus_ipam_gc_runs_total', { result: 'swept' })) ?? 0) >= 1);
  assert.deepEqual(allocations(api), ['1', '4']);

  // A sweep stuck on a slow API: the pod GET answers only after 60 s.
  addLeak(api, 7, 'slow');
  api.inject({ method: 'GET', pathPrefix: '/api/v1/namespaces/team/pods/slow', delayMs: 60_000, times: 1 });
  await until('the sweep waits on the slow pod GET', () => api.requests().some((r) => r.path === '/api/v1/namespaces/team/pods/slow'));
  const t0 = Date.now();
  a.proc.kill('SIGTERM');
  assert.equal(await a.exited, 0);
  assert.ok(Date.now() - t0 < 10_000, `exited ${Date.now() - t0} ms after SIGTERM, not after the 30 s request budget`);
  assert.ok(allocations(api).includes('7'), 'the cut sweep freed nothing it had not judged');
});
