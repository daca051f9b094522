// Link helpers against the real kernel, checked with `ip -j -d link` as the oracle.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, test } from 'node:test';
import { listBridgeVlans, setBridgePort } from '../src/netns/bridge';
import { RTM, RTMGRP_LINK } from '../src/netns/consts';
import { NetlinkError } from '../src/netns/errors';
import {
  changeLink,
  createBridge,
  createIpvlan,
  createMacvlan,
  createVeth,
  createVlan,
  createVxlan,
  deleteLink,
  deleteLinksInGroup,
  deleteLinksInGroupEarly,
  linkByIndex,
  linkByName,
  listLinks,
  moveToNetns,
  rename,
  setAlias,
  setDown,
  setGroup,
  setMac,
  setMaster,
  setMtu,
  setUp,
} from '../src/netns/links';
import type { Link } from '../src/netns/linkmsg';
import { Netns } from '../src/netns/netns';
import { decodeIfInfoMsg } from '../src/netns/rtnl';
import { ip, type IpLinkJson, ipJson, ipLink, kernelHas, testNetns, threadNetns, uniqueName } from './netns-kit';

const original = threadNetns();
afterEach(() => assert.equal(threadNetns(), original, 'the thread is back in its own namespace'));

type T = Parameters<typeof testNetns>[0];

function open(t: T): { name: string; ns: Netns } {
  const n = testNetns(t);
  const ns = Netns.open(n.path);
  t.after(() => ns.close());
  return { name: n.name, ns };
}

function must(link: Link | null, what: string): Link {
  assert.ok(link, `${what} exists`);
  return link;
}

function oracle(ns: string, name: string): IpLinkJson {
  const l = ipLink(ns, name);
  assert.ok(l, `ip sees ${name}`);
  return l;
}

