// The bridge plugin (dist/bin/bridge, the built executable under that name) against the reference
// /usr/lib/cni/bridge (Debian containernetworking-plugins 1.1.1). Each run gets its own host and
// pod namespaces (test/plugin-bridge-kit.ts), so both run the same config with the same bridge
// name, subnet and container ID, and everything they make dies with the namespaces.
//
// Differential cases compare both sides after ADD (links, addresses, routes, sysctls of host and
// pod, bridge VLANs, iptables NAT and nftables rules), the results, CHECK before and after
// tampering, and both sides after DEL. Every remaining difference is listed with its reason, so a
// new one, or one that went away, fails the test. Keys the installed reference predates
// (portIsolation, disableContainerInterface, ipMasqBackend, vlanTrunk, preserveDefaultVlan) are
// tested against the behaviour the upstream code and features.md §4.4 describe.
//
// Bridge VLAN filtering is missing from this kernel: vlan/vlanTrunk are in plugin-bridge.vm.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { ip } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { diffJson, type JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';
import {
  call,
  diffSides,
  fakeIpam,
  hostVethsOf,
  inNs,
  makeSide,
  natRules,
  nftRules,
  normaliserFor,
  type Run,
  runIn,
  type Side,
  type SideSnapshot,
  snapSide,
  tryInNs,
} from './plugin-bridge-kit';

const BR = 'pxbr0';
const NET = 'brnet';
const hostLocal = (...subnets: string[]): JsonObject => ({ type: 'host-local', ranges: subnets.map((subnet) => [{ subnet }]) });
const conf = (cniVersion: string, extra: JsonObject): JsonObject => ({ cniVersion, name: NET, type: 'bridge', bridge: BR, ...extra });

// ---- differences kept on purpose, each with its reason ----------------------------------------------

// Both veth ends: Go's netlink sends LinkAttrs.TxQLen's zero value, so the reference's veths get
// txqueuelen 0; plexus leaves the kernel default (1000), since a zero-length queue breaks FIFO
// shapers (bandwidth).
const VETHS = ['host link <hostveth1> .txqlen: (absent) → 1000', 'pod link eth1 .txqlen: (absent) → 1000'];
// IPv6 addresses are added nodad (usable at once) on top of accept_dad=0, which both set.
const NODAD = (cidr: string): string => `pod addr eth1 ${cidr} .nodad: (absent) → true`;
// Unsolicited neighbour advertisements on link-up (the reference sets it since 1.2, not in 1.1.1).
const NDISC = 'pod net/ipv6/conf/eth1/ndisc_notify: "0" → "1"';
// src/cni/result.ts omits an empty dns from 1.x results; the reference prints "dns": {}.
const DNS_10 = 'result.dns: {} → (absent)';
// DAD is off for L2-only pods too (the reference does it only with IPAM): hairpin would echo the
// link-local address's own solicitations back and fail it.
const L2_DAD = 'pod net/ipv6/conf/eth1/accept_dad: "1" → "0"';
// Without a gateway the reference never sets the bridge's MAC, so the kernel gives it the first
// port's (the host veth's); plexus's bridge is born with a MAC of its own (decisions.md, CHECK on
// shared bridges). MACs are numbered in order of appearance, so every later one shifts by one.
const OWN_BRIDGE_MAC = [
  'host link pxbr0 .address: "<mac1>" → "<mac2>"',
  'host link pxbr0 .linkinfo.info_data.group_addr: "<mac2>" → "<mac3>"',
  'pod link eth1 .address: "<mac3>" → "<mac4>"',
];
const OWN_BRIDGE_MAC_RESULT = ['result.interfaces[0].mac: "<mac1>" → "<mac2>"', 'result.interfaces[2].mac: "<mac3>" → "<mac4>"'];
// The ownership marker of each masqueraded address (plugins/bridge/masq-iptables.ts): DEL/GC find
// rules without the netns.
// (The chain is the reference's; that both sides' jumps to it are equal proves the name matches.)
const CHAIN = `CNI-${createHash('sha512').update(`${NET}pxbridge-c1`).digest('hex').slice(0, 24)}`;
const MARKER = (ip: string, ifname = 'eth1'): string => `nat4 + -A ${CHAIN} -s ${ip}/32 -m comment --comment "name: \\"${NET}\\" id: \\"pxbridge-c1\\" if: \\"${ifname}\\""`;

