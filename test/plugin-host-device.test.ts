// The built-in host-device against the reference binary (/usr/lib/cni/host-device, v1.1.1), both
// run exactly as a runtime runs them, each in a world of its own: a private "host" namespace (the
// plugin runs inside it through `ip netns exec`, which also mounts a sysfs of that namespace, so a
// kernelpath names the test's device and nothing of the real host), a container namespace, and a
// veth pair whose end, with the same name, MAC and MTU in both worlds, plays the host device. The
// peer stays down: without carrier no IPv6 link-local address or DAD appears, so both worlds
// settle the same way and the snapshots compare exactly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ip, netns, tempDir, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { cni, diffSnapshots, Normaliser, snapshot, type CniRun, type Json, type JsonObject } from './helpers/oracle';
import { PLEXUS, REFERENCE_PLUGINS, requireBuild } from './helpers/plexus';

requireBuild();

const MAC = '02:68:64:00:00:01';
const NET = 'hostdev-net';
const SUBNET = '10.231.0.0/24';
const IFNAME = 'net1';

interface World {
  label: 'reference' | 'plexus';
  host: string;
  ct: string;
  ctPath: string;
  bin: string;
  dataDir: string;
}

function world(t: TestContext, label: World['label'], dev: string): World {
  const host = netns(t, 'hdh');
  const ct = netns(t, 'hdc');
  // "zpeer" sorts after "lo", so /sys/devices/virtual/net in this namespace lists dev first.
  ip('-n', host.name, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'zpeer');
  ip('-n', host.name, 'link', 'set', dev, 'address', MAC, 'mtu', '1400', 'up');
  const dir = tempDir(t, 'plexus-hd-');
  const real = label === 'reference' ? join(REFERENCE_PLUGINS, 'host-device') : join(dirname(PLEXUS), 'host-device');
  const bin = join(dir, 'host-device');
  writeFileSync(bin, `#!/bin/sh\nexec ip netns exec ${host.name} ${real}\n`);
  chmodSync(bin, 0o755);
  return { label, host: host.name, ct: ct.name, ctPath: ct.path, bin, dataDir: join(dir, 'ipam') };
}

function worlds(t: TestContext): { dev: string; ref: World; ours: World; both: World[] } {
  const dev = uniq('hd');
  const ref = world(t, 'reference', dev);
  const ours = world(t, 'plexus', dev);
  return { dev, ref, ours, both: [ref, ours] };
}

function conf(w: World, selector: JsonObject, o: { ipam?: boolean; version?: string; extra?: JsonObject; routes?: JsonObject[] } = {}): string {
  const c: JsonObject = { cniVersion: o.version ?? '1.0.0', name: NET, type: 'host-device', ...selector, ...o.extra };
  if (o.ipam !== false) {
    // Routes name their gateway: reference v1.1.1's CHECK cannot find a route installed through
    // the range's gateway when the result route has none (see the CHECK test below).
    const routes = o.routes ?? [{ dst: '10.232.0.0/16', gw: '10.231.0.1' }, { dst: '0.0.0.0/0', gw: '10.231.0.1' }];
    c.ipam = { type: 'host-local', dataDir: w.dataDir, ranges: [[{ subnet: SUBNET, gateway: '10.231.0.1' }]], routes };
  }
  return JSON.stringify(c);
}

function run(w: World, command: string, stdin: string, netnsPath = w.ctPath): Promise<CniRun> {
  return cni(w.bin, { command, containerId: 'ctr-hostdev', netns: netnsPath, ifname: IFNAME, stdin });
}

function ok(w: World, r: CniRun): CniRun {
  assert.equal(r.status, 0, `${w.label} failed: ${r.stdout}${r.stderr}`);
  return r;
}