test('listLinks agrees with ip on names, indexes, MTU, MAC, kind and up', (t) => {
  const { name, ns } = open(t);
  ip('-n', name, 'link', 'add', 'v0', 'mtu', '1300', 'type', 'veth', 'peer', 'name', 'v1');
  ip('-n', name, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', name, 'link', 'set', 'v0', 'up');
  const ours = listLinks(ns);
  const theirs = ipJson<IpLinkJson[]>(name, '-d', 'link', 'show');
  assert.deepEqual(
    ours.map((l) => [l.index, l.name, l.mtu, l.mac, l.kind, l.up]),
    theirs.map((l) => [l.ifindex, l.ifname, l.mtu, l.address ?? null, l.linkinfo?.info_kind ?? null, l.flags.includes('UP')]),
  );
  const v0 = must(linkByName(ns, 'v0'), 'v0');
  assert.deepEqual(linkByIndex(ns, v0.index), v0);
  assert.equal(v0.parentIndex, must(linkByName(ns, 'v1'), 'v1').index, 'a veth reports its peer as IFLA_LINK');
  assert.equal(linkByName(ns, 'absent0'), null);
  assert.equal(linkByIndex(ns, 99999), null);
});

test('createVeth sets name, MTU and MACs, and can put the peer straight into another namespace', (t) => {
  const a = open(t);
  const b = open(t);
  createVeth(a.ns, 'ha0', 'ct0', { mtu: 1450, mac: '02:00:00:00:aa:01', peerMac: '02:00:00:00:bb:01', peerNetnsFd: b.ns.nsFd(), up: true });
  const host = oracle(a.name, 'ha0');
  assert.equal(host.linkinfo?.info_kind, 'veth');
  assert.equal(host.mtu, 1450);
  assert.equal(host.address, '02:00:00:00:aa:01');
  assert.ok(host.flags.includes('UP'));
  assert.equal(ipLink(a.name, 'ct0'), null, 'the peer is not in the first namespace');
  const peer = oracle(b.name, 'ct0');
  assert.equal(peer.mtu, 1450, 'the peer inherits the MTU');
  assert.equal(peer.address, '02:00:00:00:bb:01');
  const ours = must(linkByName(a.ns, 'ha0'), 'ha0');
  assert.notEqual(ours.parentNetnsId, null, 'the peer lives in another namespace');
});

test('duplicate names fail with a NetlinkError carrying EEXIST', (t) => {
  const { ns } = open(t);
  createVeth(ns, 'dup0', 'dup1');
  assert.throws(
    () => createVeth(ns, 'dup0', 'dup2'),
    (e: unknown) => e instanceof NetlinkError && e.errno === 17 && e.code === 'EEXIST' && /create veth dup0/.test(e.message),
  );
});

test('kernel refusals keep their errno and extack text', (t) => {
  const { ns } = open(t);
  createVeth(ns, 'e0', 'e1');
  const e0 = must(linkByName(ns, 'e0'), 'e0');
  assert.throws(() => setMtu(ns, e0.index, 10), (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL' && e.extack === 'mtu less than device minimum');
  assert.throws(() => createMacvlan(ns, 'mv9', 99999, { mode: 'bridge' }), { code: 'ENODEV' });
  assert.throws(
    () => createVxlan(ns, 'vx9', { vni: 5, parentIndex: 99999 }),
    (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV' && e.errno === 19 && e.extack === 'Invalid local interface, device not found' && e.message === 'create vxlan vx9: No such device (ENODEV): Invalid local interface, device not found',
  );
  assert.throws(() => deleteLink(ns, 99999), { code: 'ENODEV', errno: 19 });
  assert.throws(() => createVeth(ns, 'x'.repeat(16), 'y0'), (e: unknown) => e instanceof NetlinkError && e.extack !== null);
});

test('createBridge, setMaster and bridge port flags match ip', (t) => {
  const { name, ns } = open(t);
  createBridge(ns, 'br0', { stpState: 0, up: true });
  createVeth(ns, 'p0', 'p0peer');
  const br = must(linkByName(ns, 'br0'), 'br0');
  const p0 = must(linkByName(ns, 'p0'), 'p0');
  setMaster(ns, p0.index, br.index);
  assert.equal(oracle(name, 'p0').master, 'br0');
  setBridgePort(ns, p0.index, { hairpin: true, isolated: true, learning: false });
  const slave = oracle(name, 'p0').linkinfo?.info_slave_data ?? {};
  assert.deepEqual([slave.hairpin, slave.isolated, slave.learning], [true, true, false]);
  const ours = must(linkByIndex(ns, p0.index), 'p0');
  assert.equal(ours.masterIndex, br.index);
  assert.equal(ours.portKind, 'bridge');
  assert.deepEqual([ours.bridgePort?.hairpin, ours.bridgePort?.isolated, ours.bridgePort?.learning], [true, true, false]);
  const info = must(linkByIndex(ns, br.index), 'br0').info;
  assert.equal(info?.kind === 'bridge' && info.vlanFiltering, false);
  setMaster(ns, p0.index, 0);
  assert.equal(oracle(name, 'p0').master, undefined);
  // Kernels built with VLAN filtering give the bridge and its ports the default VLAN 1 even
  // while filtering is off; others report none. Either way we must agree with `bridge vlan`.
  setMaster(ns, p0.index, br.index);
  const shown = JSON.parse(execFileSync('bridge', ['-n', name, '-j', 'vlan', 'show'], { encoding: 'utf8' }) || '[]') as Array<{ ifname: string; vlans: Array<{ vlan: number }> }>;
  const byIndex = new Map(listLinks(ns).map((l) => [l.index, l.name]));
  const vlansShown = [...listBridgeVlans(ns)].map(([index, vlans]) => `${byIndex.get(index)}: ${vlans.map((v) => v.vid).join(',')}`);
  assert.deepEqual(vlansShown.sort(), shown.map((e) => `${e.ifname}: ${e.vlans.map((v) => v.vlan).join(',')}`).sort());
});

test('createMacvlan in each mode, with MTU, MAC and bcqueuelen', (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'up0', 'up1', { up: true });
  const parent = must(linkByName(ns, 'up0'), 'up0');
  for (const mode of ['bridge', 'vepa', 'private', 'source'] as const) {
    createMacvlan(ns, `mv-${mode}`, parent.index, { mode, mtu: 1400, mac: '02:00:00:00:cc:0' + ['bridge', 'vepa', 'private', 'source'].indexOf(mode), bcQueueLen: 64 });
    const l = oracle(name, `mv-${mode}`);
    assert.equal(l.linkinfo?.info_kind, 'macvlan');
    assert.equal(l.linkinfo?.info_data?.mode, mode);
    assert.equal(l.mtu, 1400);
    assert.equal(l.link, 'up0');
    const ours = must(linkByName(ns, `mv-${mode}`), mode);
    assert.deepEqual(ours.info?.kind === 'macvlan' && [ours.info.mode, ours.mac], [mode, l.address]);
    if (l.linkinfo?.info_data?.bcqueuelen !== undefined) assert.equal(l.linkinfo.info_data.bcqueuelen, 64);
  }
  // passthru takes the parent over: only one per parent, so on its own lower device.
  createVeth(ns, 'pt0', 'pt1');
  createMacvlan(ns, 'mv-pt', must(linkByName(ns, 'pt0'), 'pt0').index, { mode: 'passthru' });
  assert.equal(oracle(name, 'mv-pt').linkinfo?.info_data?.mode, 'passthru');
});

test('createMacvlan with netnsFd lands in the container namespace, parent stays', (t) => {
  const host = open(t);
  const ct = open(t);
  createVeth(host.ns, 'upl0', 'upl1', { up: true });
  createMacvlan(host.ns, 'mvtmp0', must(linkByName(host.ns, 'upl0'), 'upl0').index, { mode: 'bridge', netnsFd: ct.ns.nsFd() });
  assert.equal(ipLink(host.name, 'mvtmp0'), null);
  assert.equal(oracle(ct.name, 'mvtmp0').linkinfo?.info_kind, 'macvlan');
  const inCt = must(linkByName(ct.ns, 'mvtmp0'), 'mvtmp0');
  rename(ct.ns, inCt.index, 'net1');
  assert.ok(ipLink(ct.name, 'net1'));
});

test('createVxlan reports VNI, port and lower device', (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'ul0', 'ul1');
  createVxlan(ns, 'vx0', { vni: 4242, port: 4789, parentIndex: must(linkByName(ns, 'ul0'), 'ul0').index, learning: false });
  const data = oracle(name, 'vx0').linkinfo?.info_data ?? {};
  assert.deepEqual([data.id, data.port, data.link, data.learning], [4242, 4789, 'ul0', false]);
  const info = must(linkByName(ns, 'vx0'), 'vx0').info;
  assert.deepEqual(info?.kind === 'vxlan' && [info.vni, info.port, info.learning], [4242, 4789, false]);
});

test('up/down, MTU, MAC, alias, rename and group each change what ip shows', (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'c0', 'c1');
  const { index } = must(linkByName(ns, 'c0'), 'c0');
  setUp(ns, index);
  assert.ok(oracle(name, 'c0').flags.includes('UP'));
  setDown(ns, index);
  assert.ok(!oracle(name, 'c0').flags.includes('UP'));
  setMtu(ns, index, 1280);
  setMac(ns, index, '02:12:34:56:78:9a');
  setAlias(ns, index, 'pod eth0 of ns/x');
  setGroup(ns, index, 7);
  let l = oracle(name, 'c0');
  assert.deepEqual([l.mtu, l.address, l.ifalias, l.group], [1280, '02:12:34:56:78:9a', 'pod eth0 of ns/x', '7']);
  const ours = must(linkByIndex(ns, index), 'c0');
  assert.deepEqual([ours.mtu, ours.mac, ours.alias, ours.group], [1280, '02:12:34:56:78:9a', 'pod eth0 of ns/x', 7]);
  setAlias(ns, index, '');
  assert.equal(oracle(name, 'c0').ifalias, undefined, 'an empty alias removes it');
  rename(ns, index, 'eth0');
  l = oracle(name, 'eth0');
  assert.equal(l.ifindex, index);
  changeLink(ns, index, { mtu: 1500, up: true, name: 'eth1' });
  l = oracle(name, 'eth1');
  assert.deepEqual([l.mtu, l.flags.includes('UP')], [1500, true]);
});

test('moveToNetns moves a link and renames it in the same request', (t) => {
  const a = open(t);
  const b = open(t);
  createVeth(a.ns, 'tmp0', 'hostend0');
  const tmp = must(linkByName(a.ns, 'tmp0'), 'tmp0');
  moveToNetns(a.ns, tmp.index, b.ns.nsFd(), 'eth0');
  assert.equal(ipLink(a.name, 'tmp0'), null);
  assert.equal(oracle(b.name, 'eth0').linkinfo?.info_kind, 'veth');
  assert.equal(linkByName(a.ns, 'tmp0'), null);
  const moved = must(linkByName(b.ns, 'eth0'), 'eth0');
  assert.equal(moved.parentIndex, must(linkByName(a.ns, 'hostend0'), 'hostend0').index);
  // and back, keeping the name
  moveToNetns(b.ns, moved.index, a.ns.nsFd());
  assert.ok(ipLink(a.name, 'eth0'));
});

test('deleteLink takes a veth with its peer', (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'd0', 'd1');
  deleteLink(ns, must(linkByName(ns, 'd0'), 'd0').index);
  assert.equal(ipLink(name, 'd0'), null);
  assert.equal(ipLink(name, 'd1'), null);
});