interface Tamper {
  name: string;
  apply(s: Side): void;
  /** Puts things back, so the next tamper (and DEL) start from the configured state. */
  undo(s: Side): void;
  /** Expected CHECK codes after it, [reference, plexus]. */
  codes: [number, number];
}

interface Case {
  name: string;
  conf: JsonObject;
  args?: string;
  keepMacs?: string[];
  /** Bridge prepared in each host before ADD. */
  prepare?: (s: Side) => void;
  expect: string[];
  /** Differences left after DEL; none by default. */
  expectAfterDel?: string[];
  /** CHECK after a clean ADD, [reference, plexus]; undefined: no CHECK (0.3.x). */
  check?: [number, number];
  tampers?: Tamper[];
}

const delAddr = (cidr: string): Tamper => ({
  name: `pod address ${cidr} deleted`,
  apply: (s) => ip('-n', s.pod.name, 'addr', 'del', cidr, 'dev', 'eth1'),
  undo: (s) => ip('-n', s.pod.name, 'addr', 'add', cidr, 'dev', 'eth1', ...(cidr.includes(':') ? ['nodad'] : [])),
  codes: [999, 999],
});
const delDefault = (gw: string): Tamper => ({
  name: 'default route deleted',
  apply: (s) => ip('-n', s.pod.name, 'route', 'del', 'default'),
  undo: (s) => ip('-n', s.pod.name, 'route', 'add', 'default', 'via', gw, 'dev', 'eth1'),
  codes: [999, 999],
});
const promiscOff: Tamper = {
  name: 'bridge promisc turned off',
  apply: (s) => ip('-n', s.host.name, 'link', 'set', BR, 'promisc', 'off'),
  undo: (s) => ip('-n', s.host.name, 'link', 'set', BR, 'promisc', 'on'),
  codes: [999, 999],
};
const masqJump = (s: Side): string => {
  const jump = natRules(s.host.name).find((l) => l.startsWith('-A POSTROUTING') && l.includes('-j CNI-'));
  assert.ok(jump, 'a masquerade jump');
  return jump;
};
const jumps = new Map<string, string>();
// The reference's CHECK never looks at its firewall rules; plexus's does.
const delMasqJump: Tamper = {
  name: 'masquerade jump deleted',
  apply: (s) => {
    jumps.set(s.host.name, masqJump(s));
    inNs(s.host.name, 'sh', '-c', `iptables -t nat ${masqJump(s).replace(/^-A/, '-D')}`);
  },
  undo: (s) => inNs(s.host.name, 'sh', '-c', `iptables -t nat ${jumps.get(s.host.name) ?? ''}`),
  codes: [0, 999],
};
const delSpoofRules: Tamper = {
  name: 'spoof-check rules deleted',
  apply: (s) => inNs(s.host.name, 'nft', 'flush', 'chain', 'bridge', 'nat', 'cni-br-iface-pxbridge-c1-eth1-mac'),
  undo: () => undefined, // DEL removes the chain either way
  // The reference fails any L2 CHECK (it runs IPAM CHECK with an empty type).
  codes: [999, 999],
};

