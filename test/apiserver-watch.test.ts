// The test apiserver's watch, field selectors and list pagination behave as kube-apiserver's do
// on the wire: the agent's caches are tested against this, so this is tested first.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test, type TestContext } from 'node:test';
import { isObject, type JsonObject } from '../src/cni/validate';
import { rawRequest } from './apiserver/raw';
import { startApiServer, type FakeApi, type FakeApiOptions } from './apiserver/server';

async function server(t: TestContext, opts: FakeApiOptions = {}): Promise<FakeApi> {
  const api = await startApiServer(opts);
  t.after(() => api.close());
  return api;
}

interface Ev {
  type: string;
  object: JsonObject;
}

/** An open watch: events as they arrive, awaited one by one (no sleeping). */
interface Watch {
  status: number;
  headers: http.IncomingHttpHeaders;
  next(): Promise<Ev>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

function watch(t: TestContext, api: FakeApi, path: string): Promise<Watch> {
  return new Promise((resolve, reject) => {
    const queue: Ev[] = [];
    const waiters: Array<(e: Ev) => void> = [];
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => (endedResolve = r));
    const req = http.get(new URL(path, api.url), { agent: false }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const ev = JSON.parse(buf.slice(0, nl)) as Ev;
          buf = buf.slice(nl + 1);
          const w = waiters.shift();
          if (w) w(ev);
          else queue.push(ev);
        }
      });
      res.on('end', () => endedResolve());
      res.on('aborted', () => endedResolve());
      res.on('error', () => endedResolve());
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        next: () => {
          const e = queue.shift();
          return e ? Promise.resolve(e) : new Promise((r) => waiters.push(r));
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => (queue.length === 0 && waiters.length === 0 ? undefined : reject(err)));
    t.after(() => req.destroy());
  });
}

const meta = (o: JsonObject) => o.metadata as JsonObject;
const PODS = '/api/v1/pods';
const nadPath = (ns: string) => `/apis/k8s.cni.cncf.io/v1/namespaces/${ns}/network-attachment-definitions`;

test('a watch from "" streams the current objects as ADDED, then every change, chunked, in resourceVersion order', { timeout: 15000 }, async (t) => {
  const api = await server(t);
  api.putNad('ns1', 'a', '{"type":"bridge"}');
  const w = await watch(t, api, `${nadPath('ns1')}?watch=true`);
  assert.equal(w.status, 200);
  assert.equal(w.headers['transfer-encoding'], 'chunked');
  const first = await w.next();
  assert.equal(first.type, 'ADDED');
  assert.equal(meta(first.object).name, 'a');
  assert.equal(first.object.kind, 'NetworkAttachmentDefinition');
  assert.equal(first.object.apiVersion, 'k8s.cni.cncf.io/v1');
  api.putNad('ns1', 'a', '{"type":"macvlan"}');
  api.putNad('ns2', 'other', '{}');
  api.deleteNad('ns1', 'a');
  const mod = await w.next();
  const del = await w.next();
  assert.equal(mod.type, 'MODIFIED');
  assert.equal((mod.object.spec as JsonObject).config, '{"type":"macvlan"}');
  assert.equal(del.type, 'DELETED', 'the namespaced watch does not see ns2');
  assert.ok(Number(meta(del.object).resourceVersion) > Number(meta(mod.object).resourceVersion));
  assert.equal(meta(del.object).resourceVersion, api.resourceVersion(), 'DELETED carries the deletion\'s resourceVersion');
});

test('a watch from a resourceVersion replays only later changes; bookmarks only when allowed; timeoutSeconds ends it', { timeout: 15000 }, async (t) => {
  const api = await server(t);
  const a = api.putNad('ns1', 'a', '{}');
  const rv = String(meta(a).resourceVersion);
  api.putNad('ns1', 'b', '{}');
  const w = await watch(t, api, `${nadPath('ns1')}?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`);
  const ev = await w.next();
  assert.equal(ev.type, 'ADDED');
  assert.equal(meta(ev.object).name, 'b', 'a (at the given version) is not replayed');
  api.bookmark();
  const bm = await w.next();
  assert.equal(bm.type, 'BOOKMARK');
  assert.deepEqual(bm.object, { kind: 'NetworkAttachmentDefinition', apiVersion: 'k8s.cni.cncf.io/v1', metadata: { resourceVersion: api.resourceVersion() } });
  const quiet = await watch(t, api, `${nadPath('ns1')}?watch=true&resourceVersion=${api.resourceVersion()}&timeoutSeconds=1`);
  api.bookmark();
  api.putNad('ns1', 'c', '{}');
  assert.equal((await quiet.next()).type, 'ADDED', 'no bookmark without allowWatchBookmarks: the next event is the change');
  await w.ended;
  await quiet.ended;
  assert.equal(api.watches(), 0);
});

test('a resourceVersion older than the history is a 200 whose only event is a 410 Expired Status', { timeout: 15000 }, async (t) => {
  const api = await server(t, { historySize: 2 });
  const a = api.putNad('ns1', 'a', '{}');
  for (const n of ['b', 'c', 'd']) api.putNad('ns1', n, '{}');
  const w = await watch(t, api, `${nadPath('ns1')}?watch=true&resourceVersion=${String(meta(a).resourceVersion)}`);
  assert.equal(w.status, 200);
  const ev = await w.next();
  assert.equal(ev.type, 'ERROR');
  assert.equal(ev.object.kind, 'Status');
  assert.equal(ev.object.code, 410);
  assert.equal(ev.object.reason, 'Expired');
  assert.match(String(ev.object.message), /^too old resource version: \d+ \(\d+\)$/);
  await w.ended;
  api.compact();
  const w2 = await watch(t, api, `${nadPath('ns1')}?watch=true&resourceVersion=${Number(api.resourceVersion()) - 1}`);
  assert.equal((await w2.next()).object.reason, 'Expired', 'after a compaction the previous version is gone');
});