test('deleteLinksInGroup removes every link of the group in one request and nothing else', (t) => {
  const { name, ns } = open(t);
  for (let i = 0; i < 4; i++) createVeth(ns, `g${i}`, `gp${i}`, { group: 9 });
  createVeth(ns, 'keep0', 'keep1');
  createBridge(ns, 'gbr0');
  setGroup(ns, must(linkByName(ns, 'gbr0'), 'gbr0').index, 9);
  deleteLinksInGroup(ns, 9);
  const left = ipJson<IpLinkJson[]>(name, 'link', 'show').map((l) => l.ifname).sort();
  assert.deepEqual(left, ['keep0', 'keep1', 'lo']);
  assert.throws(() => deleteLinksInGroup(ns, 9), { code: 'ENODEV' });
  assert.throws(() => deleteLinksInGroup(ns, 0), { code: 'EPERM' });
});

test('a group holding an undeletable device deletes nothing (EOPNOTSUPP)', (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'gx0', 'gx1', { group: 11 });
  setGroup(ns, must(linkByName(ns, 'lo'), 'lo').index, 11);
  assert.throws(() => deleteLinksInGroup(ns, 11), { code: 'EOPNOTSUPP' });
  assert.ok(ipLink(name, 'gx0'), 'the veth survived');
});

