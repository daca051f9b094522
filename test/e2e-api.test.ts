// The meta-plugin end to end with the Kubernetes API (the test apiserver over TLS with a bearer
// token): pods and NADs select networks, the built binary attaches them with the delegate set
// under test (helpers/plexus.ts DELEGATES) in real namespaces, and network-status, events,
// journal and caches say what happened.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ip, uniq, uplink } from './helpers/host';
import { delegateBin, named, requireBuild, requireInProcessDelegates } from './helpers/plexus';
import {
  bridgeConf,
  bridgePorts,
  DEFAULT_NETWORK,
  EMPTY,
  hostBridge,
  hostLocal,
  macvlanConf,
  NETWORKS,
  networkStatus,
  podAnnotations,
  podArgs,
  podEvents,
  podLinks,
  putPod,
  reservations,
  spied,
  spyPlugin,
  STATUS,
  TOKEN_USER,
  world,
} from './helpers/world';

requireBuild();
requireInProcessDelegates();

const CLUSTER = '10.211.0.0/24';
const noPrefix = (cidr: string) => cidr.replace(/\/\d+$/, '');

test(named('comma form: numbering with gaps, a network twice, network-status, events, CHECK and DEL'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const other = uniq('ons');
  const blueBr = hostBridge(t);
  const up = uplink(t);
  w.api.putNad(podNs, 'blue', bridgeConf('blue', blueBr, hostLocal(w.ipamDir, '10.211.1.0/24')));
  w.api.putNad(other, 'red', macvlanConf('red', up, hostLocal(w.ipamDir, '10.211.2.0/24')));
  const pod = putPod(w.api, podNs, 'web', { [NETWORKS]: `blue, ${other}/red@red1, ${other}/red,blue`, 'example.com/keep': 'me' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const result = add.json();
  assert.equal(result.cniVersion, '1.1.0');
  assert.deepEqual((result.interfaces as { name: string; sandbox?: string }[]).filter((i) => i.sandbox).map((i) => i.name), ['eth0'], 'the result is the cluster network’s');

  // Multus numbering: index in the full list (cluster = 0); a named element leaves a gap.
  const links = podLinks(w.ns.name);
  assert.deepEqual(Object.keys(links).sort(), ['eth0', 'net1', 'net3', 'net4', 'red1']);
  assert.deepEqual(
    Object.fromEntries(Object.entries(links).map(([n, l]) => [n, l.kind])),
    { eth0: 'veth', net1: 'veth', red1: 'macvlan', net3: 'macvlan', net4: 'veth' },
  );
  for (const [n, subnet] of [['eth0', /^10\.211\.0\.\d+\/24$/], ['net1', /^10\.211\.1\.\d+\/24$/], ['net4', /^10\.211\.1\.\d+\/24$/], ['red1', /^10\.211\.2\.\d+\/24$/], ['net3', /^10\.211\.2\.\d+\/24$/]] as const) {
    assert.equal(links[n]?.addrs.length, 1, n);
    assert.match(links[n]?.addrs[0] ?? '', subnet, n);
  }
  assert.notEqual(links.net1?.addrs[0], links.net4?.addrs[0], 'the same network twice: two addresses');
  assert.equal(bridgePorts(blueBr).length, 2, 'two veths on the blue bridge');

  // host-local: one reservation per attachment, for this container and the right interface.
  assert.deepEqual(
    reservations(w.ipamDir).map((r) => [r.network, r.containerId, r.ifname, `${r.ip}/24`]),
    [
      ['blue', id, 'net1', links.net1?.addrs[0]],
      ['blue', id, 'net4', links.net4?.addrs[0]],
      ['cluster', id, 'eth0', links.eth0?.addrs[0]],
      ['red', id, 'net3', links.net3?.addrs[0]],
      ['red', id, 'red1', links.red1?.addrs[0]],
    ],
  );

  // The journal and libcni's result cache.
  const journal = JSON.parse(readFileSync(join(w.cniDir, '_plexus', `${id}.json`), 'utf8')) as {
    pod: { namespace: string; name: string; uid: string };
    attachments: { network: string; ifname: string; isDefault: boolean; state: string; args: string }[];
  };
  assert.deepEqual(journal.pod, { namespace: podNs, name: 'web', uid: pod.uid });
  assert.deepEqual(
    journal.attachments.map((a) => [a.network, a.ifname, a.isDefault, a.state]),
    [
      ['cluster', 'eth0', true, 'added'],
      [`${podNs}/blue`, 'net1', false, 'added'],
      [`${other}/red`, 'red1', false, 'added'],
      [`${other}/red`, 'net3', false, 'added'],
      [`${podNs}/blue`, 'net4', false, 'added'],
    ],
  );
  assert.ok(journal.attachments.every((a) => a.args === args), 'delegates get CNI_ARGS as the runtime gave them');
  assert.equal(w.footprint([blueBr, up]).hostLinks.length, 3, 'the oracle sees the host ends of the three bridge veths');
  assert.deepEqual(w.footprint([blueBr, up]).cache, [`blue-${id}-net1`, `blue-${id}-net4`, `cluster-${id}-eth0`, `red-${id}-net3`, `red-${id}-red1`]);

  // network-status: one entry per attachment, in order, field by field.
  const annotations = podAnnotations(w.api, pod);
  assert.equal(annotations['example.com/keep'], 'me', 'other annotations are preserved');
  assert.equal(annotations[NETWORKS], `blue, ${other}/red@red1, ${other}/red,blue`);
  const status = networkStatus(w.api, pod);
  const expect = (name: string, ifname: string, isDefault: boolean) => {
    const l = links[ifname];
    return { name, interface: ifname, ips: [noPrefix(l?.addrs[0] ?? '')], mac: l?.mac, default: isDefault };
  };
  assert.deepEqual(status, [
    { ...expect('cluster', 'eth0', true), gateway: ['10.211.0.1'], 'default-route': ['10.211.0.1'] },
    expect(`${podNs}/blue`, 'net1', false),
    expect(`${other}/red`, 'red1', false),
    expect(`${other}/red`, 'net3', false),
    expect(`${podNs}/blue`, 'net4', false),
  ]);

  // Events: an AddedInterface per attachment, on this pod (uid included).
  const events = podEvents(w.api, pod);
  assert.deepEqual(
    events.map((e) => [e.type, e.reason, (e.involvedObject as { uid?: string }).uid, e.message]).sort(),
    status
      .map((s) => ['Normal', 'AddedInterface', pod.uid, `Add ${s.interface} [${(s.ips ?? []).join(',')}] from ${s.name}`])
      .sort(),
  );

  // Requests: one GET of the pod, the NADs, one status write; all authenticated with the token.
  const reqs = w.api.requests();
  assert.ok(reqs.every((r) => r.user === TOKEN_USER && r.status >= 200 && r.status < 300), JSON.stringify(reqs));
  assert.equal(reqs.filter((r) => r.method === 'GET' && r.path === `/api/v1/namespaces/${podNs}/pods/web`).length, 1);
  const patches = reqs.filter((r) => r.method === 'PATCH');
  assert.deepEqual(patches.map((r) => r.path), [`/api/v1/namespaces/${podNs}/pods/web/status`]);
  assert.equal((JSON.parse(patches[0]?.body ?? '{}') as { metadata: { uid: string } }).metadata.uid, pod.uid, 'the write is bound to this pod’s uid');

  const check = await w.run('CHECK', id, args, conf);
  assert.equal(check.status, 0, check.stdout + check.stderr);

  w.api.clearRequests();
  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.equal(del.stdout, '');
  assert.deepEqual(w.footprint([blueBr, up]), EMPTY);
  assert.deepEqual(w.api.requests(), [], 'DEL does not talk to the API');
});

test(named('JSON form: interface, ips through static IPAM, mac, cni-args reaching the plugin'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const up = uplink(t);
  const spy = spyPlugin(w.binDir, w.spyDir, 'spy-macvlan', 'macvlan');
  // Declares ips and mac: the pod's requests reach macvlan (mac) and static (ips) as runtimeConfig.
  w.api.putNad(podNs, 'fixed', macvlanConf('fixed', up, { type: 'static' }, { type: spy, capabilities: { ips: true, mac: true } }));
  // Declares nothing: static takes its address from args.cni.ips, i.e. from the annotation's cni-args.
  w.api.putNad(podNs, 'byargs', macvlanConf('byargs', up, { type: 'static' }, { type: spy }));
  const selection = [
    { name: 'fixed', interface: 'fixed0', ips: ['10.211.3.7/24'], mac: '02:11:22:33:44:55', 'cni-args': { 'org.example/tier': 'gold' } },
    { name: 'byargs', namespace: podNs, 'cni-args': { ips: ['10.211.4.9/24'] } },
  ];
  const pod = putPod(w.api, podNs, 'db', { [NETWORKS]: JSON.stringify(selection) });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const links = podLinks(w.ns.name);
  assert.deepEqual(Object.keys(links).sort(), ['eth0', 'fixed0', 'net2']);
  assert.deepEqual(links.fixed0, { kind: 'macvlan', mac: '02:11:22:33:44:55', addrs: ['10.211.3.7/24'] });
  assert.equal(links.net2?.kind, 'macvlan');
  assert.deepEqual(links.net2?.addrs, ['10.211.4.9/24']);

  // What each plugin actually received.
  const fixed = spied(w.spyDir, 'ADD', 'fixed0');
  assert.deepEqual(fixed.runtimeConfig, { ips: ['10.211.3.7/24'], mac: '02:11:22:33:44:55' });
  assert.deepEqual(fixed.args, { cni: { 'org.example/tier': 'gold' } });
  assert.equal(fixed.capabilities, undefined, 'capabilities stay in the config on disk');
  assert.equal(fixed.name, 'fixed');
  const byargs = spied(w.spyDir, 'ADD', 'net2');
  assert.deepEqual(byargs.args, { cni: { ips: ['10.211.4.9/24'] } });
  assert.equal(byargs.runtimeConfig, undefined, 'a network declaring no capability gets no runtimeConfig');

  // The journal keeps what the delegates were given, for DEL.
  const journal = JSON.parse(readFileSync(join(w.cniDir, '_plexus', `${id}.json`), 'utf8')) as {
    attachments: { ifname: string; capabilityArgs: object; cniArgs?: object }[];
  };
  assert.deepEqual(journal.attachments[1], { ...journal.attachments[1], ifname: 'fixed0', capabilityArgs: { ips: ['10.211.3.7/24'], mac: '02:11:22:33:44:55' }, cniArgs: { 'org.example/tier': 'gold' } });
  assert.deepEqual(journal.attachments[2]?.cniArgs, { ips: ['10.211.4.9/24'] });

  const status = networkStatus(w.api, pod);
  assert.deepEqual(status.slice(1), [
    { name: `${podNs}/fixed`, interface: 'fixed0', ips: ['10.211.3.7'], mac: '02:11:22:33:44:55', default: false },
    { name: `${podNs}/byargs`, interface: 'net2', ips: ['10.211.4.9'], mac: links.net2?.mac, default: false },
  ]);
  assert.equal(status[0]?.default, true);

  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(spied(w.spyDir, 'DEL', 'fixed0').runtimeConfig, { ips: ['10.211.3.7/24'], mac: '02:11:22:33:44:55' }, 'DEL gets the same capability args');
  assert.deepEqual(w.footprint([up]), EMPTY);
});

test(named('v1.multus-cni.io/default-network replaces the cluster network'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const altBr = hostBridge(t);
  const sideBr = hostBridge(t);
  w.api.putNad(podNs, 'alt', bridgeConf('alt', altBr, hostLocal(w.ipamDir, '10.211.5.0/24', { routes: [{ dst: '0.0.0.0/0' }] }), { isGateway: true }));
  w.api.putNad(podNs, 'side', bridgeConf('side', sideBr, hostLocal(w.ipamDir, '10.211.6.0/24')));
  const pod = putPod(w.api, podNs, 'app', { [DEFAULT_NETWORK]: `${podNs}/alt`, [NETWORKS]: 'side' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const ips = (add.json().ips as { address: string }[]).map((i) => i.address);
  assert.match(ips.join(), /^10\.211\.5\.\d+\/24$/, 'the result is the override’s');
  const links = podLinks(w.ns.name);
  assert.deepEqual(Object.keys(links).sort(), ['eth0', 'net1']);
  assert.match(links.eth0?.addrs[0] ?? '', /^10\.211\.5\./);
  assert.match(links.net1?.addrs[0] ?? '', /^10\.211\.6\./);
  assert.deepEqual(bridgePorts(w.clusterBridge), [], 'the configured cluster network was not attached');
  assert.deepEqual(reservations(w.ipamDir).map((r) => [r.network, r.ifname]), [['alt', 'eth0'], ['side', 'net1']]);

  assert.deepEqual(networkStatus(w.api, pod), [
    { name: `${podNs}/alt`, interface: 'eth0', ips: [noPrefix(links.eth0?.addrs[0] ?? '')], mac: links.eth0?.mac, default: true, gateway: ['10.211.5.1'], 'default-route': ['10.211.5.1'] },
    { name: `${podNs}/side`, interface: 'net1', ips: [noPrefix(links.net1?.addrs[0] ?? '')], mac: links.net1?.mac, default: false },
  ]);

  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(w.footprint([altBr, sideBr]), EMPTY);
});

test(named('namespaceIsolation: own and global namespaces are allowed, others refused before anything is attached'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const global = uniq('gns');
  const foreign = uniq('fns');
  const br = hostBridge(t);
  for (const ns of [podNs, global, foreign]) w.api.putNad(ns, 'lan', bridgeConf('lan', br, hostLocal(w.ipamDir, '10.211.7.0/24')));
  const conf = w.conf({ namespaceIsolation: true, globalNamespaces: `kube-system, ${global}` });

  const ok = putPod(w.api, podNs, 'allowed', { [NETWORKS]: `lan, ${global}/lan` });
  const okId = uniq('ctr');
  t.after(() => w.run('DEL', okId, podArgs(ok, okId), conf));
  const add = await w.run('ADD', okId, podArgs(ok, okId), conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(networkStatus(w.api, ok).map((s) => [s.name, s.interface]), [['cluster', 'eth0'], [`${podNs}/lan`, 'net1'], [`${global}/lan`, 'net2']]);
  assert.equal((await w.run('DEL', okId, podArgs(ok, okId), conf)).status, 0);
  assert.deepEqual(w.footprint([br]), EMPTY);

  const bad = putPod(w.api, podNs, 'refused', { [NETWORKS]: `lan, ${foreign}/lan` });
  const badId = uniq('ctr');
  w.api.clearRequests();
  const refused = await w.run('ADD', badId, podArgs(bad, badId), conf);
  assert.equal(refused.status, 1);
  const err = refused.json();
  assert.equal(err.code, 7);
  assert.equal(err.msg, `namespaceIsolation: pod in namespace ${podNs} may not use network ${foreign}/lan (allowed: ${podNs}, kube-system, ${global})`);
  assert.deepEqual(w.footprint([br]), EMPTY);
  assert.ok(!w.api.requests().some((r) => r.path.includes(`/namespaces/${foreign}/`)), 'the foreign NAD is not even read');
  assert.equal(podAnnotations(w.api, bad)[STATUS], undefined);
});

test(named('a NAD without spec.config is resolved from confDir by name, a conflist before a conf'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const br = hostBridge(t);
  const up = uplink(t);
  // Same name in both: the conflist (a bridge) must win over the conf (a macvlan).
  writeFileSync(join(w.confDir, '10-both.conf'), macvlanConf('both', up, hostLocal(w.ipamDir, '10.211.8.0/24')));
  writeFileSync(
    join(w.confDir, '20-both.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'both', plugins: [JSON.parse(bridgeConf('both', br, hostLocal(w.ipamDir, '10.211.9.0/24')))] }),
  );
  writeFileSync(join(w.confDir, '30-solo.conf'), macvlanConf('solo', up, hostLocal(w.ipamDir, '10.211.10.0/24')));
  w.api.putNad(podNs, 'both');
  w.api.putNad(podNs, 'solo', '');
  const pod = putPod(w.api, podNs, 'files', { [NETWORKS]: 'both,solo' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const links = podLinks(w.ns.name);
  assert.equal(links.net1?.kind, 'veth', 'the conflist (bridge) was used');
  assert.match(links.net1?.addrs[0] ?? '', /^10\.211\.9\./);
  assert.equal(links.net2?.kind, 'macvlan');
  assert.match(links.net2?.addrs[0] ?? '', /^10\.211\.10\./);
  assert.deepEqual(networkStatus(w.api, pod).map((s) => s.name), ['cluster', `${podNs}/both`, `${podNs}/solo`]);

  assert.equal((await w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(w.footprint([br, up]), EMPTY);
});

test(named('ips on a network whose plugins do not declare the capability: code 2, nothing attached'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const br = hostBridge(t);
  w.api.putNad(podNs, 'plain', bridgeConf('plain', br, hostLocal(w.ipamDir, '10.211.11.0/24')));
  w.api.putNad(podNs, 'fixed', bridgeConf('fixed', br, { type: 'static' }, { capabilities: { ips: true } }));
  const pod = putPod(w.api, podNs, 'caps', { [NETWORKS]: JSON.stringify([{ name: 'fixed', ips: ['10.211.12.2/24'] }, { name: 'plain', ips: ['10.211.11.5/24'] }]) });
  const id = uniq('ctr');
  const add = await w.run('ADD', id, podArgs(pod, id), w.conf());
  assert.equal(add.status, 1);
  const err = add.json();
  assert.equal(err.code, 2);
  assert.equal(err.msg, `network ${podNs}/plain: the pod requests "ips" but no plugin of this network declares the "ips" capability (NPWG v1.3 §4.1.2.1.3)`);
  assert.deepEqual(w.footprint([br]), EMPTY);
  assert.equal(podAnnotations(w.api, pod)[STATUS], undefined);
  assert.ok(!w.api.requests().some((r) => r.method !== 'GET'), 'no write to the API');
});

test(named('a spec.config without name is delegated under the NAD’s name; cni-args override the NAD’s args'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const up = uplink(t);
  const spy = spyPlugin(w.binDir, w.spyDir, 'spy-macvlan', 'macvlan');
  // NPWG §3.4.2: no `name` in spec.config; §4.1.2.1.6: the NAD's own args.cni lose to the annotation's.
  const { name: _drop, ...unnamed } = JSON.parse(macvlanConf('ignored', up, hostLocal(w.ipamDir, '10.211.11.0/24'), { type: spy, args: { cni: { tier: 'bronze', zone: 'a' } } })) as Record<string, unknown>;
  w.api.putNad(podNs, 'anon', JSON.stringify(unnamed));
  const pod = putPod(w.api, podNs, 'anon', { [NETWORKS]: JSON.stringify([{ name: 'anon', 'cni-args': { tier: 'gold' } }]) });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const got = spied(w.spyDir, 'ADD', 'net1');
  assert.equal(got.name, 'anon', 'the NAD name was injected');
  assert.deepEqual(got.args, { cni: { tier: 'gold', zone: 'a' } }, 'the annotation wins, the rest of the NAD args stay');
  assert.deepEqual(networkStatus(w.api, pod).map((s) => s.name), ['cluster', `${podNs}/anon`]);
  assert.equal((await w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(w.footprint([up]), EMPTY);
});

test(named('default-route: the element’s gateways become the pod’s default routes, the cluster network’s is cleared, CHECK still passes'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const br = hostBridge(t);
  w.api.putNad(podNs, 'gw', bridgeConf('gw', br, hostLocal(w.ipamDir, '10.211.12.0/24')));
  // Two gateways: one route each, metrics in the order given (NPWG §4.1.2.1.9's MAY).
  const pod = putPod(w.api, podNs, 'router', { [NETWORKS]: JSON.stringify([{ name: 'gw', 'default-route': ['10.211.12.1', '10.211.12.254'] }]) });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const routes = JSON.parse(ip('-n', w.ns.name, '-j', '-4', 'route', 'show', 'default')) as { gateway?: string; dev: string; metric?: number }[];
  assert.deepEqual(
    routes.map((r) => [r.gateway, r.dev, r.metric ?? 0]),
    [['10.211.12.1', 'net1', 0], ['10.211.12.254', 'net1', 1]],
    'only the selected attachment carries default routes',
  );
  const status = networkStatus(w.api, pod);
  assert.deepEqual(status.map((s) => [s.name, s['default-route']]), [['cluster', undefined], [`${podNs}/gw`, ['10.211.12.1', '10.211.12.254']]]);
  assert.equal((await w.run('CHECK', id, args, conf)).status, 0, 'CHECK against the rewritten results');
  assert.equal((await w.run('DEL', id, args, conf)).status, 0);
  assert.deepEqual(w.footprint([br]), EMPTY);
});

test(named('capabilityCheck: strict refuses undeclared ips/mac; lenient passes them as Multus does (CNI_ARGS IP=, MAC=) and warns on the pod'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const br = hostBridge(t);
  // A Multus-era NAD: static IPAM fed by the annotation, no capabilities declared.
  w.api.putNad(podNs, 'legacy', bridgeConf('legacy', br, { type: 'static' }));
  const ip = '10.211.13.7/24';
  const mac = '0a:58:0a:d3:0d:07';
  const pod = putPod(w.api, podNs, 'mig', { [NETWORKS]: JSON.stringify([{ name: 'legacy', ips: [ip], mac }]) });
  const id = uniq('ctr');
  const args = podArgs(pod, id);

  const strict = await w.run('ADD', id, args, w.conf());
  assert.equal(strict.status, 1);
  assert.equal(strict.json().code, 2);
  assert.equal(strict.json().msg, `network ${podNs}/legacy: the pod requests "ips" but no plugin of this network declares the "ips" capability (NPWG v1.3 §4.1.2.1.3)`);
  assert.deepEqual(w.footprint([br]), EMPTY);
  assert.deepEqual(podEvents(w.api, pod).filter((e) => e.type === 'Warning'), []);

  const conf = w.conf({ capabilityCheck: 'lenient' });
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const links = podLinks(w.ns.name);
  assert.deepEqual(links.net1?.addrs, [ip], 'static took the address from CNI_ARGS IP=');
  assert.equal(links.net1?.mac, mac, 'the bridge plugin took the MAC from CNI_ARGS MAC=');
  const warnings = podEvents(w.api, pod).filter((e) => e.type === 'Warning');
  assert.deepEqual(
    warnings.map((e) => [e.reason, e.message]),
    [[
      'UndeclaredCapability',
      `network-attachment-definition ${podNs}/legacy: the pod requests ips, mac but no plugin of it declares the capability; ` +
        'passed as Multus does (ips: CNI_ARGS IP=; mac: CNI_ARGS MAC=) because capabilityCheck is "lenient". ' +
        'Declare "capabilities": {"ips": true, "mac": true} in its plugin config',
    ]],
  );
  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(w.footprint([br]), EMPTY);

  const bad = await w.run('ADD', uniq('ctr'), args, w.conf({ capabilityCheck: 'multus' }));
  assert.equal(bad.status, 1);
  assert.deepEqual([bad.json().code, bad.json().msg], [7, 'capabilityCheck: must be "strict" (the default) or "lenient", not "multus"']);
});

test(named('a NAD without cniVersion is delegated with plexus’s configured cniVersion, as a plugin and as a conflist, on ADD, CHECK and DEL'), async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('pns');
  const up = uplink(t);
  // The meta-plugin's version, different from the cluster network's own (1.0.0) and plexus's latest,
  // and one the reference plugins speak: only injection can put it into a NAD's request.
  const META_VERSION = '0.4.0';
  assert.notEqual(w.clusterConf.cniVersion, META_VERSION);
  // A recorder per plugin type: keeps each request's stdin as <type>-<VERB>-<ifname>.json, then
  // runs the real plugin of the delegate set under test.
  const recorder = (name: string, real: string) => {
    writeFileSync(
      join(w.binDir, name),
      `#!/bin/sh\nf="${w.spyDir}/${name}-$CNI_COMMAND-$CNI_IFNAME.json"\ncat > "$f"\nexec ${delegateBin(real)} < "$f"\n`,
      { mode: 0o755 },
    );
    return name;
  };
  const recorded = (name: string, verb: string, ifname: string) =>
    JSON.parse(readFileSync(join(w.spyDir, `${name}-${verb}-${ifname}.json`), 'utf8')) as Record<string, unknown>;
  const mv = recorder('rec-macvlan', 'macvlan');
  const tuning = recorder('rec-tuning', 'tuning');
  const { cniVersion: _a, ...plain } = JSON.parse(macvlanConf('plain', up, hostLocal(w.ipamDir, '10.211.14.0/24'), { type: mv })) as Record<string, unknown>;
  const { cniVersion: _b, ...listed } = JSON.parse(macvlanConf('listed', up, hostLocal(w.ipamDir, '10.211.15.0/24'), { type: mv })) as Record<string, unknown>;
  const list = { name: 'listed', plugins: [listed, { type: tuning, dataDir: join(w.dir, 'tuning') }] };
  w.api.putNad(podNs, 'plain', JSON.stringify(plain));
  w.api.putNad(podNs, 'listed', JSON.stringify(list));
  for (const nad of ['plain', 'listed']) {
    const config = (w.api.getNad(podNs, nad)?.spec as { config?: string } | undefined)?.config;
    assert.ok(config !== undefined && !config.includes('cniVersion'), `the ${nad} NAD's spec.config has no cniVersion: ${config}`);
  }
  const pod = putPod(w.api, podNs, 'versions', { [NETWORKS]: 'plain,listed' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf({ cniVersion: META_VERSION });
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.equal(add.json().cniVersion, META_VERSION, 'the runtime gets the version it was configured with');
  const links = podLinks(w.ns.name);
  assert.deepEqual(Object.keys(links).sort(), ['eth0', 'net1', 'net2']);
  assert.match(links.net1?.addrs[0] ?? '', /^10\.211\.14\./);
  assert.match(links.net2?.addrs[0] ?? '', /^10\.211\.15\./);
  // What each plugin was handed: the injected version, and libcni's name.
  const seen = (verb: string) => [
    [verb, 'net1', mv, recorded(mv, verb, 'net1').cniVersion, recorded(mv, verb, 'net1').name],
    [verb, 'net2', mv, recorded(mv, verb, 'net2').cniVersion, recorded(mv, verb, 'net2').name],
    [verb, 'net2', tuning, recorded(tuning, verb, 'net2').cniVersion, recorded(tuning, verb, 'net2').name],
  ];
  const expected = (verb: string) => [
    [verb, 'net1', mv, META_VERSION, 'plain'],
    [verb, 'net2', mv, META_VERSION, 'listed'],
    [verb, 'net2', tuning, META_VERSION, 'listed'],
  ];
  assert.deepEqual(seen('ADD'), expected('ADD'));
  assert.ok(recorded(tuning, 'ADD', 'net2').prevResult, 'the chain’s second plugin got the first one’s result');
  assert.equal((recorded(tuning, 'ADD', 'net2').prevResult as { cniVersion?: string }).cniVersion, META_VERSION, 'prevResult in the injected version');

  const check = await w.run('CHECK', id, args, conf);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.deepEqual(seen('CHECK'), expected('CHECK'));

  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(seen('DEL'), expected('DEL'), 'DEL, from the journal, hands the plugins the same version');
  assert.deepEqual(w.footprint([up]), EMPTY);
});