const CASES: Case[] = [
  {
    name: 'isDefaultGateway, ipMasq, hairpinMode, host-local IPv4 (1.0.0)',
    conf: conf('1.0.0', { isDefaultGateway: true, ipMasq: true, hairpinMode: true, ipam: hostLocal('10.96.1.0/24') }),
    expect: [...VETHS, MARKER('10.96.1.2'), DNS_10],
    check: [0, 0],
    tampers: [delMasqJump, delDefault('10.96.1.1'), delAddr('10.96.1.2/24')],
  },
  {
    name: 'isGateway dual stack, mtu 9000, promiscMode (0.4.0)',
    conf: conf('0.4.0', { isGateway: true, mtu: 9000, promiscMode: true, ipam: hostLocal('10.96.2.0/24', 'fd00:96:2::/64') }),
    expect: [...VETHS, NODAD('fd00:96:2::2/64'), NDISC],
    check: [0, 0],
    tampers: [promiscOff, delAddr('fd00:96:2::2/64')],
  },
  {
    // The reference's CHECK runs IPAM CHECK with an empty ipam type and fails; plexus's passes.
    name: 'L2 only (no IPAM), macspoofchk (1.0.0)',
    conf: conf('1.0.0', { macspoofchk: true }),
    expect: [
      VETHS[0]!,
      ...OWN_BRIDGE_MAC,
      VETHS[1]!,
      L2_DAD,
      'nft - ether saddr <mac3> return comment "macspoofchk-pxbridge-c1-eth1"',
      'nft + ether saddr <mac4> return comment "macspoofchk-pxbridge-c1-eth1"',
      DNS_10,
      ...OWN_BRIDGE_MAC_RESULT,
    ],
    // The reference's bridge is left with no address once its last port is gone; plexus's keeps its own.
    expectAfterDel: ['host link pxbr0 .address: "00:00:00:00:00:00" → "<mac2>"', 'host link pxbr0 .linkinfo.info_data.group_addr: "<mac2>" → "<mac3>"'],
    check: [999, 0],
    tampers: [delSpoofRules],
  },
  {
    name: 'MAC precedence CNI_ARGS < args.cni < runtimeConfig, isGateway (0.3.1)',
    conf: conf('0.3.1', { isGateway: true, args: { cni: { mac: '02:00:00:00:00:02' } }, runtimeConfig: { mac: '02:00:00:00:00:03' }, ipam: hostLocal('10.96.4.0/24') }),
    args: 'IgnoreUnknown=1;K8S_POD_NAME=p;MAC=02:00:00:00:00:01',
    keepMacs: ['02:00:00:00:00:03'],
    expect: [...VETHS],
  },
  {
    name: 'enabledad, IPv6 only, isDefaultGateway (1.0.0)',
    conf: conf('1.0.0', { enabledad: true, isDefaultGateway: true, ipam: hostLocal('fd00:96:5::/64') }),
    expect: [...VETHS, NDISC, DNS_10],
    check: [0, 0],
  },
  {
    name: 'forceAddress replaces another address on an existing bridge (1.0.0)',
    prepare: (s) => {
      ip('-n', s.host.name, 'link', 'add', BR, 'type', 'bridge');
      ip('-n', s.host.name, 'addr', 'add', '10.96.6.77/24', 'dev', BR);
    },
    conf: conf('1.0.0', { isGateway: true, forceAddress: true, ipam: hostLocal('10.96.6.0/24') }),
    expect: [...VETHS, DNS_10],
    check: [0, 0],
  },
];

interface Added {
  side: Side;
  add: Run;
  snap: SideSnapshot;
  result: JsonObject | undefined;
  norm: ReturnType<typeof normaliserFor>;
}

async function addOn(s: Side, c: Case): Promise<Added> {
  c.prepare?.(s);
  const add = await call(s, 'ADD', c.conf, { args: c.args });
  const norm = normaliserFor(s, hostVethsOf(add.out, BR), c.keepMacs);
  return { side: s, add, snap: await snapSide(s, norm), result: add.out && (norm.value(add.out) as JsonObject), norm };
}

const withPrev = (c: JsonObject, add: Run): JsonObject => ({ ...c, prevResult: add.out ?? null });
const statusOf = (r: Run): number | undefined => (r.status === 0 ? 0 : r.code);

function hostVeths(s: Side): string[] {
  const links = JSON.parse(ip('-n', s.host.name, '-j', '-d', 'link', 'show')) as { ifname: string; linkinfo?: { info_kind?: string } }[];
  return links.filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
}