/** A result with the world's namespace path and libcni's empty 1.x "dns": {} taken out. */
function result(w: World, r: CniRun): Json {
  const out: JsonObject = { ...ok(w, r).out };
  const dns = out.dns;
  const legacy = String(out.cniVersion).startsWith('0.');
  if (!legacy && dns && typeof dns === 'object' && !Array.isArray(dns) && Object.keys(dns).length === 0) delete out.dns;
  return new Normaliser({ literals: { [w.ctPath]: '<netns>' }, keepMacs: [MAC] }).value(out);
}

async function diff(a: string, b: string): Promise<string[]> {
  const n = (): Normaliser => new Normaliser({ keepMacs: [MAC] });
  return diffSnapshots(n().snapshot(await snapshot(a)), n().snapshot(await snapshot(b)));
}

interface IpLink {
  ifname: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  ifalias?: string;
}

function links(ns: string): IpLink[] {
  return JSON.parse(ip('-n', ns, '-j', 'link', 'show')) as IpLink[];
}

function link(ns: string, name: string): IpLink | undefined {
  return links(ns).find((l) => l.ifname === name);
}

/** Polls the kernel's own state until cond holds (namespace teardown is asynchronous). */
async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// plugins/common/ifconfig.ts turns on arp_notify on every interface it addresses, so the kernel
// announces the addresses on link-up too; reference v1.1.1 leaves it off.
const ARP_NOTIFY = `net/ipv4/conf/${IFNAME}/arp_notify: "0" → "1"`;

const withPrev = (stdin: string, prev: JsonObject | undefined): string => JSON.stringify({ ...(JSON.parse(stdin) as JsonObject), prevResult: prev ?? null });

test('by device name with host-local: same result and container state; CHECK passes, fails after tampering; DEL gives the device back', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  const adds = new Map<World, CniRun>();
  for (const w of both) adds.set(w, await run(w, 'ADD', conf(w, { device: dev })));
  assert.deepEqual(result(ours, adds.get(ours)!), result(ref, adds.get(ref)!));
  assert.deepEqual(await diff(ref.ct, ours.ct), [ARP_NOTIFY]);
  // Not only equal: right. Renamed, original name in the alias, same MAC and MTU, up, addressed.
  const moved = link(ours.ct, IFNAME);
  assert.deepEqual([moved?.address, moved?.mtu, moved?.ifalias, moved?.flags?.includes('UP')], [MAC, 1400, dev, true]);
  assert.equal(link(ours.host, dev), undefined);
  assert.match(ip('-n', ours.ct, 'addr', 'show', 'dev', IFNAME), /inet 10\.231\.0\.2\/24/);
  assert.match(ip('-n', ours.ct, 'route', 'show'), /default via 10\.231\.0\.1 dev net1/);
  assert.deepEqual(reservedIps(ours.dataDir, NET), ['10.231.0.2']);

  const check = (w: World): Promise<CniRun> => run(w, 'CHECK', withPrev(conf(w, { device: dev }), adds.get(w)?.out));
  for (const w of both) ok(w, await check(w));
  for (const [what, tamper, repair] of [
    ['route removed', ['route', 'del', '10.232.0.0/16'], ['route', 'add', '10.232.0.0/16', 'via', '10.231.0.1']],
    // Last: taking the address away takes the routes through its subnet with it.
    ['address removed', ['addr', 'del', '10.231.0.2/24', 'dev', IFNAME], ['addr', 'add', '10.231.0.2/24', 'dev', IFNAME]],
  ] as const) {
    const codes: (number | undefined)[] = [];
    for (const w of both) {
      ip('-n', w.ct, ...tamper);
      const r = await check(w);
      assert.notEqual(r.status, 0, `${w.label}: CHECK passed with the ${what}`);
      codes.push(r.code);
      ip('-n', w.ct, ...repair);
    }
    assert.deepEqual(codes, [999, 999], what);
  }

  for (const w of both) ok(w, await run(w, 'DEL', conf(w, { device: dev })));
  // Back under its original name, down as the reference leaves it (its state before is unknown).
  // The one difference: plexus clears the alias it set (as upstream host-device does since PR #1073).
  assert.deepEqual(await diff(ref.host, ours.host), [`link ${dev} .ifalias: "${dev}" → (absent)`]);
  const back = link(ours.host, dev);
  assert.deepEqual([back?.address, back?.mtu, back?.flags?.includes('UP'), back?.ifalias], [MAC, 1400, false, undefined]);
  assert.deepEqual(await diff(ref.ct, ours.ct), []);
  assert.deepEqual(links(ours.ct).map((l) => l.ifname), ['lo']);
  for (const w of both) assert.deepEqual(reservedIps(w.dataDir, NET), [], `${w.label} released the address`);

  // A repeated DEL (the runtime retries): plexus succeeds, the reference cannot find net1.
  ok(ours, await run(ours, 'DEL', conf(ours, { device: dev })));
  assert.equal((await run(ref, 'DEL', conf(ref, { device: dev }))).code, 999);
  assert.equal(link(ours.host, dev)?.address, MAC, 'a repeated DEL leaves the device alone');
});

