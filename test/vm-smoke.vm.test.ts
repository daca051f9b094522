// VM-only (scripts/vm/run.sh; host runners leave *.vm.test.ts out): proves the kernel the VM boots
// gives node, in the chroot, what the kernel-feature tests need: network namespaces, dummy, ipvlan
// (l2 and l3), 802.1Q vlan, macvlan, veth and bridge links, moving links into a namespace, policy
// routing there, and iproute2's JSON output about all of it. A missing feature is a failure, never
// a skip: the point of the file is to say loudly when the VM lost one. Outside the VM every test
// fails at once without touching the host.
//
// Each process start costs 150-500 ms under TCG, so the file batches: one `ip -batch` per step and
// one `ip -j` listing per check.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

const IN_VM = process.env.PLEXUS_IN_VM === '1';
const NOT_IN_VM =
  'PLEXUS_IN_VM is not 1: this file is for scripts/vm/run.sh (host runners leave *.vm.test.ts out)';

// Names unique to this process (IFNAMSIZ: 15 characters at most).
const tag = (process.pid % 100000).toString(36);
const NS = `plx-smoke-${tag}`;
const DUMMY = `pxd${tag}`;
// macvlan and ipvlan cannot share a lower link (both claim its rx handler): macvlan gets its own.
const DUMMY2 = `pxe${tag}`;
const IPV_L2 = `pxl2${tag}`;
const IPV_L3 = `pxl3${tag}`;
const VLAN_ID = 42;
const VLAN = `pxv${tag}.${VLAN_ID}`;
const MACV = `pxm${tag}`;
const VETH_A = `pxa${tag}`;
const VETH_B = `pxb${tag}`;
const BRIDGE = `pxbr${tag}`;
const ALL = [DUMMY, DUMMY2, IPV_L2, IPV_L3, VLAN, MACV, VETH_A, VETH_B, BRIDGE];

interface Link {
  ifname: string;
  link?: string;
  flags?: string[];
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string };
}

/** iproute2's `ip` (busybox's applet has no ipvlan, netns or -j), found once, in the VM only. */
let ipPath: string | undefined;
function ipBin(): string {
  if (ipPath) return ipPath;
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) {
    if (!existsSync(p)) continue;
    const v = spawnSync(p, ['-V'], { encoding: 'utf8' });
    if (v.status === 0 && /iproute2/.test(v.stdout + v.stderr)) return (ipPath = p);
  }
  throw new Error('iproute2 `ip` not found in the chroot (/usr/sbin/ip)');
}

