// Bad input, table-driven, through the built binary. Every case must fail with exit status 1, a
// lone CNI error object on stdout whose code is right and whose msg names what to fix, no stack
// trace on stderr, and nothing left behind. Most cases are realistic: the pod selects two
// networks and the failure comes with the second, so the first and the cluster network (already
// attached when a delegate fails) must be rolled back.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startApiServer, type FakeApi } from './apiserver/server';
import type { Json, JsonObject } from '../src/cni/validate';
import { ip, uniq } from './helpers/host';
import { named, requireBuild, requireInProcessDelegates } from './helpers/plexus';
import {
  bridgeConf,
  hostBridge,
  hostLocal,
  NETWORKS,
  podArgs,
  podEvents,
  POD_ANNOTATIONS,
  putPod,
  STATUS,
  podAnnotations,
  TOKEN,
  world,
  type PodRef,
  type World,
} from './helpers/world';

requireBuild();
requireInProcessDelegates();

const CLUSTER = '10.213.0.0/24';

interface Ctx {
  w: World;
  podNs: string;
  pod: PodRef;
  id: string;
}

type Of<T> = T | ((c: Ctx) => T);

interface Case {
  name: string;
  code: number;
  msg: Of<RegExp>;
  command?: string;
  /** Changes to the runtime's environment (undefined removes a variable). */
  env?: Of<Record<string, string | undefined>>;
  /** Merged into the meta-plugin's configuration (undefined removes a key). */
  conf?: Of<Record<string, Json | undefined>>;
  /** Replaces the whole stdin. */
  stdin?: string;
  /** The pod's k8s.v1.cni.cncf.io/networks; by default two good networks, `lan,lan2`. */
  networks?: Of<string>;
  uid?: string;
  setup?: (c: Ctx) => void;
  /** The failure comes after the cluster network and `lan` were attached: prove they were, and were undone. */
  rolledBack?: boolean;
  /** Extra assertions after the common ones. */
  check?: (c: Ctx, err: Record<string, unknown>) => void;
}

const of = <T>(v: Of<T> | undefined, c: Ctx): T | undefined => (typeof v === 'function' ? (v as (c: Ctx) => T)(c) : v);
const nad = (c: Ctx, name: string, config: string) => c.w.api.putNad(c.podNs, name, config);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function script(c: Ctx, name: string, body: string): void {
  const path = join(c.w.binDir, name);
  writeFileSync(path, `#!/bin/sh\ncat >/dev/null\n${body}\n`);
  chmodSync(path, 0o755);
}

const el = (extra: JsonObject) => (c: Ctx) => JSON.stringify([{ name: 'lan' }, { name: 'lan2', namespace: c.podNs, ...extra }]);

