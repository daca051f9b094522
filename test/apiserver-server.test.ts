// The test apiserver behaves like kube-apiserver where plexus (and its tests) rely on it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import type { JsonObject } from '../src/cni/validate';
import { rawRequest, type RawOptions } from './apiserver/raw';
import { startApiServer, type FakeApi, type FakeApiOptions } from './apiserver/server';

// These tests exercise the server's REST semantics with requests plexus never makes: no RBAC.
async function server(t: TestContext, opts: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startApiServer({ rbac: false, ...opts });
  t.after(() => api.close());
  return api;
}

const POD = '/api/v1/namespaces/ns1/pods';
const NAD = '/apis/k8s.cni.cncf.io/v1/namespaces/ns1/network-attachment-definitions';
const meta = (o: JsonObject) => o.metadata as JsonObject;

function req(api: FakeApi, method: string, path: string, o?: RawOptions) {
  return rawRequest(api, method, path, o);
}

test('create assigns uid, creationTimestamp and a global resourceVersion that grows on every write', async (t) => {
  const api = await server(t);
  const a = await req(api, 'POST', POD, { body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' }, spec: {} } });
  assert.equal(a.status, 201);
  assert.match(String(meta(a.json).uid), /^[0-9a-f-]{36}$/);
  assert.match(String(meta(a.json).creationTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(meta(a.json).namespace, 'ns1');
  const n = await req(api, 'POST', NAD, { body: { metadata: { name: 'n' }, spec: { config: '{}' } } });
  const b = await req(api, 'PATCH', `${POD}/a`, { body: { metadata: { labels: { x: 'y' } } }, contentType: 'application/merge-patch+json' });
  const rvs = [a, n, b].map((r) => Number(meta(r.json).resourceVersion));
  assert.ok(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!, `resourceVersions ${rvs.join(',')} must increase across resources`);
  assert.equal(typeof meta(a.json).resourceVersion, 'string');
  const dup = await req(api, 'POST', POD, { body: { metadata: { name: 'a' } } });
  assert.equal(dup.status, 409);
  assert.equal(dup.json.reason, 'AlreadyExists');
  assert.equal(dup.json.message, 'pods "a" already exists');
});

test('404 is a NotFound Status like the real server', async (t) => {
  const api = await server(t);
  const r = await req(api, 'GET', `${POD}/x`);
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "x" not found', reason: 'NotFound', details: { name: 'x', kind: 'pods' }, code: 404,
  });
  const n = await req(api, 'GET', `${NAD}/x`);
  assert.equal(n.json.message, 'network-attachment-definitions.k8s.cni.cncf.io "x" not found');
  assert.deepEqual(n.json.details, { name: 'x', group: 'k8s.cni.cncf.io', kind: 'network-attachment-definitions' });
  assert.equal((await req(api, 'GET', '/api/v1/namespaces/ns1/widgets/x')).status, 404);
  assert.equal((await req(api, 'POST', `${POD}/x/status`, { body: {} })).status, 405);
});

test('PUT with a stale resourceVersion is a 409 Conflict; without one it is unconditional', async (t) => {
  const api = await server(t);
  const pod = api.putPod({ metadata: { name: 'x', namespace: 'ns1' }, spec: {} });
  api.putPod({ metadata: { name: 'x', namespace: 'ns1', annotations: { bump: '1' } }, spec: {} });
  const stale = await req(api, 'PUT', `${POD}/x`, { body: pod });
  assert.equal(stale.status, 409);
  assert.deepEqual(stale.json, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: 'Operation cannot be fulfilled on pods "x": the object has been modified; please apply your changes to the latest version and try again',
    reason: 'Conflict', details: { name: 'x', kind: 'pods' }, code: 409,
  });
  const noRv = structuredClone(pod);
  delete meta(noRv).resourceVersion;
  assert.equal((await req(api, 'PUT', `${POD}/x`, { body: noRv })).status, 200);
  const wrongUid = structuredClone(noRv);
  meta(wrongUid).uid = 'other';
  const pre = await req(api, 'PUT', `${POD}/x`, { body: wrongUid });
  assert.equal(pre.status, 409);
  assert.match(String(pre.json.message), /Precondition failed: UID in precondition: other, UID in object meta: /);
  const renamed = structuredClone(noRv);
  meta(renamed).name = 'y';
  assert.equal((await req(api, 'PUT', `${POD}/x`, { body: renamed })).status, 400);
});

test('merge patch keeps other annotations and null deletes; stale rv → 409, other uid → 422', async (t) => {
  const api = await server(t);
  const pod = api.putPod({ metadata: { name: 'x', namespace: 'ns1', annotations: { keep: 'k', drop: 'd' } }, spec: {} });
  const merge = { contentType: 'application/merge-patch+json' };
  const ok = await req(api, 'PATCH', `${POD}/x/status`, { ...merge, body: { metadata: { uid: meta(pod).uid, annotations: { drop: null, add: 'a' } } } });
  assert.equal(ok.status, 200);
  assert.deepEqual(meta(ok.json).annotations, { keep: 'k', add: 'a' });
  const stale = await req(api, 'PATCH', `${POD}/x`, { ...merge, body: { metadata: { resourceVersion: meta(pod).resourceVersion, labels: { a: 'b' } } } });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.reason, 'Conflict');
  const uid = await req(api, 'PATCH', `${POD}/x/status`, { ...merge, body: { metadata: { uid: 'not-the-uid', annotations: { z: 'z' } } } });
  assert.equal(uid.status, 422);
  assert.equal(uid.json.reason, 'Invalid');
  assert.equal(uid.json.message, 'Pod "x" is invalid: metadata.uid: Invalid value: "not-the-uid": field is immutable');
  assert.deepEqual(meta(api.getPod('ns1', 'x')!).annotations, { keep: 'k', add: 'a' }, 'failed patches change nothing');
});