function ip(args: string[], input?: string): string {
  const r = spawnSync(ipBin(), args, { encoding: 'utf8', input });
  if (r.status !== 0) {
    const what = input ? `${args.join(' ')} <<< ${JSON.stringify(input)}` : args.join(' ');
    throw new Error(`ip ${what} exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Runs `ip` commands (one per line, without the `ip`) in one process, in netns `ns` if given. */
function batch(lines: string[], ns?: string): void {
  ip([...(ns ? ['-n', ns] : []), '-batch', '-'], `${lines.join('\n')}\n`);
}

/** Every link of the root namespace (or of `ns`), with details, by name. */
function links(ns?: string): Map<string, Link> {
  const list = JSON.parse(ip([...(ns ? ['-n', ns] : []), '-j', '-d', 'link', 'show'])) as Link[];
  return new Map(list.map((l) => [l.ifname, l]));
}

interface Rule {
  priority: number;
  table: string;
}

function get(all: Map<string, Link>, name: string): Link {
  const l = all.get(name);
  assert.ok(l, `link ${name} exists`);
  return l;
}

function netnsNames(): string[] {
  const out = ip(['-j', 'netns', 'list']).trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

/** Best-effort teardown (leftovers of a killed run, then what a failed test left): one process. */
function teardown(): void {
  const lines = [...ALL].reverse().map((name) => `link del dev ${name}`);
  const input = `${lines.join('\n')}\nnetns del ${NS}\n`;
  spawnSync(ipBin(), ['-force', '-batch', '-'], { input, stdio: ['pipe', 'ignore', 'ignore'] });
}

/** A test that fails at once, touching nothing, outside the VM (this file creates links as root). */
function vmTest(name: string, fn: (t: TestContext) => void): void {
  test(name, (t) => {
    assert.ok(IN_VM, NOT_IN_VM);
    fn(t);
  });
}

before(() => IN_VM && teardown());
after(() => IN_VM && teardown());

vmTest('runs inside the plexus test VM, on a kernel with the features', (t) => {
  assert.equal(process.getuid?.(), 0, 'root inside the VM');
  assert.equal(process.env.NODE_EXTRA_CA_CERTS, undefined, 'NODE_EXTRA_CA_CERTS unset in the VM');
  // Debian's 6.1 kernel: the host's kernel lacks these modules, so a host kernel here is a bug.
  assert.match(release(), /^6\.1\.0-\d+-amd64$/, `kernel ${release()}`);
  const version = readFileSync('/proc/version', 'utf8');
  assert.match(version, /Debian/, version);
  const uptime = readFileSync('/proc/uptime', 'utf8').split(' ')[0];
  t.diagnostic(`kernel ${release()}, kernel uptime at the first test: ${uptime} s`);
});

vmTest('creates a network namespace', () => {
  ip(['netns', 'add', NS]);
  assert.ok(netnsNames().includes(NS), `${NS} in ip netns list`);
  assert.ok(existsSync(`/run/netns/${NS}`), `/run/netns/${NS} exists`);
  assert.deepEqual([...links(NS).keys()], ['lo'], 'a fresh namespace holds only lo');
});

vmTest('creates a dummy link', () => {
  ip(['link', 'add', 'name', DUMMY, 'up', 'type', 'dummy']);
  const l = get(links(), DUMMY);
  assert.equal(l.linkinfo?.info_kind, 'dummy');
  assert.ok(l.flags?.includes('UP'), 'dummy is up');
});

for (const [name, mode] of [
  [IPV_L2, 'l2'],
  [IPV_L3, 'l3'],
] as const) {
  vmTest(`creates an ipvlan link in mode ${mode} on the dummy`, () => {
    ip(['link', 'add', name, 'link', DUMMY, 'type', 'ipvlan', 'mode', mode]);
    const l = get(links(), name);
    assert.equal(l.linkinfo?.info_kind, 'ipvlan');
    assert.equal(l.linkinfo?.info_data?.mode, mode);
    assert.equal(l.link, DUMMY);
  });
}

vmTest('creates an 802.1Q vlan sub-interface on the dummy', () => {
  ip(['link', 'add', 'link', DUMMY, 'name', VLAN, 'type', 'vlan', 'id', String(VLAN_ID)]);
  const l = get(links(), VLAN);
  assert.equal(l.linkinfo?.info_kind, 'vlan');
  assert.equal(l.linkinfo?.info_data?.protocol, '802.1Q');
  assert.equal(l.linkinfo?.info_data?.id, VLAN_ID);
  assert.equal(l.link, DUMMY);
});

vmTest('creates macvlan, veth and bridge links', () => {
  batch([
    `link add ${DUMMY2} type dummy`,
    `link add ${MACV} link ${DUMMY2} type macvlan mode bridge`,
    `link add ${VETH_A} type veth peer name ${VETH_B}`,
    `link add ${BRIDGE} type bridge`,
    `link set ${VETH_B} master ${BRIDGE}`,
  ]);
  const all = links();
  assert.equal(get(all, MACV).linkinfo?.info_kind, 'macvlan');
  assert.equal(get(all, MACV).linkinfo?.info_data?.mode, 'bridge');
  assert.equal(get(all, VETH_A).linkinfo?.info_kind, 'veth');
  assert.equal(get(all, BRIDGE).linkinfo?.info_kind, 'bridge');
  assert.equal(get(all, VETH_B).linkinfo?.info_slave_kind, 'bridge');
});

vmTest('moves the l3 ipvlan and the vlan into the namespace, routes there by policy', () => {
  batch([`link set ${IPV_L3} netns ${NS}`, `link set ${VLAN} netns ${NS}`]);
  const root = links();
  assert.equal(root.has(IPV_L3), false, `${IPV_L3} left the root namespace`);
  assert.equal(root.has(VLAN), false, `${VLAN} left the root namespace`);

  const inNs = links(NS);
  const v = get(inNs, IPV_L3);
  assert.equal(v.linkinfo?.info_kind, 'ipvlan');
  assert.equal(v.linkinfo?.info_data?.mode, 'l3');
  assert.equal(typeof v.link_netnsid, 'number', 'its lower link is in another namespace');
  assert.equal(get(inNs, VLAN).linkinfo?.info_data?.id, VLAN_ID);

  batch(
    [
      'link set lo up',
      `addr add 192.0.2.10/24 dev ${IPV_L3}`,
      `link set ${IPV_L3} up`,
      `route add 198.51.100.0/24 dev ${IPV_L3} table 100`,
      'rule add from 192.0.2.10 table 100 priority 100',
      `addr add 2001:db8::10/64 dev ${IPV_L3} nodad`,
      `route add 2001:db8:1::/64 dev ${IPV_L3} table 100`,
    ],
    NS,
  );
  // `ip rule` takes the family from -6, not from the address.
  ip(['-n', NS, '-6', 'rule', 'add', 'from', '2001:db8::10', 'table', '100', 'priority', '100']);
  const addrs = JSON.parse(ip(['-n', NS, '-j', 'addr', 'show', 'dev', IPV_L3])) as {
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
  const v4 = addrs[0]?.addr_info.filter((a) => a.family === 'inet') ?? [];
  assert.deepEqual(
    v4.map((a) => `${a.local}/${a.prefixlen}`),
    ['192.0.2.10/24'],
  );
  for (const family of ['-4', '-6']) {
    const rules = JSON.parse(ip(['-n', NS, family, '-j', 'rule', 'show'])) as Rule[];
    assert.ok(
      rules.some((r) => r.priority === 100 && r.table === '100'),
      `${family} policy rule in the namespace: ${JSON.stringify(rules)}`,
    );
  }
});

vmTest('cleans up: links and namespace are gone', () => {
  // Deleting a lower dummy takes its ipvlan/vlan/macvlan uppers with it, in every namespace.
  batch([`link del dev ${DUMMY}`, `link del dev ${DUMMY2}`, `link del dev ${VETH_A}`, `link del dev ${BRIDGE}`]);
  const root = links();
  for (const name of ALL) assert.equal(root.has(name), false, `${name} deleted`);
  const inNs = links(NS);
  assert.equal(inNs.has(IPV_L3), false, `${IPV_L3} went with its lower link`);
  assert.equal(inNs.has(VLAN), false, `${VLAN} went with its lower link`);
  ip(['netns', 'del', NS]);
  assert.equal(netnsNames().includes(NS), false, `${NS} deleted`);
  assert.equal(existsSync(`/run/netns/${NS}`), false);
});