/** What DEL must leave in a side: no veth, no pod interface, no rules, no reserved address. */
function assertClean(s: Side): void {
  const podLinks = (JSON.parse(ip('-n', s.pod.name, '-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname);
  assert.deepEqual(podLinks, ['lo'], `${s.label}: pod interface gone`);
  assert.deepEqual(hostVeths(s), [], `${s.label}: host veth gone`);
  assert.deepEqual(natRules(s.host.name).filter((l) => l.includes('CNI-')), [], `${s.label}: no masquerade rules left`);
  assert.deepEqual(nftRules(s.host.name).filter((l) => /cni-br-iface|masq_checks \{|saddr/.test(l) && !l.startsWith('chain masq_checks')), [], `${s.label}: no nft rules left`);
  assert.deepEqual(reservedIps(s.dataDir, NET), [], `${s.label}: IPAM released`);
}

for (const c of CASES) {
  test(`bridge matches the reference: ${c.name}`, async (t) => {
    requireBuild();
    const ref = await addOn(makeSide(t, 'reference'), c);
    const ours = await addOn(makeSide(t, 'plexus'), c);
    assert.equal(ref.add.status, 0, `reference ADD: ${ref.add.stdout}${ref.add.stderr}`);
    assert.equal(ours.add.status, 0, `plexus ADD: ${ours.add.stdout}${ours.add.stderr}`);
    assert.deepEqual([...diffSides(ref.snap, ours.snap), ...diffJson(ref.result, ours.result, 'result')], c.expect);

    // CHECK on the fresh attachment, then after each tamper (both sides tampered alike).
    if (c.check) {
      const codes = async (): Promise<(number | undefined)[]> => Promise.all([ref, ours].map(async (x) => statusOf(await call(x.side, 'CHECK', withPrev(c.conf, x.add), { args: c.args }))));
      assert.deepEqual(await codes(), c.check, 'CHECK right after ADD [reference, plexus]');
      for (const tm of c.tampers ?? []) {
        for (const x of [ref, ours]) tm.apply(x.side);
        assert.deepEqual(await codes(), tm.codes, `CHECK after "${tm.name}" [reference, plexus]`);
        for (const x of [ref, ours]) tm.undo(x.side);
      }
    }

    // DEL (with prevResult from 0.4.0 on) succeeds twice and leaves both sides alike and clean.
    const legacy = /^0\.[0-3]\./.test(String(c.conf.cniVersion));
    for (const x of [ref, ours]) {
      const stdin = legacy ? c.conf : withPrev(c.conf, x.add);
      const del = await call(x.side, 'DEL', stdin, { args: c.args });
      assert.equal(del.status, 0, `${x.side.label} DEL: ${del.stdout}`);
      const again = await call(x.side, 'DEL', stdin, { args: c.args });
      assert.equal(again.status, 0, `${x.side.label} second DEL: ${again.stdout}`);
      assertClean(x.side);
    }
    assert.deepEqual(diffSides(await snapSide(ref.side, ref.norm), await snapSide(ours.side, ours.norm)), c.expectAfterDel ?? [], 'after DEL');
  });
}

test('bridge DEL with the netns gone removes masquerade and spoof-check rules; the reference leaves them', async (t) => {
  requireBuild();
  const c = conf('1.0.0', { isGateway: true, ipMasq: true, macspoofchk: true, ipam: hostLocal('10.96.7.0/24') });
  const left: Record<string, string[]> = {};
  for (const label of ['reference', 'plexus'] as const) {
    const s = makeSide(t, label);
    const add = await call(s, 'ADD', c);
    assert.equal(add.status, 0, `${label} ADD: ${add.stdout}`);
    assert.equal(natRules(s.host.name).filter((l) => l.includes('-j MASQUERADE')).length, 1, `${label} masquerades`);
    ip('netns', 'del', s.pod.name); // the runtime lost the pod's namespace before DEL
    const del = await call(s, 'DEL', withPrev(c, add));
    assert.equal(del.status, 0, `${label} DEL: ${del.stdout}`);
    assert.deepEqual(reservedIps(s.dataDir, NET), [], `${label} released the address`);
    left[label] = [...natRules(s.host.name).filter((l) => l.includes('CNI-')), ...nftRules(s.host.name).filter((l) => l.includes('cni-br-iface'))];
  }
  assert.deepEqual(left.plexus, [], 'plexus left no rule behind');
  // The point: the reference keeps masquerading an address it has released, and keeps a spoof
  // check for an interface that no longer exists.
  assert.ok(left.reference?.some((l) => l.startsWith('-A POSTROUTING -s 10.96.7.2/32')), `reference leaves its jump: ${left.reference?.join('\n')}`);
  assert.ok(left.reference?.some((l) => l.includes('chain cni-br-iface-pxbridge-c1-eth1')), 'reference leaves its spoof chains');
});

test('bridge DEL without prevResult and with CNI_NETNS empty still removes the rules', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const c = conf('0.3.1', { ipMasq: true, macspoofchk: true, ipam: hostLocal('10.96.8.0/24') });
  assert.equal((await call(s, 'ADD', c)).status, 0);
  ip('netns', 'del', s.pod.name);
  const del = await call(s, 'DEL', c, { netns: '' });
  assert.equal(del.status, 0, del.stdout);
  assert.deepEqual(natRules(s.host.name).filter((l) => l.includes('CNI-')), []);
  assert.deepEqual(nftRules(s.host.name).filter((l) => l.includes('cni-br-iface')), []);
  assert.deepEqual(reservedIps(s.dataDir, NET), []);
});

test('bridge interoperates with the reference: each DELs what the other ADDed', async (t) => {
  requireBuild();
  const c = conf('1.0.0', { isGateway: true, ipMasq: true, macspoofchk: true, ipam: hostLocal('10.96.9.0/24') });
  // A node switching from the reference plugin to plexus: pods attached before are torn down by plexus...
  const a = makeSide(t, 'reference');
  const add = await call(a, 'ADD', c);
  assert.equal(add.status, 0, add.stdout);
  const del = await call({ ...a, bin: makeSide(t, 'plexus').bin }, 'DEL', withPrev(c, add));
  assert.equal(del.status, 0, del.stdout);
  assertClean(a);
  // ...and a rollback to the reference tears down pods plexus attached (same jump rules).
  const b = makeSide(t, 'plexus');
  const add2 = await call(b, 'ADD', c);
  assert.equal(add2.status, 0, add2.stdout);
  const del2 = await call({ ...b, bin: makeSide(t, 'reference').bin }, 'DEL', withPrev(c, add2));
  assert.equal(del2.status, 0, del2.stdout);
  assertClean(b);
});

test('bridge keeps masquerading a second attachment of the same network when the first is deleted', async (t) => {
  requireBuild();
  const c = conf('1.0.0', { isGateway: true, ipMasq: true, ipam: hostLocal('10.96.10.0/24') });
  const outcome: Record<string, { del: number | undefined; rules: string[] }> = {};
  for (const label of ['reference', 'plexus'] as const) {
    const s = makeSide(t, label);
    const one = await call(s, 'ADD', c, { ifname: 'eth1' });
    const two = await call(s, 'ADD', c, { ifname: 'eth2' });
    assert.equal(one.status, 0, one.stdout);
    assert.equal(two.status, 0, two.stdout);
    const del = await call(s, 'DEL', withPrev(c, one), { ifname: 'eth1' });
    outcome[label] = { del: statusOf(del), rules: natRules(s.host.name).filter((l) => l.includes('CNI-') && !l.startsWith(':')) };
  }
  // plexus: eth1's jump and marker gone, eth2 still masqueraded.
  assert.equal(outcome.plexus?.del, 0);
  const ours = outcome.plexus?.rules ?? [];
  assert.ok(ours.some((l) => l.startsWith('-A POSTROUTING -s 10.96.10.3/32')), ours.join('\n'));
  assert.ok(ours.some((l) => l.includes('-j MASQUERADE')), ours.join('\n'));
  assert.ok(!ours.some((l) => l.includes('10.96.10.2/32')), ours.join('\n'));
  // The reference fails the DEL ("chain busy") after flushing the chain eth2 still jumps to.
  assert.equal(outcome.reference?.del, 999);
  assert.ok(!outcome.reference?.rules.some((l) => l.includes('-j MASQUERADE')), 'reference flushed the shared chain');
});

test('bridge ipMasqBackend nftables: rules named by container and interface, removed without the netns', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const c = conf('1.0.0', { isGateway: true, ipMasq: true, ipMasqBackend: 'nftables', ipam: hostLocal('10.96.11.0/24', 'fd00:96:11::/64') });
  const add = await call(s, 'ADD', c);
  assert.equal(add.status, 0, add.stdout);
  const rules = nftRules(s.host.name).filter((l) => / saddr /.test(l));
  assert.deepEqual(
    rules.map((l) => l.replace(/comment ".*"/, 'comment')),
    ['ip saddr 10.96.11.2 ip daddr != 10.96.11.0/24 masquerade comment', 'ip6 saddr fd00:96:11::2 ip6 daddr != fd00:96:11::/64 masquerade comment'],
  );
  for (const l of rules) assert.match(l, /, net: brnet, if: eth1, id: pxbridge-c1"$/);
  assert.deepEqual(natRules(s.host.name).filter((l) => l.includes('CNI-')), [], 'nothing in iptables');
  assert.equal((await call(s, 'CHECK', withPrev(c, add))).status, 0);
  inNs(s.host.name, 'nft', 'flush', 'chain', 'inet', 'cni_plugins_masquerade', 'masq_checks');
  assert.equal(statusOf(await call(s, 'CHECK', withPrev(c, add))), 999, 'CHECK sees the rules are gone');
  // Put them back with a second ADD of another container, then lose the netns and DEL.
  const add2 = await call(s, 'ADD', c, { containerId: 'pxbridge-c2', ifname: 'eth2' });
  assert.equal(add2.status, 0, add2.stdout);
  ip('netns', 'del', s.pod.name);
  assert.equal((await call(s, 'DEL', withPrev(c, add2), { containerId: 'pxbridge-c2', ifname: 'eth2' })).status, 0);
  assert.equal((await call(s, 'DEL', withPrev(c, add))).status, 0);
  assert.deepEqual(nftRules(s.host.name).filter((l) => l.includes('saddr')), []);
});

test('bridge GC removes the rules of attachments that are not valid and forwards GC to IPAM', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const ipam = fakeIpam(t);
  const c = conf('1.1.0', { ipMasq: true, macspoofchk: true, ipam: { type: 'fake-ipam' } });
  const path = `${ipam.dir}:/usr/lib/cni`;
  for (const [id, ifname] of [
    ['pxbridge-5', 'eth1'],
    ['pxbridge-6', 'eth2'],
  ] as const) {
    const r = await call(s, 'ADD', c, { containerId: id, ifname, path });
    assert.equal(r.status, 0, r.stdout);
  }
  // pxbridge-6's pod went away without a DEL: its veth is gone, its rules are not.
  ip('-n', s.pod.name, 'link', 'del', 'eth2');
  assert.equal(natRules(s.host.name).filter((l) => l.startsWith('-A POSTROUTING')).length, 2);
  const gc = await runGc(s, c, path, [{ containerID: 'pxbridge-5', ifname: 'eth1' }]);
  assert.equal(gc.status, 0, gc.stdout);
  const jumps = natRules(s.host.name).filter((l) => l.startsWith('-A POSTROUTING'));
  assert.deepEqual(jumps.map((l) => l.split(' ')[3]), ['10.97.0.5/32'], 'only the valid attachment is masqueraded');
  // Spoof checks carry no network name: GC removes those whose host veth is gone.
  const spoof = nftRules(s.host.name).filter((l) => l.startsWith('iifname'));
  assert.deepEqual(spoof.map((l) => /comment "(.*)"/.exec(l)?.[1]), ['macspoofchk-pxbridge-5-eth1']);
  assert.ok(!nftRules(s.host.name).some((l) => l.includes('cni-br-iface-pxbridge-6')), 'the stale chains went too');
  assert.match(readFileSync(ipam.log, 'utf8'), /^GC /m, 'GC reached the IPAM plugin');
});

function runGc(s: Side, c: JsonObject, path: string, valid: { containerID: string; ifname: string }[]): Promise<Run> {
  return call(s, 'GC', { ...c, 'cni.dev/valid-attachments': valid }, { path });
}

test('bridge STATUS: ready with its tools and IPAM, 50 when ipMasq has no iptables or nft', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const ipam = fakeIpam(t);
  const path = `${ipam.dir}:/usr/lib/cni`;
  const masq = conf('1.1.0', { ipMasq: true, ipam: { type: 'fake-ipam' } });
  const ok = await call(s, 'STATUS', masq, { path });
  assert.equal(ok.status, 0, ok.stdout);
  assert.match(readFileSync(ipam.log, 'utf8'), /^STATUS /m, 'STATUS reached the IPAM plugin');
  // Without the tools (Debian: iptables* are links to xtables-nft-multi) the network cannot work.
  const hide = ['/usr/sbin/nft', realpathSync('/usr/sbin/iptables')];
  const down = await call(s, 'STATUS', masq, { path, hide });
  assert.equal(down.code, 50, down.stdout);
  assert.equal((await call(s, 'STATUS', conf('1.1.0', { macspoofchk: true }), { path, hide })).code, 50);
  assert.equal((await call(s, 'STATUS', conf('1.1.0', {}), { path, hide })).status, 0, 'a plain bridge needs neither');
  // ADD fails the same way before it makes anything.
  const add = await call(s, 'ADD', conf('1.0.0', { ipMasq: true, ipam: hostLocal('10.96.15.0/24') }), { hide });
  assert.equal(add.code, 999, add.stdout);
  assert.deepEqual(hostVeths(s), []);
  assert.deepEqual(reservedIps(s.dataDir, NET), []);
  const bad = await call(s, 'STATUS', conf('1.1.0', { ipMasq: true, ipMasqBackend: 'pf' }), { path });
  assert.equal(bad.code, 999, `an unknown backend is a config error: ${bad.stdout}`);
});

test('bridge portIsolation isolates the host veth port; disableContainerInterface leaves the pod side down', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const add = await call(s, 'ADD', conf('1.0.0', { portIsolation: true, disableContainerInterface: true }));
  assert.equal(add.status, 0, add.stdout);
  const [hostVeth] = hostVethsOf(add.out, BR);
  const port = JSON.parse(ip('-n', s.host.name, '-j', '-d', 'link', 'show', 'dev', hostVeth ?? '')) as { linkinfo: { info_slave_data: { isolated: boolean } } }[];
  assert.equal(port[0]?.linkinfo.info_slave_data.isolated, true);
  const pod = JSON.parse(ip('-n', s.pod.name, '-j', 'link', 'show', 'dev', 'eth1')) as { flags: string[] }[];
  assert.ok(!pod[0]?.flags.includes('UP'), 'pod side left down');
  // IPAM with disableContainerInterface is refused, before anything is made.
  const refused = await call(s, 'ADD', conf('1.0.0', { disableContainerInterface: true, ipam: hostLocal('10.96.12.0/24') }), { ifname: 'eth2' });
  assert.equal(refused.code, 999, refused.stdout);
  assert.ok(!tryInNs(s.pod.name, 'ip', 'link', 'show', 'eth2').stdout.includes('eth2'));
});

