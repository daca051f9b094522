// VM-only (bash scripts/vm/run.sh test/plugin-ipvlan.vm.test.ts): the host kernel has no ipvlan.
// Differential tests of plexus's ipvlan (dist/bin/ipvlan, built on the host before the run)
// against the reference /usr/lib/cni/ipvlan (containernetworking-plugins 1.1.1), each in its own
// fresh namespace on the same veth uplink, one after the other. A kernel without ipvlan is a
// failure here, never a skip: that is what the VM is for.
import { test, type TestContext as T } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { join } from 'node:path';
import { ip, linkNamesIn, netns, tempDir, tryIp, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { cni, diffJson, diffSnapshots, lifecycle, type JsonObject, type Lifecycle, type Tamper } from './helpers/oracle';
import { REFERENCE_PLUGINS, requireBuild, ROOT } from './helpers/plexus';

const OURS = join(ROOT, 'dist', 'bin', 'ipvlan');
const REF = join(REFERENCE_PLUGINS, 'ipvlan');

test('runs where ipvlan exists: the plexus test VM', (t) => {
  t.diagnostic(`PLEXUS_IN_VM=${process.env.PLEXUS_IN_VM ?? '(unset)'}, kernel ${release()}`);
  assert.equal(process.env.PLEXUS_IN_VM, '1', 'run me with scripts/vm/run.sh: the host kernel has no ipvlan');
  const name = uniq('pxk');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
  t.after(() => tryIp('link', 'del', name));
  const r = spawnSync('ip', ['link', 'add', `${name}i`, 'link', name, 'type', 'ipvlan', 'mode', 'l2'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `this kernel cannot create an ipvlan: ${r.stderr}`);
});

/** A veth uplink: the master end in the host, its peer up in a namespace of its own (carrier). */
function uplink(t: T): { name: string; mac: string } {
  const name = uniq('pxi');
  const peer = netns(t, 'pxq');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`, 'netns', peer.name);
  t.after(() => tryIp('link', 'del', name));
  ip('link', 'set', name, 'up');
  ip('-n', peer.name, 'link', 'set', `${name}p`, 'up');
  const [l] = JSON.parse(ip('-j', 'link', 'show', name)) as { address: string }[];
  return { name, mac: l?.address ?? '' };
}

// Differences kept on purpose (see plugins/ipvlan/ipvlan.ts and plugins/macvlan's test):
const TXQLEN = 'link net1 .txqlen: (absent) → 1000'; // Go netlink's zero TxQLen in the reference
const NODAD = (cidr: string): string => `addr net1 ${cidr} .nodad: (absent) → true`;
const NDISC = 'net/ipv6/conf/net1/ndisc_notify: "0" → "1"';
const DNS_10 = 'result.dns: {} → (absent)';

const modeTamper = (to: string, back: string): Tamper => ({
  name: `mode changed to ${to}`,
  apply: (ns) => ip('-n', ns, 'link', 'set', 'net1', 'type', 'ipvlan', 'mode', to),
  undo: (ns) => ip('-n', ns, 'link', 'set', 'net1', 'type', 'ipvlan', 'mode', back),
});
const addrTamper = (cidr: string): Tamper => ({ name: `address ${cidr} deleted`, apply: (ns) => ip('-n', ns, 'addr', 'del', cidr, 'dev', 'net1') });

interface Case {
  name: string;
  mode: string;
  conf: (master: string, dataDir: string) => JsonObject;
  tampers: Tamper[];
  expect: string[];
  /** The reference's CHECK outcomes when they differ from plexus's (a reference bug, with why). */
  refChecks?: Record<string, number>;
}

const base = (master: string | undefined, cniVersion: string, extra: JsonObject): JsonObject => ({ cniVersion, name: 'ipvnet', type: 'ipvlan', ...(master ? { master } : {}), ...extra });
const hostLocal = (dataDir: string, subnet: string): JsonObject => ({ type: 'host-local', dataDir, ranges: [[{ subnet }]] });

const CASES: Case[] = [
  {
    name: 'l2 (default) mode, static IPv4+IPv6 with gateways, routes and dns (1.0.0)',
    mode: 'l2',
    conf: (m) =>
      base(m, '1.0.0', {
        ipam: {
          type: 'static',
          addresses: [
            { address: '10.81.0.2/24', gateway: '10.81.0.1' },
            { address: 'fd00:81::2/64', gateway: 'fd00:81::1' },
          ],
          routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
        },
        dns: { nameservers: ['192.0.2.53'] },
      }),
    tampers: [modeTamper('l3', 'l2'), addrTamper('10.81.0.2/24')],
    expect: [TXQLEN, NODAD('fd00:81::2/64'), NDISC],
  },
  {
    name: 'l3 mode, host-local IPv4 (0.4.0)',
    mode: 'l3',
    conf: (m, d) => base(m, '0.4.0', { mode: 'l3', ipam: hostLocal(d, '10.82.0.0/24') }),
    tampers: [modeTamper('l2', 'l3'), addrTamper('10.82.0.2/24')],
    expect: [TXQLEN],
  },
  {
    name: 'l3s mode, mtu 1400, host-local IPv4 (0.3.1)',
    mode: 'l3s',
    conf: (m, d) => base(m, '0.3.1', { mode: 'l3s', mtu: 1400, ipam: hostLocal(d, '10.83.0.0/24') }),
    tampers: [],
    expect: [TXQLEN],
  },
  {
    name: 'chained: no master, no IPAM; master and IPs from prevResult (1.0.0)',
    mode: 'l2',
    conf: (m) =>
      base(undefined, '1.0.0', {
        prevResult: { cniVersion: '1.0.0', interfaces: [{ name: m }], ips: [{ address: '10.84.0.2/24', gateway: '10.84.0.1', interface: 0 }], routes: [{ dst: '10.85.0.0/16' }] },
      }),
    tampers: [addrTamper('10.84.0.2/24')],
    expect: [TXQLEN, DNS_10],
    // The reference's CHECK looks the master up by its config name, "" here: "failed to lookup
    // master" on every CHECK of a chained ipvlan. plexus checks the master only when it is named.
    refChecks: { clean: 999, 'address 10.84.0.2/24 deleted': 999 },
  },
];

async function runBoth(t: T, c: Case): Promise<{ ref: Lifecycle; ours: Lifecycle; dataDirs: string[] }> {
  const master = uplink(t);
  const dataDirs: string[] = [];
  const run = async (bin: string): Promise<Lifecycle> => {
    const dataDir = tempDir(t);
    dataDirs.push(dataDir);
    return lifecycle({ bin, ns: netns(t, 'pxd'), conf: c.conf(master.name, dataDir), ifname: 'net1', tampers: c.tampers, snapshot: { settle: true }, keepMacs: [master.mac] });
  };
  const ref = await run(REF);
  const ours = await run(OURS);
  return { ref, ours, dataDirs };
}

for (const c of CASES) {
  test(`ipvlan matches the reference: ${c.name}`, async (t) => {
    requireBuild();
    const { ref, ours, dataDirs } = await runBoth(t, c);
    assert.equal(ref.add.status, 0, `reference ADD: ${ref.add.stdout}${ref.add.stderr}`);
    assert.equal(ours.add.status, 0, `plexus ADD: ${ours.add.stdout}${ours.add.stderr}`);
    assert.deepEqual(diffSnapshots(ref.before, ours.before), [], 'the two namespaces start alike');
    assert.match(JSON.stringify(ours.snap.links['link net1']), new RegExp(`"info_kind":"ipvlan".*"mode":"${c.mode}"`));
    const diffs = [...diffSnapshots(ref.snap, ours.snap), ...diffJson(ref.result, ours.result, 'result')];
    assert.deepEqual(diffs, c.expect);
    assert.deepEqual(ref.checks, c.refChecks ?? ours.checks);
    if (c.conf('m', 'd').cniVersion !== '0.3.1') assert.equal(ours.checks.clean, 0, 'CHECK passes on a fresh attachment');
    for (const tm of c.tampers) assert.equal(ours.checks[tm.name], 999, `CHECK after "${tm.name}"`);
    for (const side of [ref, ours]) {
      assert.equal(side.del.status, 0, side.del.stdout);
      assert.equal(side.delAgain.status, 0, side.delAgain.stdout);
    }
    for (const d of dataDirs) assert.deepEqual(reservedIps(d, 'ipvnet'), [], 'IPAM released (host-local cases)');
    assert.deepEqual(diffSnapshots(ours.before, ours.after), []);
    assert.deepEqual(diffSnapshots(ref.before, ref.after), []);
  });
}

test('ipvlan DEL releases host-local addresses with the netns gone, and with CNI_NETNS empty', async (t) => {
  requireBuild();
  for (const bin of [REF, OURS]) {
    // An uplink each: a DEL with CNI_NETNS empty leaves the link (and its address) in the pod's
    // namespace, and an ipvlan port refuses an address one of its links holds.
    const master = uplink(t);
    const dataDir = tempDir(t);
    const conf = JSON.stringify(base(master.name, '0.4.0', { ipam: hostLocal(dataDir, '10.86.0.0/24') }));
    const ns = netns(t, 'pxd');
    const add1 = await cni(bin, { command: 'ADD', containerId: 'c1', netns: ns.path, ifname: 'net1', stdin: conf });
    assert.equal(add1.status, 0, `${bin}: ${add1.stdout}`);
    ip('netns', 'del', ns.name);
    const gone = await cni(bin, { command: 'DEL', containerId: 'c1', netns: ns.path, ifname: 'net1', stdin: conf });
    assert.equal(gone.status, 0, `${bin}: ${gone.stdout}`);
    // Another subnet: the kernel destroys a deleted namespace's links asynchronously, and an
    // ipvlan port refuses an address one of its links (the old one, maybe still there) holds.
    const conf2 = JSON.stringify(base(master.name, '0.4.0', { ipam: hostLocal(dataDir, '10.86.1.0/24') }));
    const ns2 = netns(t, 'pxd');
    const add2 = await cni(bin, { command: 'ADD', containerId: 'c2', netns: ns2.path, ifname: 'net1', stdin: conf2 });
    assert.equal(add2.status, 0, `${bin}: ${add2.stdout}`);
    const empty = await cni(bin, { command: 'DEL', containerId: 'c2', netns: '', ifname: 'net1', stdin: conf2 });
    assert.equal(empty.status, 0, `${bin}: ${empty.stdout}`);
    assert.deepEqual(reservedIps(dataDir, 'ipvnet'), [], `${bin} released both addresses`);
  }
});

test('ipvlan linkInContainer: stacked on the pod default-route interface; CHECK and DEL', async (t) => {
  requireBuild();
  const pod = netns(t, 'pxd');
  const sink = netns(t, 'pxs');
  ip('-n', pod.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'sink0', 'netns', sink.name);
  ip('-n', pod.name, 'addr', 'add', '10.89.0.2/24', 'dev', 'eth0');
  ip('-n', pod.name, 'link', 'set', 'eth0', 'up');
  ip('-n', pod.name, 'route', 'add', 'default', 'via', '10.89.0.1');
  const conf = { cniVersion: '1.0.0', name: 'ipvnet', type: 'ipvlan', linkInContainer: true, mode: 'l3', ipam: { type: 'static', addresses: [{ address: '10.90.0.2/24' }] } };
  const r = await cni(OURS, { command: 'ADD', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin: JSON.stringify(conf) });
  assert.equal(r.status, 0, r.stdout);
  const [l] = JSON.parse(ip('-n', pod.name, '-j', '-d', 'link', 'show', 'net1')) as { link?: string; linkinfo: { info_kind: string; info_data: { mode: string } } }[];
  assert.equal(l?.link, 'eth0');
  assert.deepEqual([l?.linkinfo.info_kind, l?.linkinfo.info_data.mode], ['ipvlan', 'l3']);
  const withPrev = JSON.stringify({ ...conf, prevResult: r.out ?? null });
  const check = await cni(OURS, { command: 'CHECK', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin: withPrev });
  assert.equal(check.status, 0, check.stdout);
  assert.equal((await cni(OURS, { command: 'DEL', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin: withPrev })).status, 0);
  assert.deepEqual(linkNamesIn(pod.name).sort(), ['eth0', 'lo']);
});

const BAD: { name: string; stdin: (master: string) => string }[] = [
  { name: 'master device missing', stdin: () => JSON.stringify(base('pxnosuchdev0', '1.0.0', { ipam: { type: 'static', addresses: [{ address: '10.87.0.2/24' }] } })) },
  { name: 'unknown mode', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mode: 'l4', ipam: { type: 'static', addresses: [{ address: '10.87.0.2/24' }] } })) },
  // No range check in the reference (an ipvlan may exceed its master's MTU): the kernel's max_mtu.
  { name: 'mtu above the kernel maximum', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mtu: 70000, ipam: { type: 'static', addresses: [{ address: '10.87.0.2/24' }] } })) },
  { name: 'no IPAM and no prevResult', stdin: (m) => JSON.stringify(base(m, '1.0.0', {})) },
  { name: 'chained, prevResult with two interfaces and no master', stdin: () => JSON.stringify(base(undefined, '1.0.0', { prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'a' }, { name: 'b' }] } })) },
];

for (const b of BAD) {
  test(`ipvlan fails like the reference, with the same CNI code: ${b.name}`, async (t) => {
    requireBuild();
    const master = uplink(t);
    const codes: (number | undefined)[] = [];
    for (const bin of [REF, OURS]) {
      const ns = netns(t, 'pxd');
      const r = await cni(bin, { command: 'ADD', containerId: 'c1', netns: ns.path, ifname: 'net1', stdin: b.stdin(master.name) });
      assert.notEqual(r.status, 0, `${bin} must fail: ${r.stdout}`);
      codes.push(r.code);
      // The reference leaves its ipvlan behind when IPAM fails (no rollback in its cmdAdd).
      if (bin === OURS) assert.deepEqual(linkNamesIn(ns.name), ['lo'], 'plexus left nothing in the pod');
    }
    assert.equal(codes[1], codes[0], `same code as the reference (reference ${codes[0]}, plexus ${codes[1]})`);
  });
}