test('by hwaddr at cniVersion 0.4.0: same result (legacy format) and state, ADD and DEL', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  const adds = new Map<World, CniRun>();
  for (const w of both) adds.set(w, await run(w, 'ADD', conf(w, { hwaddr: MAC.toUpperCase() }, { version: '0.4.0' })));
  const r = result(ours, adds.get(ours)!);
  assert.deepEqual(r, result(ref, adds.get(ref)!));
  assert.deepEqual((r as { ips?: JsonObject[] }).ips?.[0]?.version, '4');
  assert.deepEqual(await diff(ref.ct, ours.ct), [ARP_NOTIFY]);
  for (const w of both) ok(w, await run(w, 'DEL', conf(w, { hwaddr: MAC }, { version: '0.4.0' })));
  assert.deepEqual(await diff(ref.host, ours.host), [`link ${dev} .ifalias: "${dev}" → (absent)`]);
  assert.equal(link(ours.host, dev)?.address, MAC);
});

test('by kernelpath: the kernel device whose net/ lists it, as the reference; also the netdev folder itself (plexus only)', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  // What an operator gets from `readlink -f /sys/class/net/X`, inside the plugin's namespace.
  const own = ip('netns', 'exec', ours.host, 'readlink', '-f', `/sys/class/net/${dev}`).trim();
  assert.equal(own, `/sys/devices/virtual/net/${dev}`);
  const parent = dirname(dirname(own));
  const adds = new Map<World, CniRun>();
  for (const w of both) adds.set(w, await run(w, 'ADD', conf(w, { kernelpath: parent }, { ipam: false })));
  assert.deepEqual(result(ours, adds.get(ours)!), result(ref, adds.get(ref)!));
  assert.deepEqual(await diff(ref.ct, ours.ct), []);
  for (const w of both) ok(w, await run(w, 'DEL', conf(w, { kernelpath: parent }, { ipam: false })));
  assert.equal(link(ours.host, dev)?.address, MAC);

  const refOwn = await run(ref, 'ADD', conf(ref, { kernelpath: own }, { ipam: false }));
  assert.equal(refOwn.code, 999);
  assert.match(String(refOwn.out?.msg), /failed to find network devices/);
  ok(ours, await run(ours, 'ADD', conf(ours, { kernelpath: own }, { ipam: false })));
  assert.equal(link(ours.ct, IFNAME)?.ifalias, dev);
  ok(ours, await run(ours, 'DEL', conf(ours, { kernelpath: own }, { ipam: false })));
  assert.equal(link(ours.host, dev)?.address, MAC);
});