const CASES: Case[] = [
  // stdin
  { name: 'empty stdin', stdin: '', code: 6, msg: /^network configuration on stdin is empty$/ },
  { name: 'truncated JSON', stdin: '{"cniVersion":"1.0.0","name":"x","type":"plex', code: 6, msg: /^network configuration on stdin: invalid JSON: / },
  { name: 'stdin is not an object', stdin: '["plexus"]', code: 6, msg: /^network configuration on stdin: must be a JSON object, got a list$/ },
  { name: 'unknown cniVersion', conf: { cniVersion: '9.9.9' }, code: 1, msg: /^cniVersion: "9\.9\.9" is not supported \(supported: .*1\.1\.0\)$/ },
  { name: 'CHECK with a 0.3.1 config', command: 'CHECK', conf: { cniVersion: '0.3.1' }, code: 1, msg: /^cniVersion: CHECK needs 0\.4\.0 or later, the configuration says 0\.3\.1$/ },
  // environment
  { name: 'CNI_COMMAND missing', env: { CNI_COMMAND: undefined }, code: 4, msg: /^CNI_COMMAND is not set$/ },
  { name: 'CNI_COMMAND unknown', command: 'ATTACH', code: 4, msg: /^CNI_COMMAND: unknown command "ATTACH"$/ },
  ...['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'].map(
    (v): Case => ({ name: `${v} missing`, env: { [v]: undefined }, code: 4, msg: new RegExp(`^required environment variables missing for ADD: ${v}$`) }),
  ),
  { name: 'invalid container id', env: { CNI_CONTAINERID: '-abc/def' }, code: 4, msg: /^CNI_CONTAINERID "-abc\/def" must match / },
  { name: 'ifname too long', env: { CNI_IFNAME: 'eth0123456789abc' }, code: 4, msg: /^CNI_IFNAME "eth0123456789abc" is longer than 15 bytes$/ },
  { name: 'ifname with a slash', env: { CNI_IFNAME: 'eth/0' }, code: 4, msg: /^CNI_IFNAME "eth\/0" may not contain "\/"/ },
  { name: 'relative CNI_NETNS', env: { CNI_NETNS: 'var/run/netns/pod' }, code: 4, msg: /^CNI_NETNS "var\/run\/netns\/pod" must be an absolute path$/ },
  { name: 'malformed CNI_ARGS', env: (c) => ({ CNI_ARGS: `K8S_POD_NAMESPACE=${c.podNs};K8S_POD_NAME` }), code: 4, msg: /^CNI_ARGS: invalid pair "K8S_POD_NAME"/ },
  // the meta-plugin's configuration
  { name: 'neither delegates nor clusterNetwork', conf: { delegates: undefined }, code: 7, msg: /^clusterNetwork or delegates: one is required/ },
  { name: 'bad logLevel', conf: { logLevel: 'loud' }, code: 7, msg: /^logLevel: unknown level "loud"/ },
  { name: 'kubeconfig path missing', conf: (c) => ({ kubeconfig: join(c.w.dir, 'nope', 'kubeconfig') }), code: 5, msg: (c) => new RegExp(`^kubeconfig ${esc(join(c.w.dir, 'nope', 'kubeconfig'))}: not readable: ENOENT$`) },
  // the selection annotation, comma form
  { name: 'comma form: "ns/"', networks: (c) => `lan, ${c.podNs}/`, code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.name: network name must not be empty \(NPWG v1\.3 §3\.3\)$/ },
  { name: 'comma form: "a//b"', networks: 'lan,a//b', code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]: "a\/\/b" has more than one "\/"/ },
  { name: 'comma form: upper-case name', networks: 'lan,Lan2', code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.name: "Lan2" is not a valid network name: it must be a DNS-1123 label/ },
  { name: 'comma form: bad interface', networks: 'lan,lan2@a:b', code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.interface: "a:b" is not a valid Linux interface name/ },
  { name: 'the same interface twice', networks: 'lan@x0,lan2@x0', code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.interface: "x0" is already requested by element 0 \(NPWG v1\.3 §4\.1\.2\.1\.5\)$/ },
  // JSON form
  { name: 'JSON form: invalid JSON', networks: '[{"name":"lan"},{"name":"lan2"', code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks: invalid JSON: / },
  { name: 'JSON form: ips not an IP', networks: el({ ips: ['10.213.2.300/24'] }), code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.ips\[0\]: "10\.213\.2\.300\/24" is not an IP address \(NPWG v1\.3 §4\.1\.2\.1\.3\)$/ },
  { name: 'JSON form: invalid mac', networks: el({ mac: '02:11:22:33:44:zz' }), code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.mac: "02:11:22:33:44:zz" is not a 6-byte MAC/ },
  { name: 'JSON form: hostPort 0', networks: el({ portMappings: [{ hostPort: 0, containerPort: 80 }] }), code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.portMappings\[0\]\.hostPort: must be an integer from 1 to 65535, got number 0 \(NPWG v1\.3 §4\.1\.2\.1\.7\)$/ },
  {
    name: 'JSON form: default-route on two elements',
    networks: (c) => JSON.stringify([{ name: 'lan', 'default-route': ['10.213.1.1'] }, { name: 'lan2', namespace: c.podNs, 'default-route': ['10.213.2.1'] }]),
    code: 7,
    msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.default-route: only one element may set default-route, element 0 already does/,
  },
  { name: 'JSON form: a misspelt key', networks: el({ ip: ['10.213.2.5/24'] }), code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.ip: unknown key \(did you mean "ips"\?\) \(NPWG v1\.3 §4\.1\.2\.1\)$/ },
  { name: 'JSON form: an unknown period-less key', networks: el({ vlan: 7 }), code: 7, msg: /^k8s\.v1\.cni\.cncf\.io\/networks\[1\]\.vlan: unknown key: the NPWG spec reserves keys without a period/ },
  // networks and the API
  {
    name: 'unknown NAD',
    networks: 'lan,nosuchnet',
    code: 7,
    msg: (c) => new RegExp(`^k8s\\.v1\\.cni\\.cncf\\.io/networks: network-attachment-definition ${c.podNs}/nosuchnet not found$`),
    check: (c) =>
      assert.deepEqual(
        podEvents(c.w.api, c.pod).map((e) => [e.type, e.reason, e.message]),
        [['Warning', 'NoNetworkFound', `cannot find a network-attachment-definition (nosuchnet) in namespace (${c.podNs})`]],
      ),
  },
  {
    name: 'NAD in a forbidden namespace under namespaceIsolation',
    conf: { namespaceIsolation: true },
    networks: (c) => `lan,${c.podNs}x/lan2`,
    setup: (c) => c.w.api.putNad(`${c.podNs}x`, 'lan2', bridgeConf('lan2', c.w.clusterBridge, hostLocal(c.w.ipamDir, '10.213.2.0/24'))),
    code: 7,
    msg: (c) => new RegExp(`^namespaceIsolation: pod in namespace ${c.podNs} may not use network ${c.podNs}x/lan2 \\(allowed: ${c.podNs}, default\\)$`),
  },
  { name: 'spec.config not JSON', setup: (c) => nad(c, 'lan2', '{"cniVersion":"1.0.0","type":'), code: 7, msg: (c) => new RegExp(`^network-attachment-definition ${c.podNs}/lan2 spec\\.config: invalid JSON: `) },
  {
    name: 'spec.config with a cniVersion plexus does not speak',
    setup: (c) => nad(c, 'lan2', JSON.stringify({ cniVersion: '0.2.0', name: 'lan2', type: 'bridge' })),
    code: 1,
    msg: (c) => new RegExp(`^network-attachment-definition ${c.podNs}/lan2 spec\\.config\\.cniVersion: incompatible CNI version: "0\\.2\\.0"`),
  },
  {
    name: '401 from the API (wrong token)',
    setup: (c) => c.w.api.writeKubeconfig(c.w.kubeconfig, { token: 'not-the-token' }),
    code: 5,
    msg: (c) => new RegExp(`^Kubernetes API: reading pod ${c.podNs}/web: Unauthorized$`),
    check: (c, err) => assert.equal(err.details, `GET /api/v1/namespaces/${c.podNs}/pods/web: HTTP 401 Unauthorized`),
  },
  {
    name: 'the API answering 503 for good',
    conf: { apiTimeoutSeconds: 1 },
    setup: (c) => c.w.api.inject({ pathPrefix: `/api/v1/namespaces/${c.podNs}/pods/`, status: 503, times: Infinity }),
    code: 11,
    msg: (c) => new RegExp(`^Kubernetes API: reading pod ${c.podNs}/web: the server is currently unable to handle the request$`),
    check: (c, err) => assert.match(String(err.details), new RegExp(`^GET /api/v1/namespaces/${c.podNs}/pods/web: HTTP 503`)),
  },
  {
    name: 'pod UID mismatch',
    uid: '0b5e7c1e-0000-4000-8000-00000000dead',
    code: 4,
    msg: (c) => new RegExp(`^CNI_ARGS K8S_POD_UID 0b5e7c1e-0000-4000-8000-00000000dead does not match pod ${c.podNs}/web \\(uid ${c.pod.uid}\\)`),
  },
  {
    name: 'pod UID mismatch seen only at the status write (annotations from the runtime)',
    rolledBack: true,
    uid: '0b5e7c1e-0000-4000-8000-00000000beef',
    conf: { runtimeConfig: { [POD_ANNOTATIONS]: { [NETWORKS]: 'lan,lan2' } } },
    code: 5,
    msg: (c) => new RegExp(`^pod ${c.podNs}/web no longer has uid 0b5e7c1e-0000-4000-8000-00000000beef: it was deleted and re-created`),
  },
  // delegates
  {
    name: 'delegate binary missing',
    rolledBack: true,
    setup: (c) => nad(c, 'lan2', JSON.stringify({ cniVersion: '1.0.0', name: 'lan2', type: 'nosuch-plugin' })),
    code: 7,
    msg: (c) => new RegExp(`^network ${c.podNs}/lan2 \\(net2\\): failed to find plugin "nosuch-plugin" in path`),
  },
  {
    name: 'second plugin of a conflist missing: the first is undone',
    rolledBack: true,
    setup: (c) =>
      nad(c, 'lan2', JSON.stringify({ cniVersion: '1.0.0', name: 'lan2', plugins: [JSON.parse(bridgeConf('lan2', c.w.clusterBridge, hostLocal(c.w.ipamDir, '10.213.2.0/24'))), { type: 'nosuch-meta' }] })),
    code: 7,
    msg: (c) => new RegExp(`^network ${c.podNs}/lan2 \\(net2\\): failed to find plugin "nosuch-meta" in path`),
    check: (c) => assert.ok(existsSync(join(c.w.ipamDir, 'lan2', 'last_reserved_ip.0')), 'the chain’s bridge plugin had run'),
  },
  {
    name: 'delegate exits 2 with garbage on stdout',
    rolledBack: true,
    setup: (c) => {
      script(c, 'crashy', "echo 'panic: {garbage'\nexit 2");
      nad(c, 'lan2', JSON.stringify({ cniVersion: '1.0.0', name: 'lan2', type: 'crashy' }));
    },
    code: 999,
    msg: (c) => new RegExp(`^network ${c.podNs}/lan2 \\(net2\\): ${esc(join(c.w.binDir, 'crashy'))} exited with status 2: panic: \\{garbage`),
  },
  {
    name: 'delegate killed by a signal',
    rolledBack: true,
    setup: (c) => {
      script(c, 'killed', 'if [ "$CNI_COMMAND" = ADD ]; then kill -9 $$; fi\nexit 0');
      nad(c, 'lan2', JSON.stringify({ cniVersion: '1.0.0', name: 'lan2', type: 'killed' }));
    },
    code: 11,
    msg: (c) => new RegExp(`^network ${c.podNs}/lan2 \\(net2\\): ${esc(join(c.w.binDir, 'killed'))} was killed by SIGKILL`),
  },
  {
    name: 'ifname already present in the netns',
    setup: (c) => ip('-n', c.w.ns.name, 'link', 'add', 'net2', 'type', 'veth', 'peer', 'name', 'net2p'),
    code: 7,
    msg: (c) => new RegExp(`^network ${c.podNs}/lan2: interface net2 already exists in ${esc(c.w.ns.path)}$`),
  },
];