test('field selectors: spec.nodeName scopes pods, and a pod leaving or entering the selection is DELETED or ADDED', { timeout: 15000 }, async (t) => {
  const api = await server(t);
  api.putPod({ metadata: { name: 'mine', namespace: 'ns1' }, spec: { nodeName: 'node-a' } });
  api.putPod({ metadata: { name: 'theirs', namespace: 'ns1' }, spec: { nodeName: 'node-b' } });
  const list = await rawRequest(api, 'GET', `${PODS}?fieldSelector=spec.nodeName%3Dnode-a`);
  assert.deepEqual((list.json.items as JsonObject[]).map((p) => meta(p).name), ['mine']);
  const byName = await rawRequest(api, 'GET', `${PODS}?fieldSelector=metadata.name!%3Dmine,metadata.namespace%3D%3Dns1`);
  assert.deepEqual((byName.json.items as JsonObject[]).map((p) => meta(p).name), ['theirs']);
  const w = await watch(t, api, `${PODS}?watch=true&fieldSelector=spec.nodeName%3Dnode-a`);
  assert.equal(meta((await w.next()).object).name, 'mine');
  api.putPod({ metadata: { name: 'theirs', namespace: 'ns1' }, spec: { nodeName: 'node-a' } });
  api.putPod({ metadata: { name: 'mine', namespace: 'ns1' }, spec: { nodeName: 'node-c' } });
  const entered = await w.next();
  const left = await w.next();
  assert.deepEqual([entered.type, meta(entered.object).name], ['ADDED', 'theirs']);
  assert.deepEqual([left.type, meta(left.object).name], ['DELETED', 'mine']);
  assert.equal((left.object.spec as JsonObject).nodeName, 'node-a', 'the last state that matched');
  const bad = await rawRequest(api, 'GET', `${PODS}?fieldSelector=spec.hostname%3Dx`);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.reason, 'BadRequest');
  assert.equal(bad.json.message, 'field label not supported: spec.hostname');
  const badNad = await rawRequest(api, 'GET', `${nadPath('ns1')}?fieldSelector=spec.nodeName%3Dx`);
  assert.equal(badNad.status, 400, 'spec.nodeName is a pod field only');
});

test('lists page with limit/continue over a consistent snapshot; an expired continue token is 410 Expired', { timeout: 15000 }, async (t) => {
  const api = await server(t, { historySize: 50 });
  for (const n of ['a', 'b', 'c', 'd', 'e']) api.putNad('ns1', n, '{}');
  const p1 = await rawRequest(api, 'GET', `${nadPath('ns1')}?limit=2`);
  const m1 = meta(p1.json);
  assert.deepEqual((p1.json.items as JsonObject[]).map((o) => meta(o).name), ['a', 'b']);
  assert.equal(m1.remainingItemCount, 3);
  assert.equal(typeof m1.continue, 'string');
  // Changes after the first page do not show in the rest of this list.
  api.deleteNad('ns1', 'c');
  api.putNad('ns1', 'bb', '{}');
  const p2 = await rawRequest(api, 'GET', `${nadPath('ns1')}?limit=2&continue=${String(m1.continue)}`);
  assert.deepEqual((p2.json.items as JsonObject[]).map((o) => meta(o).name), ['c', 'd']);
  assert.equal(meta(p2.json).resourceVersion, m1.resourceVersion, 'every page reports the snapshot\'s version');
  const p3 = await rawRequest(api, 'GET', `${nadPath('ns1')}?limit=2&continue=${String(meta(p2.json).continue)}`);
  assert.deepEqual((p3.json.items as JsonObject[]).map((o) => meta(o).name), ['e']);
  assert.equal(meta(p3.json).continue, undefined);
  api.compact();
  const old = await rawRequest(api, 'GET', `${nadPath('ns1')}?limit=2&continue=${String(m1.continue)}`);
  assert.equal(old.status, 410);
  assert.equal(old.json.reason, 'Expired');
  assert.match(String(old.json.message), /^The provided continue parameter is too old/);
  const garbage = await rawRequest(api, 'GET', `${nadPath('ns1')}?continue=xyz`);
  assert.equal(garbage.status, 400);
  assert.ok(isObject(garbage.json) && garbage.json.kind === 'Status');
});

test('cutWatches drops streams mid-way; holdWatches delays events without losing or reordering them', { timeout: 15000 }, async (t) => {
  const api = await server(t);
  const w = await watch(t, api, `${nadPath('ns1')}?watch=true&resourceVersion=${api.resourceVersion()}`);
  api.holdWatches(true);
  api.putNad('ns1', 'x', '{}');
  api.putNad('ns1', 'y', '{}');
  let got = 0;
  const first = w.next().then((e) => ((got += 1), e));
  await rawRequest(api, 'GET', nadPath('ns1')); // a full round trip: the held events would have arrived by now
  assert.equal(got, 0, 'held events are not sent');
  api.holdWatches(false);
  assert.equal(meta((await first).object).name, 'x');
  assert.equal(meta((await w.next()).object).name, 'y');
  assert.equal(api.cutWatches(), 1);
  await w.ended;
  assert.equal(api.watches(), 0);
});