test('bridge policyRouting: the pod interface routes from its own table, rules removed on DEL', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const c = conf('1.0.0', { isDefaultGateway: true, policyRouting: { table: 120 }, ipam: hostLocal('10.96.13.0/24') });
  const add = await call(s, 'ADD', c);
  assert.equal(add.status, 0, add.stdout);
  assert.match(ip('-n', s.pod.name, 'route', 'show', 'table', '120'), /^default via 10\.96\.13\.1 dev eth1/m);
  const rules = ip('-n', s.pod.name, 'rule', 'show');
  assert.match(rules, /from 10\.96\.13\.2 lookup 120/);
  assert.match(rules, /iif eth1 lookup 120/);
  assert.equal((await call(s, 'CHECK', withPrev(c, add))).status, 0);
  assert.equal((await call(s, 'DEL', withPrev(c, add))).status, 0);
  assert.doesNotMatch(ip('-n', s.pod.name, 'rule', 'show'), /lookup 120/);
});

interface BadCase {
  name: string;
  stdin: JsonObject | string;
  args?: string;
  /** [reference, plexus] when they differ on purpose; else plexus must give the reference's. */
  codes?: [number, number];
}

const BAD: BadCase[] = [
  { name: 'vlan 5000', stdin: conf('1.0.0', { vlan: 5000 }) },
  { name: 'vlan -1', stdin: conf('1.0.0', { vlan: -1 }) },
  { name: 'hairpinMode and promiscMode together', stdin: conf('1.0.0', { hairpinMode: true, promiscMode: true }) },
  { name: 'bad MAC in runtimeConfig', stdin: conf('1.0.0', { runtimeConfig: { mac: 'zz' } }) },
  { name: 'bad MAC in CNI_ARGS', stdin: conf('1.0.0', {}), args: 'IgnoreUnknown=1;MAC=02:00:00:00:00' },
  { name: 'mtu not a number', stdin: conf('1.0.0', { mtu: '1500' }) },
  { name: 'isGateway not a boolean', stdin: conf('1.0.0', { isGateway: 'yes' }) },
  { name: 'existing address without forceAddress', stdin: conf('1.0.0', { isGateway: true, ipam: hostLocal('10.96.14.0/24') }) },
  // plugins/common/ipam.ts reports a missing IPAM plugin as 7 (invalid config), the reference as 999.
  { name: 'IPAM plugin missing', stdin: conf('1.0.0', { ipam: { type: 'pxnosuchipam' } }), codes: [999, 7] },
  { name: 'config is not JSON', stdin: '{"cniVersion": "1.0.0", "name": ' },
];

