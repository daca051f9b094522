// The meta-plugin and the Kubernetes API under less friendly conditions: annotations handed over
// by the runtime (no GET of the pod), a re-created pod, DEL with the API or its objects gone,
// transient API errors and a rotated token.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { uniq, uplink } from './helpers/host';
import { named, requireBuild, requireInProcessDelegates } from './helpers/plexus';
import {
  apiServer,
  bridgeConf,
  EMPTY,
  hostBridge,
  hostLocal,
  macvlanConf,
  NETWORKS,
  networkStatus,
  podAnnotations,
  podArgs,
  podLinks,
  POD_ANNOTATIONS,
  putPod,
  STATUS,
  world,
  type World,
} from './helpers/world';

requireBuild();
requireInProcessDelegates();

const CLUSTER = '10.212.0.0/24';

/** Two NADs in the pod's namespace: a bridge network and a macvlan network. */
function twoNetworks(t: Parameters<typeof hostBridge>[0], w: World, podNs: string): string[] {
  const br = hostBridge(t);
  const up = uplink(t);
  w.api.putNad(podNs, 'lan', bridgeConf('lan', br, hostLocal(w.ipamDir, '10.212.1.0/24')));
  w.api.putNad(podNs, 'san', macvlanConf('san', up, hostLocal(w.ipamDir, '10.212.2.0/24')));
  return [br, up];
}

const podPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`;

test(named('pod annotations handed over by the runtime: no GET of the pod, network-status still written'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  // The API's copy selects nothing: what gets attached can only come from the runtime's copy.
  const pod = putPod(w.api, podNs, 'fast', { 'example.com/keep': 'me' });
  const conf = w.conf({ runtimeConfig: { [POD_ANNOTATIONS]: { [NETWORKS]: 'lan,san@storage', 'other.io/x': 'y' } } });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(Object.keys(podLinks(w.ns.name)).sort(), ['eth0', 'net1', 'storage']);
  const reqs = w.api.requests();
  assert.deepEqual(reqs.filter((r) => r.path.startsWith(podPath(podNs, 'fast')) && r.method === 'GET'), [], 'the pod is never read');
  assert.deepEqual(
    reqs.filter((r) => r.method !== 'POST').map((r) => `${r.method} ${r.path}`).sort(),
    [
      `GET /apis/k8s.cni.cncf.io/v1/namespaces/${podNs}/network-attachment-definitions/lan`,
      `GET /apis/k8s.cni.cncf.io/v1/namespaces/${podNs}/network-attachment-definitions/san`,
      `PATCH ${podPath(podNs, 'fast')}/status`,
    ],
  );
  assert.deepEqual(networkStatus(w.api, pod).map((s) => [s.name, s.interface, s.default]), [
    ['cluster', 'eth0', true],
    [`${podNs}/lan`, 'net1', false],
    [`${podNs}/san`, 'storage', false],
  ]);
  const annotations = podAnnotations(w.api, pod);
  assert.equal(annotations['example.com/keep'], 'me');
  assert.equal(annotations['other.io/x'], undefined, 'the runtime’s copy is read, never written back');

  assert.equal((await w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(w.footprint(parents), EMPTY);
});

test(named('K8S_POD_UID not matching the pod: a clear error and nothing attached'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const pod = putPod(w.api, podNs, 'again', { [NETWORKS]: 'lan,san' });
  const id = uniq('ctr');
  const stale = '0b5e7c1e-0000-4000-8000-000000000000';
  const add = await w.run('ADD', id, podArgs(pod, id, stale), w.conf());
  assert.equal(add.status, 1);
  assert.deepEqual(add.json(), {
    cniVersion: '1.1.0',
    code: 4,
    msg: `CNI_ARGS K8S_POD_UID ${stale} does not match pod ${podNs}/again (uid ${pod.uid}): the pod was re-created`,
  });
  assert.deepEqual(w.footprint(parents), EMPTY);
  assert.equal(podAnnotations(w.api, pod)[STATUS], undefined);
  assert.ok(!w.api.requests().some((r) => r.method !== 'GET'), 'nothing written');
});

test(named('a pod re-created while the runtime handed over its annotations: the status write is refused and everything rolled back'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const pod = putPod(w.api, podNs, 'gone', {});
  const conf = w.conf({ runtimeConfig: { [POD_ANNOTATIONS]: { [NETWORKS]: 'lan,san' } } });
  const id = uniq('ctr');
  const stale = '0b5e7c1e-0000-4000-8000-000000000001';
  const add = await w.run('ADD', id, podArgs(pod, id, stale), conf);
  assert.equal(add.status, 1, add.stdout);
  const err = add.json();
  assert.match(String(err.msg), new RegExp(`^pod ${podNs}/gone no longer has uid ${stale}: it was deleted and re-created; not writing to the new pod`));
  assert.equal(err.code, 5);
  assert.deepEqual(w.footprint(parents), EMPTY, 'the three attachments were rolled back');
  assert.equal(podAnnotations(w.api, pod)[STATUS], undefined, 'the new pod got no status');
});

test(named('DEL needs no API: NADs and pod deleted, API failing — no request, everything removed'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const pod = putPod(w.api, podNs, 'bye', { [NETWORKS]: 'lan,san' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  assert.equal((await w.run('ADD', id, args, conf)).status, 0);
  assert.notDeepEqual(w.footprint(parents), EMPTY);

  w.api.deleteNad(podNs, 'lan');
  w.api.deleteNad(podNs, 'san');
  w.api.deletePod(podNs, 'bye');
  w.api.failAll(503);
  w.api.clearRequests();
  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.equal(del.stdout, '');
  assert.deepEqual(w.api.requests(), []);
  assert.deepEqual(w.footprint(parents), EMPTY);
});

test(named('DEL with the API server stopped removes everything'), async (t) => {
  const api = await apiServer(t);
  const w = await world(t, CLUSTER, api);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const pod = putPod(w.api, podNs, 'down', { [NETWORKS]: 'lan,san@s0' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  assert.equal((await w.run('ADD', id, args, conf)).status, 0);
  assert.deepEqual(Object.keys(podLinks(w.ns.name)).sort(), ['eth0', 'net1', 's0']);
  await api.close();
  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(w.footprint(parents), EMPTY);
});

test(named('GET pod answered 503 twice, then 200: ADD retries and succeeds'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const pod = putPod(w.api, podNs, 'flaky', { [NETWORKS]: 'lan' });
  w.api.inject({ method: 'GET', pathPrefix: podPath(podNs, 'flaky'), status: 503, times: 2 });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(
    w.api.requests().filter((r) => r.method === 'GET' && r.path === podPath(podNs, 'flaky')).map((r) => r.status),
    [503, 503, 200],
  );
  assert.deepEqual(networkStatus(w.api, pod).map((s) => s.interface), ['eth0', 'net1']);
  assert.equal((await w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(w.footprint(parents), EMPTY);
});

test(named('token rotation: the tokenFile is read on every call'), async (t) => {
  const api = await apiServer(t, 'first-token');
  const w = await world(t, CLUSTER, api);
  const tokenFile = join(w.dir, 'token');
  writeFileSync(tokenFile, 'first-token\n');
  api.writeKubeconfig(w.kubeconfig, { token: null, tokenFile });
  const podNs = uniq('pns');
  const parents = twoNetworks(t, w, podNs);
  const conf = w.conf();
  const addPod = async (name: string) => {
    const pod = putPod(api, podNs, name, { [NETWORKS]: 'lan' });
    const id = uniq('ctr');
    t.after(() => w.run('DEL', id, podArgs(pod, id), conf));
    return { pod, id, add: await w.run('ADD', id, podArgs(pod, id), conf) };
  };

  const one = await addPod('one');
  assert.equal(one.add.status, 0, one.add.stdout + one.add.stderr);
  assert.equal(networkStatus(api, one.pod).length, 2);
  assert.equal((await w.run('DEL', one.id, podArgs(one.pod, one.id), conf)).status, 0);

  // The server rotates; until the file is rewritten, the old token is refused.
  api.setToken('second-token');
  const refused = await addPod('two');
  assert.equal(refused.add.status, 1);
  assert.match(String(refused.add.json().msg), /Unauthorized/);
  assert.deepEqual(w.footprint(parents), EMPTY);

  writeFileSync(tokenFile, 'second-token\n');
  api.clearRequests();
  const three = await addPod('three');
  assert.equal(three.add.status, 0, three.add.stdout + three.add.stderr);
  assert.ok(api.requests().every((r) => r.status < 300), 'no request refused after the file changed');
  assert.equal(networkStatus(api, three.pod).length, 2);
  assert.equal((await w.run('DEL', three.id, podArgs(three.pod, three.id), conf)).status, 0);
  assert.deepEqual(w.footprint(parents), EMPTY);
});