// One API server for the matrix (each case has its own namespace); closed when the file ends.
let api: FakeApi;
before(async () => {
  api = await startApiServer({ tls: true, token: TOKEN });
});
after(() => api?.close());

for (const k of CASES) {
  test(named(`bad input: ${k.name}`), async (t) => {
    const w = await world(t, CLUSTER, api);
    const podNs = uniq('bad');
    const br = hostBridge(t);
    const pod = putPod(api, podNs, 'web', { [NETWORKS]: 'lan,lan2' });
    const c: Ctx = { w, podNs, pod, id: uniq('ctr') };
    nad(c, 'lan', bridgeConf('lan', br, hostLocal(w.ipamDir, '10.213.1.0/24')));
    nad(c, 'lan2', bridgeConf('lan2', br, hostLocal(w.ipamDir, '10.213.2.0/24')));
    const networks = of(k.networks, c);
    if (networks !== undefined) putPod(api, podNs, 'web', { [NETWORKS]: networks });
    k.setup?.(c);
    const base = w.conf();
    const conf = JSON.parse(base) as JsonObject;
    for (const [key, v] of Object.entries(of(k.conf, c) ?? {})) {
      if (v === undefined) delete conf[key];
      else conf[key] = v;
    }
    const args = podArgs(pod, c.id, k.uid ?? pod.uid);
    t.after(() => w.run('DEL', c.id, args, base));
    const baseline = w.footprint([br]);

    const out = await w.run(k.command ?? 'ADD', c.id, args, k.stdin ?? JSON.stringify(conf), of(k.env, c));

    assert.equal(out.status, 1, `exit status; stdout ${out.stdout} stderr ${out.stderr}`);
    assert.match(out.stdout, /^[^\n]+\n$/, 'stdout is one line');
    const err = out.json();
    assert.deepEqual(Object.keys(err).filter((key) => !['cniVersion', 'code', 'msg', 'details'].includes(key)), [], 'only CNI error keys');
    assert.equal(typeof err.cniVersion, 'string');
    assert.equal(err.code, k.code, `code; msg ${String(err.msg)}`);
    assert.match(String(err.msg), of(k.msg, c) as RegExp);
    assert.doesNotMatch(out.stderr, /^\s+at .*:\d+/m, 'no stack trace on stderr');
    assert.deepEqual(w.footprint([br]), baseline, 'nothing left behind');
    assert.deepEqual(baseline.reservations.concat(baseline.journal, baseline.cache, baseline.hostLinks), []);
    assert.equal(podAnnotations(api, pod)[STATUS], undefined, 'no network-status written');
    if (k.rolledBack) {
      // host-local keeps its last allocation after a release: the first two networks did get addresses.
      for (const net of ['cluster', 'lan']) assert.ok(existsSync(join(w.ipamDir, net, 'last_reserved_ip.0')), `${net} was attached before the failure`);
    }
    k.check?.(c, err);

    // The runtime's DEL after a failed ADD must succeed: nothing may keep the pod from going away.
    const del = await w.run('DEL', c.id, args, base);
    assert.equal(del.status, 0, del.stdout + del.stderr);
    assert.deepEqual(w.footprint([br]), baseline);
  });
}

test(named('the matrix has at least 25 cases'), () => {
  assert.ok(CASES.length >= 25, String(CASES.length));
});
