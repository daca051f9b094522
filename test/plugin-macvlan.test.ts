// Differential tests: plexus's macvlan (dist/bin/macvlan, the built executable under that name)
// against the reference /usr/lib/cni/macvlan (Debian containernetworking-plugins 1.1.1), each in
// its own fresh namespace on the same veth uplink, one after the other (same static addresses,
// and passthru allows one macvlan per uplink). Both must leave the same links, addresses, routes,
// rules and sysctls and print the same result up to random MACs; every difference that remains
// is listed with its reason, so a new one (or a fixed one) fails the test.
import { test, type TestContext as T } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ip, linkNamesIn, netns, tempDir, tryIp, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { cni, diffJson, diffSnapshots, lifecycle, type JsonObject, type Lifecycle, type Tamper } from './helpers/oracle';
import { REFERENCE_PLUGINS, requireBuild, ROOT } from './helpers/plexus';

const OURS = join(ROOT, 'dist', 'bin', 'macvlan');
const REF = join(REFERENCE_PLUGINS, 'macvlan');

/** A veth uplink: the master end in the host, its peer up in a namespace of its own (carrier). */
function uplink(t: T): string {
  const name = uniq('pxm');
  const peer = netns(t, 'pxq');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`, 'netns', peer.name);
  t.after(() => tryIp('link', 'del', name));
  ip('link', 'set', name, 'up');
  ip('-n', peer.name, 'link', 'set', `${name}p`, 'up');
  return name;
}

// Differences kept on purpose (see the report / plugins/macvlan/macvlan.ts):
// Go's netlink sends the zero value of LinkAttrs.TxQLen, so the reference's macvlans get
// txqueuelen 0; plexus leaves the kernel's default.
const TXQLEN = 'link net1 .txqlen: (absent) → 1000';
const NODAD = (cidr: string): string => `addr net1 ${cidr} .nodad: (absent) → true`; // usable at once, no DAD wait
const NDISC = 'net/ipv6/conf/net1/ndisc_notify: "0" → "1"'; // reference v1.9 sets it; 1.1.1 predates that
const DNS_10 = 'result.dns: {} → (absent)'; // src/cni/result.ts omits an empty dns from 1.x results

const modeTamper = (to: string, back: string): Tamper => ({
  name: `mode changed to ${to}`,
  apply: (ns) => ip('-n', ns, 'link', 'set', 'net1', 'type', 'macvlan', 'mode', to),
  undo: (ns) => ip('-n', ns, 'link', 'set', 'net1', 'type', 'macvlan', 'mode', back),
});
const addrTamper = (cidr: string): Tamper => ({ name: `address ${cidr} deleted`, apply: (ns) => ip('-n', ns, 'addr', 'del', cidr, 'dev', 'net1') });

interface Case {
  name: string;
  /** The macvlan mode both must have made (so two identical failures cannot pass as a match). */
  mode: string;
  conf: (master: string, dataDir: string) => JsonObject;
  args?: string;
  tampers: Tamper[];
  expect: string[];
}

const staticIpam: JsonObject = {
  type: 'static',
  addresses: [
    { address: '10.91.0.2/24', gateway: '10.91.0.1' },
    { address: 'fd00:91::2/64', gateway: 'fd00:91::1' },
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '10.77.0.0/16', gw: '10.91.0.254' }, { dst: '::/0' }],
  dns: { nameservers: ['10.91.0.53'] },
};
const base = (master: string, cniVersion: string, extra: JsonObject): JsonObject => ({ cniVersion, name: 'mvnet', type: 'macvlan', master, ...extra });

const CASES: Case[] = [
  {
    name: 'bridge mode, static IPv4+IPv6 with gateways, routes and dns (1.0.0)',
    mode: 'bridge',
    conf: (m) => base(m, '1.0.0', { mode: 'bridge', ipam: staticIpam, dns: { nameservers: ['192.0.2.53'], search: ['pod.local'] } }),
    tampers: [modeTamper('private', 'bridge'), addrTamper('10.91.0.2/24')],
    expect: [TXQLEN, NODAD('fd00:91::2/64'), NDISC],
  },
  {
    name: 'private mode, host-local IPv4 (0.4.0)',
    mode: 'private',
    conf: (m, dataDir) => base(m, '0.4.0', { mode: 'private', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.92.0.0/24' }]] } }),
    tampers: [modeTamper('vepa', 'private'), addrTamper('10.92.0.2/24')],
    expect: [TXQLEN],
  },
  {
    name: 'vepa mode, mtu 1400, host-local IPv4 (0.3.1)',
    mode: 'vepa',
    conf: (m, dataDir) => base(m, '0.3.1', { mode: 'vepa', mtu: 1400, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.93.0.0/24' }]] } }),
    tampers: [],
    expect: [TXQLEN],
  },
  {
    name: 'passthru mode, static MAC from runtimeConfig (1.0.0)',
    mode: 'passthru',
    conf: (m) => base(m, '1.0.0', { mode: 'passthru', runtimeConfig: { mac: '02:11:22:33:44:55' }, ipam: { type: 'static', addresses: [{ address: '10.94.0.2/24' }] } }),
    tampers: [addrTamper('10.94.0.2/24')],
    expect: [TXQLEN, DNS_10],
  },
  {
    name: 'default mode, no IPAM: L2 only (1.0.0)',
    mode: 'bridge',
    conf: (m) => base(m, '1.0.0', {}),
    tampers: [modeTamper('vepa', 'bridge')],
    expect: [TXQLEN, DNS_10],
  },
  {
    name: 'MAC from CNI_ARGS over the config key (0.4.0)',
    mode: 'bridge',
    conf: (m) => base(m, '0.4.0', { mac: '02:00:00:00:00:01', ipam: { type: 'static', addresses: [{ address: '10.95.0.2/24' }] } }),
    args: 'IgnoreUnknown=1;K8S_POD_NAME=p;MAC=02:aa:bb:cc:dd:ee',
    tampers: [],
    expect: [TXQLEN],
  },
];

async function runBoth(t: T, c: Case): Promise<{ ref: Lifecycle; ours: Lifecycle; dataDirs: string[] }> {
  const master = uplink(t);
  const dataDirs: string[] = [];
  const run = async (bin: string): Promise<Lifecycle> => {
    const ns = netns(t, 'pxd');
    const dataDir = tempDir(t);
    dataDirs.push(dataDir);
    return lifecycle({ bin, ns, conf: c.conf(master, dataDir), ifname: 'net1', args: c.args, tampers: c.tampers, snapshot: { settle: true } });
  };
  // One after the other: the same static addresses, on one L2, must not meet.
  const ref = await run(REF);
  const ours = await run(OURS);
  return { ref, ours, dataDirs };
}

for (const c of CASES) {
  test(`macvlan matches the reference: ${c.name}`, async (t) => {
    requireBuild();
    const { ref, ours, dataDirs } = await runBoth(t, c);
    assert.equal(ref.add.status, 0, `reference ADD: ${ref.add.stdout}${ref.add.stderr}`);
    assert.equal(ours.add.status, 0, `plexus ADD: ${ours.add.stdout}${ours.add.stderr}`);
    assert.deepEqual(diffSnapshots(ref.before, ours.before), [], 'the two namespaces start alike');
    const info = ours.snap.links['link net1']?.linkinfo;
    assert.deepEqual([info && typeof info === 'object' && !Array.isArray(info) ? info.info_kind : undefined], ['macvlan']);
    assert.match(JSON.stringify(info), new RegExp(`"mode":"${c.mode}"`));
    const diffs = [...diffSnapshots(ref.snap, ours.snap), ...diffJson(ref.result, ours.result, 'result')];
    assert.deepEqual(diffs, c.expect);
    // CHECK: passes on the fresh attachment, fails (same code) after each tamper.
    assert.deepEqual(ours.checks, ref.checks);
    if (c.conf('m', 'd').cniVersion !== '0.3.1') assert.equal(ours.checks.clean, 0, 'CHECK passes on a fresh attachment');
    for (const tm of c.tampers) assert.equal(ours.checks[tm.name], 999, `CHECK after "${tm.name}"`);
    // DEL: succeeds twice, leaves the namespace as it was (links, addresses, routes, rules).
    for (const side of [ref, ours]) {
      assert.equal(side.del.status, 0, side.del.stdout);
      assert.equal(side.delAgain.status, 0, side.delAgain.stdout);
    }
    for (const d of dataDirs) assert.deepEqual(reservedIps(d, 'mvnet'), [], 'IPAM released (host-local cases)');
    assert.deepEqual(diffSnapshots(ours.before, ours.after), []);
    assert.deepEqual(diffSnapshots(ref.before, ref.after), []);
  });
}

test('macvlan DEL releases host-local addresses, also with the netns gone or CNI_NETNS empty', async (t) => {
  requireBuild();
  const master = uplink(t);
  for (const bin of [REF, OURS]) {
    const dataDir = tempDir(t);
    const conf = JSON.stringify(base(master, '0.4.0', { ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.96.0.0/24' }]] } }));
    const ns = netns(t, 'pxd');
    const add = await cni(bin, { command: 'ADD', containerId: 'c1', netns: ns.path, ifname: 'net1', stdin: conf });
    assert.equal(add.status, 0, add.stdout);
    assert.equal(reservedIps(dataDir, 'mvnet').length, 1);
    // the pod's namespace disappears before DEL (the runtime lost it)
    ip('netns', 'del', ns.name);
    const gone = await cni(bin, { command: 'DEL', containerId: 'c1', netns: ns.path, ifname: 'net1', stdin: conf });
    assert.equal(gone.status, 0, `${bin} DEL with the netns gone: ${gone.stdout}`);
    assert.deepEqual(reservedIps(dataDir, 'mvnet'), [], `${bin} released the address`);
    // and once more with no namespace at all
    const ns2 = netns(t, 'pxd');
    assert.equal((await cni(bin, { command: 'ADD', containerId: 'c2', netns: ns2.path, ifname: 'net1', stdin: conf })).status, 0);
    const empty = await cni(bin, { command: 'DEL', containerId: 'c2', netns: '', ifname: 'net1', stdin: conf });
    assert.equal(empty.status, 0, `${bin} DEL with CNI_NETNS empty: ${empty.stdout}`);
    assert.deepEqual(reservedIps(dataDir, 'mvnet'), []);
  }
});

interface BadCase {
  name: string;
  stdin: (master: string) => string;
  args?: string;
}

const BAD: BadCase[] = [
  { name: 'master device missing', stdin: () => JSON.stringify(base('pxnosuchdev0', '1.0.0', {})) },
  { name: 'mtu above the master', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mtu: 9000 })) },
  { name: 'negative mtu', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mtu: -1 })) },
  { name: 'mtu not a number', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mtu: '1400' })) },
  { name: 'unknown mode', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mode: 'source' })) },
  { name: 'invalid mac in the config', stdin: (m) => JSON.stringify(base(m, '1.0.0', { mac: '02:00:00:00:00' })) },
  { name: 'invalid mac in runtimeConfig', stdin: (m) => JSON.stringify(base(m, '1.0.0', { runtimeConfig: { mac: 'not-a-mac' } })) },
  { name: 'invalid mac in CNI_ARGS', stdin: (m) => JSON.stringify(base(m, '1.0.0', {})), args: 'IgnoreUnknown=1;MAC=zz:zz:zz:zz:zz:zz' },
  { name: 'config is not JSON', stdin: () => '{"cniVersion": "1.0.0", "name": ' },
];

for (const b of BAD) {
  test(`macvlan fails like the reference, with the same CNI code: ${b.name}`, async (t) => {
    requireBuild();
    const master = uplink(t);
    // Other suites add host links concurrently: look only at links stacked on this test's uplink.
    const onUplink = (): string[] =>
      (JSON.parse(ip('-j', 'link', 'show')) as { ifname: string; link?: string }[]).filter((l) => l.link === master).map((l) => l.ifname);
    const codes: (number | undefined)[] = [];
    for (const bin of [REF, OURS]) {
      const ns = netns(t, 'pxd');
      const r = await cni(bin, { command: 'ADD', containerId: 'c1', netns: ns.path, ifname: 'net1', args: b.args, stdin: b.stdin(master) });
      assert.notEqual(r.status, 0, `${bin} must fail: ${r.stdout}`);
      codes.push(r.code);
      assert.deepEqual(linkNamesIn(ns.name), ['lo'], `${bin} left nothing in the pod`);
    }
    assert.equal(codes[1], codes[0], `same code as the reference (reference ${codes[0]}, plexus ${codes[1]})`);
    assert.deepEqual(onUplink(), [], 'nothing left in the host on the uplink');
  });
}