test('strategic merge patch works on pods, is refused (415) on custom resources; unknown types are 415', async (t) => {
  const api = await server(t);
  api.putPod({ metadata: { name: 'x', namespace: 'ns1', annotations: { a: '1' } } });
  api.putNad('ns1', 'n', '{"type":"bridge"}');
  const smp = { contentType: 'application/strategic-merge-patch+json', body: { metadata: { annotations: { b: '2' } } } };
  const p = await req(api, 'PATCH', `${POD}/x`, smp);
  assert.deepEqual(meta(p.json).annotations, { a: '1', b: '2' });
  const n = await req(api, 'PATCH', `${NAD}/n`, smp);
  assert.equal(n.status, 415);
  assert.equal(n.json.reason, 'UnsupportedMediaType');
  assert.equal((await req(api, 'PATCH', `${POD}/x`, { contentType: 'application/apply-patch+yaml', body: 'a: b' })).status, 415);
  assert.equal((await req(api, 'PATCH', `${POD}/x`, { contentType: 'text/plain', body: '{}' })).status, 415);
  assert.equal((await req(api, 'POST', POD, { contentType: 'application/yaml', body: 'metadata: {name: q}' })).status, 415);
  assert.equal((await req(api, 'PATCH', `${POD}/x`, { contentType: 'application/merge-patch+json', body: '{nope' })).status, 400);
});

test('json patch with a failing test op is 422 and changes nothing; a passing one applies', async (t) => {
  const api = await server(t);
  const pod = api.putPod({ metadata: { name: 'x', namespace: 'ns1', annotations: { a: '1' } } });
  const jp = 'application/json-patch+json';
  const bad = await req(api, 'PATCH', `${POD}/x`, { contentType: jp, body: [{ op: 'test', path: '/metadata/annotations/a', value: '2' }, { op: 'add', path: '/metadata/annotations/b', value: 'x' }] });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.message, 'the server rejected our request due to an error in our request');
  assert.equal(meta(api.getPod('ns1', 'x')!).resourceVersion, meta(pod).resourceVersion);
  const good = await req(api, 'PATCH', `${POD}/x`, {
    contentType: jp,
    body: [{ op: 'test', path: '/metadata/resourceVersion', value: meta(pod).resourceVersion }, { op: 'add', path: '/metadata/annotations/b', value: 'x' }],
  });
  assert.equal(good.status, 200);
  assert.deepEqual(meta(good.json).annotations, { a: '1', b: 'x' });
  assert.equal((await req(api, 'PATCH', `${POD}/x`, { contentType: jp, body: { op: 'add' } })).status, 400);
});

