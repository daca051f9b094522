// VM-only (scripts/vm/run.sh): the bridge plugin's VLAN keys, which need bridge VLAN filtering
// (CONFIG_BRIDGE_VLAN_FILTERING), missing from the development kernel. Same fixtures as
// plugin-bridge.test.ts: each run in its own host and pod namespaces.
//
// `vlan` is compared with the reference 1.1.1. `vlanTrunk` and `preserveDefaultVlan` are newer
// than that reference (it ignores both keys), so they are checked against upstream's behaviour
// (features.md §4.4, bridge.go setupVeth): trunk VLANs tagged, native VLAN = `vlan` or 1 as
// PVID/untagged, the default VLAN removed first unless preserveDefaultVlan (default true).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { diffJson, type JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';
import { bridgeVlans, call, diffSides, hostVethsOf, makeSide, normaliserFor, type Side, snapSide, type VlanEntry } from './plugin-bridge-kit';

const BR = 'pxbr0';
const conf = (extra: JsonObject): JsonObject => ({ cniVersion: '1.0.0', name: 'brnet', type: 'bridge', bridge: BR, ...extra });

// As in plugin-bridge.test.ts: txqueuelen of both veth ends.
const VETHS = ['host link <hostveth1> .txqlen: (absent) → 1000', 'pod link eth1 .txqlen: (absent) → 1000'];
const DNS_10 = 'result.dns: {} → (absent)';

/** VLANs of the side's ports, by role: the bridge itself, the pod's port, the gateway port. */
function portVlans(s: Side, result: JsonObject | undefined): Record<string, string[]> {
  const all = bridgeVlans(s.host.name);
  const [podPort] = hostVethsOf(result, BR);
  const show = (v: VlanEntry[] | undefined): string[] => (v ?? []).map((x) => [x.vlan, ...(x.flags ?? []).map((f) => f.replace('Egress Untagged', 'untagged'))].join(' '));
  return { bridge: show(all[BR]), pod: show(all[podPort ?? '']) };
}

const CASES: { name: string; conf: JsonObject; prepare?: (s: Side) => void; expect: string[] }[] = [
  {
    name: 'access VLAN, L2 only',
    conf: conf({ vlan: 200 }),
    // Without a gateway the reference's new bridge takes its first port's MAC; plexus's is born with
    // one of its own (decisions §13). MACs are numbered in order of appearance, so the host veth's
    // and every later MAC shift by one, and the bridge's group address with them.
    expect: [
      'host link <hostveth1> .address: "<mac1>" → "<mac2>"',
      VETHS[0]!,
      'host link pxbr0 .linkinfo.info_data.group_addr: "<mac3>" → "<mac4>"',
      'pod link eth1 .address: "<mac2>" → "<mac3>"',
      VETHS[1]!,
      'pod net/ipv6/conf/eth1/accept_dad: "1" → "0"',
      DNS_10,
      'result.interfaces[1].mac: "<mac1>" → "<mac2>"',
      'result.interfaces[2].mac: "<mac2>" → "<mac3>"',
    ],
  },
  {
    name: 'access VLAN with isGateway: the gateway on a <bridge>.<vlan> veth',
    // With the gateway on the VLAN interface nobody pins the bridge's MAC, so it follows the lowest
    // port MAC, a random pick: a bridge made beforehand with a fixed MAC (and VLAN filtering, as an
    // existing bridge is used as it is) keeps the two sides comparable.
    prepare: (s) => execFileSync('ip', ['-n', s.host.name, 'link', 'add', BR, 'address', '02:00:00:00:00:aa', 'type', 'bridge', 'vlan_filtering', '1']),
    conf: conf({ vlan: 100, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.96.20.0/24' }]] } }),
    // The gateway's veth pair has the txqueuelen difference too.
    expect: [...VETHS.slice(0, 1), 'host link <hostveth2> .txqlen: (absent) → 1000', 'host link <peer of <hostveth2>> .txqlen: (absent) → 1000', ...VETHS.slice(1), DNS_10],
  },
];

for (const c of CASES) {
  test(`bridge vlan matches the reference: ${c.name}`, async (t) => {
    requireBuild();
    const sides: { s: Side; add: JsonObject | undefined; result: JsonObject | undefined; snap: Awaited<ReturnType<typeof snapSide>>; vlans: Record<string, string[]> }[] = [];
    for (const label of ['reference', 'plexus'] as const) {
      const s = makeSide(t, label);
      c.prepare?.(s);
      const add = await call(s, 'ADD', c.conf);
      assert.equal(add.status, 0, `${label} ADD: ${add.stdout}${add.stderr}`);
      const norm = normaliserFor(s, hostVethsOf(add.out, BR));
      sides.push({ s, add: add.out, result: add.out && (norm.value(add.out) as JsonObject), snap: await snapSide(s, norm), vlans: portVlans(s, add.out) });
    }
    const [ref, ours] = sides;
    assert.ok(ref && ours);
    assert.deepEqual([...diffSides(ref.snap, ours.snap), ...diffJson(ref.result, ours.result, 'result')], c.expect);
    const vlan = Number(c.conf.vlan);
    assert.deepEqual(ours.vlans.pod, ['1 untagged', `${vlan} PVID untagged`], 'access port: its VLAN as PVID, the default VLAN kept');
    for (const { s, add } of sides) {
      const del = await call(s, 'DEL', { ...c.conf, prevResult: add ?? null });
      assert.equal(del.status, 0, `${s.label} DEL: ${del.stdout}`);
    }
  });
}

test('bridge vlanTrunk: trunk VLANs tagged, VLAN 1 native, the default VLAN kept', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const add = await call(s, 'ADD', conf({ vlanTrunk: [{ id: 10 }, { minID: 20, maxID: 22 }] }));
  assert.equal(add.status, 0, add.stdout);
  assert.deepEqual(portVlans(s, add.out).pod, ['1 PVID untagged', '10', '20', '21', '22']);
  const link = JSON.parse(execFileSync('ip', ['-n', s.host.name, '-j', '-d', 'link', 'show', 'dev', BR], { encoding: 'utf8' })) as { linkinfo: { info_data: { vlan_filtering: number } } }[];
  assert.equal(link[0]?.linkinfo.info_data.vlan_filtering, 1, 'the new bridge filters VLANs');
});

test('bridge vlan + vlanTrunk with preserveDefaultVlan false: native VLAN from vlan, no VLAN 1', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const add = await call(s, 'ADD', conf({ vlan: 30, vlanTrunk: [{ id: 40 }, { id: 30 }], preserveDefaultVlan: false }));
  assert.equal(add.status, 0, add.stdout);
  // 30 is listed in the trunk too: it stays the untagged native VLAN.
  assert.deepEqual(portVlans(s, add.out).pod, ['30 PVID untagged', '40']);
});

test('bridge vlanTrunk errors carry the reference code', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  for (const trunk of [[{ id: 0 }], [{ id: 4095 }], [{ minID: 10 }], [{ minID: 20, maxID: 10 }]]) {
    const r = await call(s, 'ADD', conf({ vlanTrunk: trunk }));
    assert.equal(r.code, 999, `${JSON.stringify(trunk)}: ${r.stdout}`);
  }
});
