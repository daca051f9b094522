// Pods, NADs, annotation writes and events, over HTTP against the test apiserver.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CniError, Code } from '../src/cni/errors';
import type { JsonObject } from '../src/cni/validate';
import { kubeClusterApi } from '../src/k8s/cluster-api';
import { destroyAgents, KubeApiError, KubeClient } from '../src/k8s/client';
import { createEvent } from '../src/k8s/events';
import { loadKubeconfig } from '../src/k8s/kubeconfig';
import { getNad, getPod, patchPodAnnotations } from '../src/k8s/pods';
import { startApiServer, type FakeApi, type FakeApiOptions } from './apiserver/server';

const STATUS = 'k8s.v1.cni.cncf.io/network-status';

async function setup(t: TestContext, opts: FakeApiOptions = {}): Promise<{ api: FakeApi; client: KubeClient; kubeconfig: string }> {
  const api = await startApiServer(opts);
  const dir = mkdtempSync(join(tmpdir(), 'plexus-pods-'));
  t.after(async () => {
    destroyAgents();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  return { api, client: new KubeClient(loadKubeconfig(kubeconfig)), kubeconfig };
}

function addPod(api: FakeApi, annotations: Record<string, string> = {}): { uid: string } {
  const pod = api.putPod({ metadata: { name: 'web', namespace: 'ns1', annotations }, spec: { nodeName: 'n1' } });
  return { uid: String((pod.metadata as JsonObject).uid) };
}

const annotationsOf = (api: FakeApi) => (api.getPod('ns1', 'web')?.metadata as JsonObject | undefined)?.annotations;

test('getPod returns the validated essentials', async (t) => {
  const { api, client } = await setup(t);
  const { uid } = addPod(api, { 'k8s.v1.cni.cncf.io/networks': 'macvlan' });
  const pod = await getPod(client, 'ns1', 'web');
  assert.deepEqual(pod, {
    name: 'web',
    namespace: 'ns1',
    uid,
    resourceVersion: String((api.getPod('ns1', 'web')!.metadata as JsonObject).resourceVersion),
    annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan' },
  });
  const missing = await getPod(client, 'ns1', 'nope').catch((e: unknown) => e);
  assert.ok(missing instanceof KubeApiError && missing.status === 404 && missing.reason === 'NotFound');
});

test('getPod rejects a malformed object, naming the field', async (t) => {
  const { api, client } = await setup(t);
  api.putPod({ metadata: { name: 'web', namespace: 'ns1', annotations: { n: 5 } } });
  await assert.rejects(getPod(client, 'ns1', 'web'), (e: unknown) => {
    assert.ok(e instanceof CniError);
    assert.equal(e.code, Code.DecodeFailure);
    assert.equal(e.message, 'pod ns1/web: metadata.annotations.n: must be a string');
    return true;
  });
});

test('getPod retries a flaky server within the Multus-like default budget', async (t) => {
  const { api, client } = await setup(t);
  addPod(api);
  api.inject({ method: 'GET', status: 500, times: 2 });
  assert.equal((await getPod(client, 'ns1', 'web')).name, 'web');
  assert.deepEqual(api.requests().map((r) => r.status), [500, 500, 200]);
});

test('getNad: config and annotations; absent config; a clear NotFound', async (t) => {
  const { api, client } = await setup(t);
  api.putNad('ns1', 'macvlan', '{"cniVersion":"1.0.0","type":"macvlan"}', { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov' });
  api.putNad('ns1', 'bare');
  const nad = await getNad(client, 'ns1', 'macvlan');
  assert.equal(nad.config, '{"cniVersion":"1.0.0","type":"macvlan"}');
  assert.deepEqual(nad.annotations, { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov' });
  assert.equal((await getNad(client, 'ns1', 'bare')).config, undefined);
  const err = await getNad(client, 'ns1', 'gone').catch((e: unknown) => e);
  assert.ok(err instanceof KubeApiError);
  assert.equal(err.status, 404);
  assert.equal(err.message, 'cannot find a network-attachment-definition (gone) in namespace (ns1): network-attachment-definitions.k8s.cni.cncf.io "gone" not found');
});

test('patchPodAnnotations: one merge patch to pods/status with the uid; others kept, null deletes', async (t) => {
  const { api, client } = await setup(t);
  const { uid } = addPod(api, { keep: 'me', [STATUS]: 'old', drop: 'x' });
  const out = await patchPodAnnotations(client, { namespace: 'ns1', name: 'web', uid }, { [STATUS]: '[{"name":"net"}]', drop: null });
  assert.deepEqual(out.annotations, { keep: 'me', [STATUS]: '[{"name":"net"}]' });
  assert.deepEqual(annotationsOf(api), out.annotations);
  const [req] = api.requests();
  assert.deepEqual([req?.method, req?.path, req?.contentType], ['PATCH', '/api/v1/namespaces/ns1/pods/web/status', 'application/merge-patch+json']);
  assert.deepEqual(JSON.parse(req?.body ?? ''), { metadata: { annotations: { [STATUS]: '[{"name":"net"}]', drop: null }, uid } });
});

test('patchPodAnnotations never writes to a re-created pod', async (t) => {
  const { api, client } = await setup(t);
  const { uid } = addPod(api);
  api.deletePod('ns1', 'web');
  addPod(api, { fresh: 'pod' });
  const err = await patchPodAnnotations(client, { namespace: 'ns1', name: 'web', uid }, { [STATUS]: '[]' }).catch((e: unknown) => e);
  assert.ok(err instanceof KubeApiError);
  assert.equal(err.reason, 'UIDMismatch');
  assert.match(err.message, /deleted and re-created/);
  assert.deepEqual(annotationsOf(api), { fresh: 'pod' });
  assert.equal(api.requests().length, 1, 'not retried');
});

test('patchPodAnnotations retries 409 and 5xx within its budget', async (t) => {
  const { api, client } = await setup(t);
  const { uid } = addPod(api);
  api.inject({ method: 'PATCH', status: 409, times: 1 });
  api.inject({ method: 'PATCH', status: 503, times: 1 });
  await patchPodAnnotations(client, { namespace: 'ns1', name: 'web', uid }, { a: 'b' });
  assert.deepEqual(api.requests().map((r) => r.status), [409, 503, 200]);
  assert.deepEqual(annotationsOf(api), { a: 'b' });
});

test('with only `update` on pods/status (Multus RBAC) it falls back to GET + PUT, re-reading on conflict', async (t) => {
  const { api, client } = await setup(t, { token: 'tok' });
  const { uid } = addPod(api, { keep: 'me', drop: 'x' });
  api.deny({ verb: 'patch', resource: 'pods/status' });
  api.inject({ method: 'PUT', status: 409, times: 1 });
  const out = await patchPodAnnotations(client, { namespace: 'ns1', name: 'web', uid }, { [STATUS]: '[]', drop: null });
  assert.deepEqual(out.annotations, { keep: 'me', [STATUS]: '[]' });
  assert.deepEqual(
    api.requests().map((r) => `${r.method} ${r.path.replace('/api/v1/namespaces/ns1/pods/web', '')} ${r.status}`),
    ['PATCH /status 403', 'GET  200', 'PUT /status 409', 'GET  200', 'PUT /status 200'],
  );
  api.deletePod('ns1', 'web');
  addPod(api);
  const err = await patchPodAnnotations(client, { namespace: 'ns1', name: 'web', uid }, { a: 'b' }).catch((e: unknown) => e);
  assert.ok(err instanceof KubeApiError && err.reason === 'UIDMismatch', String(err));
});

test('events: AddedInterface recorded against the pod', async (t) => {
  const { api, client } = await setup(t);
  const { uid } = addPod(api);
  await createEvent(client, { pod: { namespace: 'ns1', name: 'web', uid }, type: 'Normal', reason: 'AddedInterface', message: 'Add net1 [10.1.1.5/24] from ns1/macvlan' });
  const [ev] = api.events();
  assert.ok(ev);
  assert.deepEqual(ev.involvedObject, { kind: 'Pod', apiVersion: 'v1', namespace: 'ns1', name: 'web', uid });
  assert.deepEqual([ev.type, ev.reason, ev.message, ev.count], ['Normal', 'AddedInterface', 'Add net1 [10.1.1.5/24] from ns1/macvlan', 1]);
  assert.match(String((ev.metadata as JsonObject).name), /^web\.[0-9a-f]+$/);
  assert.equal((ev.source as JsonObject).component, 'plexus');
});

test('cluster-api adapter: NotFound NAD is null, the rest passes through', async (t) => {
  const { api, kubeconfig } = await setup(t);
  const { uid } = addPod(api);
  const cluster = kubeClusterApi(kubeconfig, 2000);
  assert.equal(await cluster.getNad('ns1', 'absent'), null);
  assert.equal((await cluster.getPod('ns1', 'web')).uid, uid);
  await cluster.patchPodAnnotations({ namespace: 'ns1', name: 'web', uid }, { x: 'y' });
  await cluster.podEvent({ namespace: 'ns1', name: 'web', uid }, { type: 'Warning', reason: 'NoNetworkFound', message: 'm' });
  assert.deepEqual(annotationsOf(api), { x: 'y' });
  assert.equal(api.events()[0]?.reason, 'NoNetworkFound');
});