test('status subresource writes keep spec; main resource writes keep status', async (t) => {
  const api = await server(t);
  api.putPod({ metadata: { name: 'x', namespace: 'ns1' }, spec: { nodeName: 'n1' }, status: { phase: 'Pending' } });
  const merge = 'application/merge-patch+json';
  const s = await req(api, 'PATCH', `${POD}/x/status`, { contentType: merge, body: { spec: { nodeName: 'evil' }, status: { phase: 'Running' } } });
  assert.deepEqual([s.json.spec, s.json.status], [{ nodeName: 'n1' }, { phase: 'Running' }]);
  const m = await req(api, 'PATCH', `${POD}/x`, { contentType: merge, body: { spec: { nodeName: 'n2' }, status: { phase: 'Failed' } } });
  assert.deepEqual([m.json.spec, m.json.status], [{ nodeName: 'n2' }, { phase: 'Running' }]);
  assert.deepEqual((await req(api, 'GET', `${POD}/x/status`)).json.status, { phase: 'Running' });
});

test('lists, label selectors, deletes and delete preconditions', async (t) => {
  const api = await server(t);
  api.putPod({ metadata: { name: 'b', namespace: 'ns1', labels: { app: 'x' } } });
  api.putPod({ metadata: { name: 'a', namespace: 'ns1', labels: { app: 'y' } } });
  api.putPod({ metadata: { name: 'c', namespace: 'ns2', labels: { app: 'x' } } });
  api.putNad('ns1', 'n1', '{"type":"macvlan"}', { 'k8s.v1.cni.cncf.io/resourceName': 'r' });
  const list = await req(api, 'GET', POD);
  assert.equal(list.json.kind, 'PodList');
  assert.deepEqual((list.json.items as JsonObject[]).map((p) => meta(p).name), ['a', 'b']);
  assert.equal((list.json.items as JsonObject[])[0]!.kind, undefined, 'core list items carry no kind');
  const sel = await req(api, 'GET', '/api/v1/pods?labelSelector=app%3Dx');
  assert.deepEqual((sel.json.items as JsonObject[]).map((p) => meta(p).name), ['b', 'c']);
  const nads = await req(api, 'GET', NAD);
  assert.equal((nads.json.items as JsonObject[])[0]!.kind, 'NetworkAttachmentDefinition');
  const pre = await req(api, 'DELETE', `${POD}/a`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'nope' } } });
  assert.equal(pre.status, 409);
  const del = await req(api, 'DELETE', `${POD}/a`);
  assert.equal(del.json.kind, 'Pod');
  assert.equal(api.getPod('ns1', 'a'), undefined);
  const dn = await req(api, 'DELETE', `${NAD}/n1`);
  assert.deepEqual([dn.json.kind, dn.json.status], ['Status', 'Success']);
});

test('events: created, listed and validated against the involved object', async (t) => {
  const api = await server(t);
  const ev = { metadata: { name: 'p.1' }, involvedObject: { kind: 'Pod', namespace: 'ns1', name: 'p' }, reason: 'AddedInterface', message: 'Add net1', type: 'Normal' };
  assert.equal((await req(api, 'POST', '/api/v1/namespaces/ns1/events', { body: ev })).status, 201);
  const wrong = await req(api, 'POST', '/api/v1/namespaces/ns2/events', { body: { ...ev, metadata: { name: 'p.2' } } });
  assert.equal(wrong.status, 422);
  assert.equal((await req(api, 'POST', '/apis/events.k8s.io/v1/namespaces/ns1/events', { body: { metadata: { name: 'e' }, note: 'n' } })).status, 201);
  assert.deepEqual(api.events().map((e) => meta(e).name).sort(), ['e', 'p.1']);
  assert.equal(((await req(api, 'GET', '/api/v1/namespaces/ns1/events')).json.items as JsonObject[]).length, 1);
});