test('bad configs fail with the reference error code and move nothing', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  const cases: [string, JsonObject][] = [
    ['no selector', {}],
    ['unknown device', { device: 'nosuchdev0' }],
    ['relative kernelpath', { kernelpath: 'sys/devices/virtual' }],
    ['kernelpath outside /sys/devices', { kernelpath: '/sys/class/net' }],
    ['unparsable hwaddr', { hwaddr: 'zz' }],
    ['hwaddr no device has', { hwaddr: '02:00:00:00:00:99' }],
    ['PCI function that does not exist', { pciBusID: '0000:7f:1f.7' }],
    ['deviceID that does not exist', { runtimeConfig: { deviceID: '0000:7f:1f.7' } }],
  ];
  for (const [what, selector] of cases) {
    const codes: (number | undefined)[] = [];
    for (const w of both) codes.push((await run(w, 'ADD', conf(w, selector))).code);
    assert.deepEqual(codes, [999, 999], what);
  }
  // Two selectors: the reference silently takes "device"; plexus refuses the ambiguity (code 7).
  const two = { device: dev, hwaddr: '02:00:00:00:00:99' };
  assert.equal((await run(ours, 'ADD', conf(ours, two))).code, 7);
  for (const w of both) assert.equal(link(w.host, dev)?.address, MAC, `${w.label}: the device is still on the host`);
  ok(ref, await run(ref, 'ADD', conf(ref, two)));
  assert.equal(link(ref.ct, IFNAME)?.ifalias, dev);
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('a failing IPAM rolls the move back (the reference leaves the device in the container)', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  const bad = (w: World): string => conf(w, { device: dev }, { ipam: false, extra: { ipam: { type: 'host-local', dataDir: w.dataDir, ranges: [[{ subnet: 'not-a-subnet' }]] } } });
  const codes: (number | undefined)[] = [];
  for (const w of both) codes.push((await run(w, 'ADD', bad(w))).code);
  assert.equal(codes[1], codes[0]);
  assert.notEqual(codes[1], undefined);
  assert.equal(link(ref.ct, IFNAME)?.ifalias, dev, 'the reference leaks the device into the container');
  const back = link(ours.host, dev);
  assert.deepEqual([back?.address, back?.flags?.includes('UP'), back?.ifalias], [MAC, true, undefined], 'plexus: home, up as before, no alias');
  assert.deepEqual(links(ours.ct).map((l) => l.ifname), ['lo']);
});