test('deleteLinksInGroupEarly: gone once the kernel announced every link, finished on its ACK', async (t) => {
  const { name, ns } = open(t);
  const host = Netns.current();
  t.after(() => host.close());
  const peers = [0, 1, 2].map((i) => uniqueName(`pxe${i}`));
  t.after(() => peers.forEach((p) => spawnSync('ip', ['link', 'del', p], { stdio: 'ignore' })));
  // Pod-side ends in the namespace, peers on the host, as a bridge plugin leaves them.
  for (const [i, peer] of peers.entries()) createVeth(ns, `e${i}`, peer, { group: 13, peerNetnsFd: host.nsFd() });
  createVeth(ns, 'stay0', 'stay1');
  const indexes = [0, 1, 2].map((i) => must(linkByName(ns, `e${i}`), `e${i}`).index);
  const deletion = deleteLinksInGroupEarly(ns, 13, indexes);
  await deletion.gone;
  // Gone means gone for everyone: no link, no peer, the names free for the next ADD.
  assert.deepEqual(ipJson<IpLinkJson[]>(name, 'link', 'show').map((l) => l.ifname).sort(), ['lo', 'stay0', 'stay1']);
  for (const peer of peers) assert.notEqual(spawnSync('ip', ['link', 'show', 'dev', peer], { stdio: 'ignore' }).status, 0, `${peer} went with its veth`);
  createVeth(ns, 'e0', 'e0p');
  await deletion.finished;
});

test('deleteLinksInGroupEarly: a refused request rejects gone instead of waiting for announcements', async (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'gy0', 'gy1', { group: 12 });
  setGroup(ns, must(linkByName(ns, 'lo'), 'lo').index, 12);
  const deletion = deleteLinksInGroupEarly(ns, 12, [must(linkByName(ns, 'gy0'), 'gy0').index]);
  deletion.finished.catch(() => undefined);
  await assert.rejects(deletion.gone, { code: 'EOPNOTSUPP' });
  assert.ok(ipLink(name, 'gy0'), 'the veth survived');
});

test('deleteLinksInGroupEarly: an index never announced falls back to the ACK', async (t) => {
  const { name, ns } = open(t);
  createVeth(ns, 'gz0', 'gz1', { group: 14 });
  const deletion = deleteLinksInGroupEarly(ns, 14, [must(linkByName(ns, 'gz0'), 'gz0').index, 0x7ffffff0]);
  await deletion.gone;
  await deletion.finished;
  assert.equal(ipLink(name, 'gz0'), null);
});

test('a subscription returns [] when nothing happens and the announcements when something does', async (t) => {
  const { ns } = open(t);
  const watch = ns.subscribe(RTMGRP_LINK);
  t.after(() => watch.close());
  assert.deepEqual(await watch.next(10), []);
  createVeth(ns, 'w0', 'w1');
  const index = must(linkByName(ns, 'w0'), 'w0').index;
  const seen: number[] = [];
  while (!seen.includes(index)) {
    const msgs = await watch.next(2000);
    assert.ok(msgs.length > 0, 'the new link was announced within 2 s');
    for (const m of msgs) if (m.type === RTM.NEWLINK) seen.push(decodeIfInfoMsg(m.payload).index);
  }
  // Closing while a read is on the threadpool defers the close until the read returns.
  const pending = watch.next(20);
  watch.close();
  assert.deepEqual(await pending, []);
  await assert.rejects(watch.next(1), /closed/);
});

// Kinds this kernel may lack: the VM suite (test/netns-kinds.vm.test.ts) creates them for real;
// here we check that their absence surfaces as a clean, typed error.
for (const kind of ['ipvlan', 'vlan'] as const) {
  test(`without ${kind} support the kernel's refusal is a clean EOPNOTSUPP`, { skip: kernelHas(kind) && `kernel has ${kind}` }, (t) => {
    const { ns } = open(t);
    createVeth(ns, 'lower0', 'lower1');
    const parent = must(linkByName(ns, 'lower0'), 'lower0').index;
    const create = kind === 'ipvlan' ? () => createIpvlan(ns, 'k0', parent, { mode: 'l2' }) : () => createVlan(ns, 'k0', parent, { id: 10 });
    assert.throws(create, (e: unknown) => e instanceof NetlinkError && e.code === 'EOPNOTSUPP' && e.errno === 95 && e.message.startsWith(`create ${kind} k0`));
  });
}