test('bearer auth: 401 Status without or with a wrong token; the token can rotate', async (t) => {
  const api = await server(t, { token: 'old' });
  const none = await req(api, 'GET', POD);
  assert.equal(none.status, 401);
  assert.deepEqual(none.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  assert.equal((await req(api, 'GET', POD, { token: 'wrong' })).status, 401);
  assert.equal((await req(api, 'GET', POD, { token: 'old' })).status, 200);
  api.setToken('new');
  assert.equal((await req(api, 'GET', POD, { token: 'old' })).status, 401);
  assert.equal((await req(api, 'GET', POD, { token: 'new' })).status, 200);
});

test('TLS: client certificates from the CA authenticate, self-signed ones do not', async (t) => {
  const api = await server(t, { tls: true, token: 'tok' });
  assert.ok(api.url.startsWith('https://127.0.0.1:'));
  assert.ok(api.caFile && existsSync(api.caFile));
  const good = await api.mintClientCert('alice', ['devs']);
  const rogue = await api.mintRogueClientCert('mallory');
  assert.equal((await req(api, 'GET', POD, { cert: good })).status, 200);
  assert.equal((await req(api, 'GET', POD, { cert: rogue })).status, 401);
  assert.equal((await req(api, 'GET', POD, { token: 'tok' })).status, 200);
  api.deny({ verb: 'patch', resource: 'pods/status' });
  api.putPod({ metadata: { name: 'x', namespace: 'ns1' } });
  const f = await req(api, 'PATCH', `${POD}/x/status`, { cert: good, contentType: 'application/merge-patch+json', body: {} });
  assert.equal(f.status, 403);
  assert.equal(f.json.message, 'pods "x" is forbidden: User "alice" cannot patch resource "pods/status" in API group "" in the namespace "ns1"');
});

test('faults are consumed in order by matching requests; failAll and clearFaults', async (t) => {
  const api = await server(t);
  api.inject({ method: 'GET', pathPrefix: `${POD}/x`, status: 503, times: 2 });
  api.inject({ status: 429, times: 1 });
  assert.equal((await req(api, 'GET', `${POD}/other`)).status, 429, 'first fault does not match, second does');
  assert.equal((await req(api, 'GET', `${POD}/x`)).status, 503);
  const second = await req(api, 'GET', `${POD}/x`);
  assert.equal(second.status, 503);
  assert.equal(second.json.reason, 'ServiceUnavailable');
  assert.equal((await req(api, 'GET', `${POD}/x`)).status, 404, 'faults used up');
  api.inject({ status: 500, times: 1, body: 'upstream exploded' });
  assert.equal((await req(api, 'GET', POD)).text, 'upstream exploded');
  api.failAll(500);
  assert.equal((await req(api, 'GET', POD)).status, 500);
  assert.equal((await req(api, 'POST', POD, { body: {} })).status, 500);
  api.clearFaults();
  assert.equal((await req(api, 'GET', POD)).status, 200);
  api.inject({ times: 1, reset: true });
  await assert.rejects(req(api, 'GET', POD), /socket hang up|ECONNRESET/);
  assert.deepEqual(api.requests().map((r) => r.status).slice(-2), [200, 0]);
});

test('close() ends keep-alive connections and pending delayed requests', { timeout: 5000 }, async () => {
  const api = await startApiServer({ rbac: false });
  const agent = new http.Agent({ keepAlive: true });
  try {
    assert.equal((await req(api, 'GET', POD, { agent })).status, 200);
    assert.equal((await req(api, 'GET', POD, { agent })).status, 200);
    assert.equal(api.connections(), 1, 'keep-alive reused the connection');
    api.inject({ times: 1, delayMs: 60_000 });
    const hanging = req(api, 'GET', POD, { agent });
    await new Promise<void>((resolve) => {
      const poll = () => (api.requests().length === 3 ? resolve() : setImmediate(poll));
      poll();
    });
    await api.close();
    await assert.rejects(hanging);
  } finally {
    agent.destroy();
    await api.close();
  }
});

test('standalone: prints url/ca, writes a kubeconfig, serves, exits 0 on SIGTERM', { timeout: 15000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-apiserver-main-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'apiserver', 'main.ts'), '--tls', '--token', 'T', '--state-dir', dir, '--no-rbac'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', () => reject(new Error('exited before printing')));
  });
  const info = JSON.parse(line) as { url: string; ca: string; kubeconfig: string };
  assert.equal(info.ca, join(dir, 'ca.crt'));
  assert.match(readFileSync(info.kubeconfig, 'utf8'), /token: T/);
  const r = await rawRequest({ url: info.url, caPem: readFileSync(info.ca, 'utf8') }, 'GET', POD, { token: 'T' });
  assert.equal(r.status, 200);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