test("the host device's name is taken in the container: plexus renames during the move, the reference fails", async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  for (const w of both) ip('-n', w.ct, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'ctpeer');
  assert.notEqual((await run(ref, 'ADD', conf(ref, { device: dev }))).status, 0);
  ok(ours, await run(ours, 'ADD', conf(ours, { device: dev })));
  assert.equal(link(ours.ct, IFNAME)?.address, MAC);
  // DEL cannot rename it back inside the container (the name is taken there): the kernel renames it
  // on the way out instead, and the container's own link of that name stays.
  ok(ours, await run(ours, 'DEL', conf(ours, { device: dev })));
  assert.equal(link(ours.host, dev)?.address, MAC);
  assert.notEqual(link(ours.ct, dev)?.address, MAC);
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('netns gone with a veth: the kernel destroys it; plexus DEL releases IPAM, the reference errors and leaks', async (t) => {
  const { ref, ours, both } = worlds(t);
  for (const w of both) ok(w, await run(w, 'ADD', conf(w, { hwaddr: MAC })));
  for (const w of both) {
    ip('netns', 'del', w.ct);
    // A virtual device is not handed back to the host: it dies with the namespace, its peer too.
    await until(`the veth of ${w.label} is destroyed`, () => link(w.host, 'zpeer') === undefined);
  }
  const r = await run(ref, 'DEL', conf(ref, { hwaddr: MAC }));
  assert.equal(r.code, 999);
  assert.match(String(r.out?.msg), /failed to open netns/);
  assert.deepEqual(reservedIps(ref.dataDir, NET), ['10.231.0.2'], 'the reference leaks the address');
  ok(ours, await run(ours, 'DEL', conf(ours, { hwaddr: MAC })));
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('CNI_NETNS empty: plexus DEL releases IPAM, the reference returns before IPAM DEL', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  for (const w of both) ok(w, await run(w, 'ADD', conf(w, { device: dev })));
  for (const w of both) ok(w, await run(w, 'DEL', conf(w, { device: dev }), ''));
  assert.deepEqual(reservedIps(ref.dataDir, NET), ['10.231.0.2'], 'the reference leaks the address');
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

// A physical device outlives its namespace: the kernel hands it back to the initial namespace under
// its container name ("dev<ifindex>" when that is taken), alias kept, down. No such device exists
// here (veth and macvlan die with the namespace, see above), so the hand-back is done by hand, into
// the plugin's host namespace, exactly as the kernel leaves it.
test('netns gone with a device handed back under its container name: plexus renames it back and releases IPAM', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  for (const w of both) {
    ok(w, await run(w, 'ADD', conf(w, { device: dev })));
    ip('-n', w.ct, 'link', 'set', IFNAME, 'netns', w.host);
    ip('netns', 'del', w.ct);
  }
  const r = await run(ref, 'DEL', conf(ref, { device: dev }));
  assert.equal(r.code, 999);
  assert.equal(link(ref.host, IFNAME)?.ifalias, dev, 'the reference leaves it under the container name');
  assert.deepEqual(reservedIps(ref.dataDir, NET), ['10.231.0.2']);

  ok(ours, await run(ours, 'DEL', conf(ours, { device: dev })));
  const back = link(ours.host, dev);
  assert.deepEqual([back?.address, back?.flags?.includes('UP'), back?.ifalias], [MAC, false, undefined]);
  assert.equal(link(ours.host, IFNAME), undefined);
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('netns gone, device handed back as dev<ifindex> (its container name was taken), selected by hwaddr', async (t) => {
  const { dev, ours } = worlds(t);
  ok(ours, await run(ours, 'ADD', conf(ours, { hwaddr: MAC })));
  // An unrelated host link already holds the container name, with an alias of its own.
  ip('-n', ours.host, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', 'other1');
  ip('-n', ours.host, 'link', 'set', IFNAME, 'alias', 'not-ours');
  const index = (JSON.parse(ip('-n', ours.ct, '-j', 'link', 'show', IFNAME)) as { ifindex: number }[])[0]?.ifindex;
  ip('-n', ours.ct, 'link', 'set', IFNAME, 'netns', ours.host, 'name', `dev${index}`);
  ip('netns', 'del', ours.ct);
  ok(ours, await run(ours, 'DEL', conf(ours, { hwaddr: MAC })));
  assert.deepEqual([link(ours.host, dev)?.address, link(ours.host, dev)?.ifalias], [MAC, undefined]);
  assert.equal(link(ours.host, `dev${index}`), undefined);
  assert.equal(link(ours.host, IFNAME)?.ifalias, 'not-ours', 'the unrelated link is untouched');
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('DEL refuses to clobber a host link that took the original name, and succeeds once it is gone', async (t) => {
  const { dev, ours } = worlds(t);
  ok(ours, await run(ours, 'ADD', conf(ours, { device: dev })));
  ip('-n', ours.host, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'squat1');
  const r = await run(ours, 'DEL', conf(ours, { device: dev }));
  assert.equal(r.code, 999);
  assert.match(String(r.out?.msg), /already has a link/);
  assert.equal(link(ours.ct, IFNAME)?.ifalias, dev, 'the device stays where DEL found it, for the retry');
  assert.deepEqual(reservedIps(ours.dataDir, NET), ['10.231.0.2'], 'and so does its address');
  ip('-n', ours.host, 'link', 'del', dev);
  ok(ours, await run(ours, 'DEL', conf(ours, { device: dev })));
  assert.equal(link(ours.host, dev)?.address, MAC);
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});

test('CHECK of a result route without a gateway: plexus passes (installed via the range gateway), reference v1.1.1 fails', async (t) => {
  const { dev, ours, both } = worlds(t);
  const stdin = (w: World): string => conf(w, { device: dev }, { routes: [{ dst: '10.232.0.0/16' }] });
  const prev = new Map<World, JsonObject | undefined>();
  for (const w of both) {
    prev.set(w, ok(w, await run(w, 'ADD', stdin(w))).out);
    assert.match(ip('-n', w.ct, 'route', 'show', '10.232.0.0/16'), /via 10\.231\.0\.1/);
  }
  const codes: (number | undefined)[] = [];
  for (const w of both) codes.push((await run(w, 'CHECK', withPrev(stdin(w), prev.get(w)))).code);
  assert.deepEqual(codes, [999, undefined]);
  // A gateway in prevResult is compared: one the route does not go through fails.
  const wrong = JSON.parse(JSON.stringify(prev.get(ours))) as { routes: JsonObject[] };
  wrong.routes[0]!.gw = '10.231.0.99';
  assert.equal((await run(ours, 'CHECK', withPrev(stdin(ours), wrong as unknown as JsonObject))).code, 999);
});

/**
 * Every link event the namespace ns sees while `during` runs (`ip monitor link`). Marker links
 * made before and after bound the window, so no sleep guesses when the monitor is listening.
 */
async function linkEvents(ns: string, during: () => Promise<void>): Promise<string> {
  const mon = spawn('ip', ['-n', ns, '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  mon.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const mark = async (m: string): Promise<void> => {
    ip('-n', ns, 'link', 'add', m, 'type', 'veth', 'peer', 'name', `${m}p`);
    await until(`the monitor in ${ns} saw ${m}`, () => out.includes(`: ${m}@`));
  };
  const [start, end] = [uniq('mk'), uniq('mk')];
  try {
    await mark(start);
    await during();
    await mark(end);
  } finally {
    mon.kill();
  }
  return out.slice(out.indexOf(`: ${start}@`), out.indexOf(`: ${end}@`));
}

test('the host never sees the device under a transient name, neither on ADD nor on DEL (why no temporary namespace)', async (t) => {
  const { dev, ours } = worlds(t);
  const add = await linkEvents(ours.host, async () => void ok(ours, await run(ours, 'ADD', conf(ours, { device: dev }))));
  const del = await linkEvents(ours.host, async () => void ok(ours, await run(ours, 'DEL', conf(ours, { device: dev }))));
  // ADD: the host sees it leave under its own name; DEL: it arrives under its own name.
  assert.match(add, new RegExp(`Deleted \\d+: ${dev}@`));
  assert.match(del, new RegExp(`\\d+: ${dev}@`));
  for (const events of [add, del]) assert.doesNotMatch(events, new RegExp(`: ${IFNAME}[@:]`));
});

test('ifname already taken in the container: plexus refuses before moving anything', async (t) => {
  const { dev, ref, ours, both } = worlds(t);
  for (const w of both) ip('-n', w.ct, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', 'ctpeer');
  const r = await run(ours, 'ADD', conf(ours, { device: dev }));
  assert.equal(r.code, 999);
  assert.equal(link(ours.host, dev)?.address, MAC, 'still on the host');
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
  // The reference moves it first and fails to rename it: the device is stranded in the container.
  assert.notEqual((await run(ref, 'ADD', conf(ref, { device: dev }))).status, 0);
  assert.equal(link(ref.ct, dev)?.address, MAC);
});

test('a DEL interrupted after the rename in the container is finished by the next DEL', async (t) => {
  const { dev, ours } = worlds(t);
  ok(ours, await run(ours, 'ADD', conf(ours, { device: dev })));
  // Where moveOut stops if the process dies between the rename and the move.
  ip('-n', ours.ct, 'link', 'set', IFNAME, 'down');
  ip('-n', ours.ct, 'link', 'set', IFNAME, 'name', dev);
  ok(ours, await run(ours, 'DEL', conf(ours, { device: dev })));
  assert.deepEqual([link(ours.host, dev)?.address, link(ours.host, dev)?.ifalias], [MAC, undefined]);
  assert.deepEqual(links(ours.ct).map((l) => l.ifname), ['lo']);
  assert.deepEqual(reservedIps(ours.dataDir, NET), []);
});
