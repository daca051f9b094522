// Link kinds and features this dev machine's kernel lacks (ipvlan, vlan, dummy, bridge VLAN
// filtering). They skip here and run for real in the VM suite (scripts/vm/run.sh), which boots
// Debian's kernel; `ip -j` / `bridge -j` are the oracle, as on the host.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { afterEach, test } from 'node:test';
import { addBridgeVlan, delBridgeVlan, listBridgeVlans, setBridgeOptions } from '../src/netns/bridge';
import { NetlinkError } from '../src/netns/errors';
import { createBridge, createDummy, createIpvlan, createVeth, createVlan, deleteLinksInGroup, linkByName, setMaster } from '../src/netns/links';
import { Netns } from '../src/netns/netns';
import { type IpLinkJson, ipJson, ipLink, needs, testNetns, threadNetns } from './netns-kit';

const original = threadNetns();
afterEach(() => assert.equal(threadNetns(), original, 'the thread is back in its own namespace'));

type T = Parameters<typeof testNetns>[0];

function lab(t: T): { name: string; ns: Netns; parent: number } {
  const n = testNetns(t);
  const ns = Netns.open(n.path);
  t.after(() => ns.close());
  createVeth(ns, 'low0', 'low1', { up: true });
  return { name: n.name, ns, parent: linkByName(ns, 'low0')?.index ?? 0 };
}

test('createIpvlan in l2, l3 and l3s modes with bridge, private and vepa flags', needs('ipvlan'), (t) => {
  const { name, ns, parent } = lab(t);
  const cases = [
    ['l2', 'bridge'],
    ['l3', 'private'],
    ['l3s', 'vepa'],
  ] as const;
  for (const [mode, flag] of cases) {
    createIpvlan(ns, `ipv-${mode}`, parent, { mode, flag, mtu: 1400 });
    const l = ipLink(name, `ipv-${mode}`);
    assert.equal(l?.linkinfo?.info_kind, 'ipvlan');
    assert.equal(l?.linkinfo?.info_data?.mode, mode);
    assert.equal(l?.mtu, 1400);
    assert.equal(l?.link, 'low0');
    const ours = linkByName(ns, `ipv-${mode}`)?.info;
    assert.deepEqual(ours?.kind === 'ipvlan' && [ours.mode, ours.flag], [mode, flag]);
  }
});

test('createIpvlan straight into another namespace', needs('ipvlan'), (t) => {
  const host = lab(t);
  const ct = testNetns(t);
  const ctNs = Netns.open(ct.path);
  t.after(() => ctNs.close());
  createIpvlan(host.ns, 'ipvtmp', host.parent, { mode: 'l2', netnsFd: ctNs.nsFd() });
  assert.equal(ipLink(host.name, 'ipvtmp'), null);
  assert.equal(ipLink(ct.name, 'ipvtmp')?.linkinfo?.info_kind, 'ipvlan');
});

test('createVlan with 802.1Q and 802.1ad', needs('vlan'), (t) => {
  const { name, ns, parent } = lab(t);
  createVlan(ns, 'low0.100', parent, { id: 100 });
  createVlan(ns, 'qinq', parent, { id: 200, protocol: '802.1ad', mtu: 1400 });
  const q = ipLink(name, 'low0.100')?.linkinfo?.info_data;
  assert.deepEqual([q?.protocol, q?.id], ['802.1Q', 100]);
  const ad = ipLink(name, 'qinq');
  assert.deepEqual([ad?.linkinfo?.info_data?.protocol, ad?.linkinfo?.info_data?.id, ad?.mtu], ['802.1ad', 200, 1400]);
  const ours = linkByName(ns, 'qinq')?.info;
  assert.deepEqual(ours?.kind === 'vlan' && [ours.id, ours.protocol], [200, '802.1ad']);
  assert.throws(() => createVlan(ns, 'bad', parent, { id: 5000 }), (e: unknown) => e instanceof NetlinkError && e.code === 'ERANGE');
});

test('createDummy, and a group delete of dummies and veths together', needs('dummy'), (t) => {
  const { name, ns } = lab(t);
  for (let i = 0; i < 3; i++) createDummy(ns, `dm${i}`, { group: 5, mtu: 9000 });
  createVeth(ns, 'gv0', 'gv1', { group: 5 });
  assert.equal(ipLink(name, 'dm0')?.linkinfo?.info_kind, 'dummy');
  assert.equal(ipLink(name, 'dm0')?.mtu, 9000);
  deleteLinksInGroup(ns, 5);
  const left = ipJson<IpLinkJson[]>(name, 'link', 'show').map((l) => l.ifname).sort();
  assert.deepEqual(left, ['lo', 'low0', 'low1']);
});

interface BridgeVlanJson {
  ifname: string;
  vlans: Array<{ vlan: number; flags?: string[] }>;
}

test('bridge VLAN filtering: ports get VLANs with PVID/untagged, matching `bridge vlan`', needs('bridge_vlan_filtering'), (t) => {
  const { name, ns } = lab(t);
  createBridge(ns, 'br0', { vlanFiltering: true, vlanDefaultPvid: 1 });
  createBridge(ns, 'br1');
  const br0 = linkByName(ns, 'br0');
  const br1 = linkByName(ns, 'br1');
  const port = linkByName(ns, 'low0');
  assert.ok(br0 && br1 && port);
  assert.equal(ipLink(name, 'br0')?.linkinfo?.info_data?.vlan_filtering, 1);
  setBridgeOptions(ns, br1.index, { vlanFiltering: true });
  assert.equal(ipLink(name, 'br1')?.linkinfo?.info_data?.vlan_filtering, 1);
  setMaster(ns, port.index, br0.index);
  addBridgeVlan(ns, port.index, { vid: 10, pvid: true, untagged: true });
  addBridgeVlan(ns, port.index, { vid: 20, pvid: false, untagged: false });
  addBridgeVlan(ns, br0.index, { vid: 10, pvid: false, untagged: false }, { self: true });
  const shown = JSON.parse(execFileSync('bridge', ['-n', name, '-j', 'vlan', 'show'], { encoding: 'utf8' })) as BridgeVlanJson[];
  const portVlans = shown.find((e) => e.ifname === 'low0')?.vlans ?? [];
  const v10 = portVlans.find((v) => v.vlan === 10);
  assert.ok(v10?.flags?.includes('PVID') && v10.flags.includes('Egress Untagged'));
  assert.ok(portVlans.some((v) => v.vlan === 20));
  assert.ok(shown.find((e) => e.ifname === 'br0')?.vlans.some((v) => v.vlan === 10));
  const ours = listBridgeVlans(ns).get(port.index) ?? [];
  assert.deepEqual(ours.find((v) => v.vid === 10), { vid: 10, pvid: true, untagged: true });
  assert.deepEqual(ours.find((v) => v.vid === 20), { vid: 20, pvid: false, untagged: false });
  delBridgeVlan(ns, port.index, 20);
  assert.equal(listBridgeVlans(ns).get(port.index)?.some((v) => v.vid === 20), false);
  assert.throws(() => addBridgeVlan(ns, port.index, { vid: 4095, pvid: false, untagged: false }), RangeError);
});