for (const b of BAD) {
  test(`bridge fails like the reference, with the same CNI code: ${b.name}`, async (t) => {
    requireBuild();
    const codes: (number | undefined)[] = [];
    for (const label of ['reference', 'plexus'] as const) {
      const s = makeSide(t, label);
      // For the forceAddress case: a bridge that already has another IPv4 address.
      ip('-n', s.host.name, 'link', 'add', BR, 'type', 'bridge');
      ip('-n', s.host.name, 'addr', 'add', '10.96.14.77/24', 'dev', BR);
      const run =
        typeof b.stdin === 'string'
          ? await runIn(s.host.name, s.bin, { command: 'ADD', containerId: 'pxbridge-c1', netns: s.pod.path, ifname: 'eth1', stdin: b.stdin })
          : await call(s, 'ADD', b.stdin, { args: b.args });
      assert.notEqual(run.status, 0, `${label} must fail: ${run.stdout}`);
      codes.push(run.code);
      if (label === 'plexus') {
        // plexus undoes what it made; the reference leaves its veth when a failure comes after it.
        assert.deepEqual(hostVeths(s), [], 'no veth left in the host');
        assert.equal((JSON.parse(ip('-n', s.pod.name, '-j', 'link', 'show')) as unknown[]).length, 1, 'nothing left in the pod');
        assert.deepEqual(reservedIps(s.dataDir, NET), [], 'IPAM rolled back');
      }
    }
    if (b.codes) assert.deepEqual(codes, b.codes, '[reference, plexus] codes');
    else assert.equal(codes[1], codes[0], `same code as the reference (reference ${codes[0]}, plexus ${codes[1]})`);
  });
}
