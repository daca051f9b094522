// Addresses, routes, policy rules and neighbours against the real kernel, with `ip -j` as oracle.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { addAddr, delAddr, listAddrs } from '../src/netns/addrs';
import { NUD, RouteProtocol, RouteType, Scope } from '../src/netns/consts';
import { NetlinkError } from '../src/netns/errors';
import { createVeth, linkByName, setUp } from '../src/netns/links';
import { addNeighbour, delNeighbour, listNeighbours } from '../src/netns/neigh';
import { Netns } from '../src/netns/netns';
import { addRoute, delRoute, listRoutes, replaceRoute } from '../src/netns/routes';
import { addRule, delRule, listRules } from '../src/netns/rules';
import { ipJson, testNetns, threadNetns } from './netns-kit';

const original = threadNetns();
afterEach(() => assert.equal(threadNetns(), original, 'the thread is back in its own namespace'));

type T = Parameters<typeof testNetns>[0];

/** A namespace with an up veth pair l0/l1 carrying 10.5.0.1/24 and 2001:db8:5::1/64 on l0. */
function lab(t: T, addresses = true): { name: string; ns: Netns; l0: number; l1: number } {
  const n = testNetns(t);
  const ns = Netns.open(n.path);
  t.after(() => ns.close());
  createVeth(ns, 'l0', 'l1');
  const l0 = linkByName(ns, 'l0')?.index ?? 0;
  const l1 = linkByName(ns, 'l1')?.index ?? 0;
  setUp(ns, l0);
  setUp(ns, l1);
  if (addresses) {
    addAddr(ns, l0, '10.5.0.1/24');
    addAddr(ns, l0, '2001:db8:5::1/64', { nodad: true });
  }
  return { name: n.name, ns, l0, l1 };
}

interface IpAddrJson {
  ifindex: number;
  addr_info: Array<{ family: string; local: string; address?: string; prefixlen: number; broadcast?: string; label?: string; nodad?: boolean; tentative?: boolean; noprefixroute?: boolean }>;
}

test('addresses: IPv4 with computed broadcast, IPv6 with nodad, listed as ip lists them', (t) => {
  const { name, ns, l0 } = lab(t);
  const info = ipJson<IpAddrJson[]>(name, 'addr', 'show', 'dev', 'l0')[0]?.addr_info ?? [];
  const v4 = info.find((a) => a.local === '10.5.0.1');
  assert.deepEqual([v4?.prefixlen, v4?.broadcast, v4?.label], [24, '10.5.0.255', 'l0']);
  const v6 = info.find((a) => a.local === '2001:db8:5::1');
  assert.deepEqual([v6?.prefixlen, v6?.nodad, v6?.tentative], [64, true, undefined]);
  const ours = listAddrs(ns, { index: l0 });
  const theirs = info.map((a) => `${a.family === 'inet' ? 4 : 6} ${a.local}/${a.prefixlen}`).sort();
  assert.deepEqual(ours.map((a) => `${a.family} ${a.cidr}`).sort(), theirs);
  assert.deepEqual(listAddrs(ns, { family: 4 }).map((a) => a.cidr).sort(), ['10.5.0.1/24', '127.0.0.1/8']);
  const mine = ours.find((a) => a.address === '2001:db8:5::1');
  assert.equal(mine?.prefixLen, 64);
  assert.equal(mine?.scope, Scope.universe);
});

test('addresses: noprefixroute, duplicates, replace, delete and the kernel errors', (t) => {
  const { name, ns, l0 } = lab(t);
  addAddr(ns, l0, '10.6.0.1/16', { noPrefixRoute: true });
  const routes = ipJson<Array<{ dst: string }>>(name, 'route', 'show', 'dev', 'l0').map((r) => r.dst);
  assert.ok(routes.includes('10.5.0.0/24') && !routes.includes('10.6.0.0/16'));
  assert.throws(() => addAddr(ns, l0, '10.5.0.1/24'), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  addAddr(ns, l0, '10.5.0.1/24', { replace: true });
  delAddr(ns, l0, '10.5.0.1/24');
  delAddr(ns, l0, '2001:db8:5::1/64');
  const left = ipJson<IpAddrJson[]>(name, 'addr', 'show', 'dev', 'l0')[0]?.addr_info.map((a) => a.local) ?? [];
  assert.ok(!left.includes('10.5.0.1') && !left.includes('2001:db8:5::1'));
  // Newer kernels explain these; 6.1 (the VM's) only returns the errno.
  const explained = (text: string) => (e: NetlinkError) => e.extack === null || (e.extack === text && e.message.endsWith(`: ${text}`));
  assert.throws(() => delAddr(ns, l0, '10.5.0.1/24'), (e: unknown) => e instanceof NetlinkError && e.code === 'EADDRNOTAVAIL' && explained('ipv4: Address not found')(e));
  assert.throws(
    () => addAddr(ns, 99999, '10.9.0.1/24'),
    (e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV' && e.errno === 19 && explained('ipv4: Device not found')(e),
  );
});

test('addresses: a point-to-point peer is sent and read back', (t) => {
  const { name, ns, l1 } = lab(t, false);
  addAddr(ns, l1, '10.9.0.1/32', { peer: '10.9.0.2' });
  const a = ipJson<IpAddrJson[]>(name, 'addr', 'show', 'dev', 'l1')[0]?.addr_info.find((x) => x.local === '10.9.0.1');
  assert.equal(a?.address, '10.9.0.2');
  assert.equal(listAddrs(ns, { index: l1, family: 4 })[0]?.peer, '10.9.0.2');
});

interface IpRouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  prefsrc?: string;
  type?: string;
  metrics?: Array<{ mtu?: number }>;
}

const TABLES: Record<string, number> = { local: 255, main: 254, default: 253 };
function cidrOf(dst: string, family: 4 | 6): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
}

test('routes: what listRoutes returns is what ip route shows, in every table', (t) => {
  const { name, ns, l0 } = lab(t);
  addRoute(ns, { dst: '0.0.0.0/0', gateway: '10.5.0.254' });
  addRoute(ns, { dst: '10.6.0.0/16', gateway: '10.5.0.9', priority: 50, table: 100 });
  addRoute(ns, { dst: '10.8.0.0/16', oif: l0, table: 1000 });
  addRoute(ns, { dst: '2001:db8:6::/48', gateway: '2001:db8:5::fe', priority: 20 });
  for (const family of [4, 6] as const) {
    const links = new Map(ipJson<Array<{ ifname: string; ifindex: number }>>(name, 'link', 'show').map((l) => [l.ifname, l.ifindex]));
    const theirs = ipJson<IpRouteJson[]>(name, `-${family}`, 'route', 'show', 'table', 'all').map((r) =>
      [cidrOf(r.dst, family), r.gateway ?? null, r.dev ? links.get(r.dev) : 0, r.table ? (TABLES[r.table] ?? Number(r.table)) : 254].join(' '),
    );
    const ours = listRoutes(ns, { family }).map((r) => [r.dst, r.gateway, r.oif, r.table].join(' '));
    assert.deepEqual(ours.sort(), theirs.sort(), `IPv${family}`);
  }
  const def = listRoutes(ns, { family: 4, table: 254 }).find((r) => r.dst === '0.0.0.0/0');
  assert.deepEqual([def?.gateway, def?.oif, def?.protocol, def?.scope, def?.type], ['10.5.0.254', l0, RouteProtocol.boot, Scope.universe, RouteType.unicast]);
  assert.equal(listRoutes(ns, { table: 100 })[0]?.priority, 50);
  assert.equal(listRoutes(ns, { family: 6 }).find((r) => r.dst === '2001:db8:6::/48')?.priority, 20);
});

test('routes: dev routes default to link scope; src, MTU and advmss are sent', (t) => {
  const { name, ns, l0 } = lab(t);
  addRoute(ns, { dst: '10.7.0.1/32', oif: l0, src: '10.5.0.1', mtu: 1300, advmss: 1260 });
  const r = ipJson<IpRouteJson[]>(name, '-d', 'route', 'show', '10.7.0.1')[0];
  assert.deepEqual([r?.scope, r?.prefsrc, r?.protocol, r?.metrics?.[0]?.mtu], ['link', '10.5.0.1', 'boot', 1300]);
  const ours = listRoutes(ns, { oif: l0 }).find((x) => x.dst === '10.7.0.1/32');
  assert.deepEqual([ours?.scope, ours?.src, ours?.mtu, ours?.advmss], [Scope.link, '10.5.0.1', 1300, 1260]);
});

test('routes: EEXIST on a duplicate, replace overwrites, delete then ESRCH', (t) => {
  const { name, ns, l0 } = lab(t);
  addRoute(ns, { dst: '10.6.0.0/16', gateway: '10.5.0.9' });
  assert.throws(() => addRoute(ns, { dst: '10.6.0.0/16', gateway: '10.5.0.10' }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  replaceRoute(ns, { dst: '10.6.0.0/16', gateway: '10.5.0.10' });
  assert.equal(ipJson<IpRouteJson[]>(name, 'route', 'show', '10.6.0.0/16')[0]?.gateway, '10.5.0.10');
  replaceRoute(ns, { dst: '10.6.0.0/16', oif: l0, table: 300 }); // a new route in another table
  delRoute(ns, { dst: '10.6.0.0/16' });
  assert.deepEqual(ipJson(name, 'route', 'show', '10.6.0.0/16'), []);
  assert.throws(() => delRoute(ns, { dst: '10.6.0.0/16' }), { code: 'ESRCH' });
  delRoute(ns, { dst: '10.6.0.0/16', table: 300 });
  assert.throws(
    () => addRoute(ns, { dst: '10.9.0.0/16', gateway: '10.99.0.1' }),
    (e: unknown) => e instanceof NetlinkError && e.code === 'ENETUNREACH' && e.extack === 'Nexthop has invalid gateway',
  );
});

interface IpRuleJson {
  priority: number;
  src: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  table: string;
  iif?: string;
  oif?: string;
  fwmark?: string;
  fwmask?: string;
  not?: null | boolean;
}

test('rules: from/to prefixes, iif/oif, fwmark and tables, listed as ip lists them', (t) => {
  const { name, ns } = lab(t);
  addRule(ns, { src: '10.5.0.0/24', table: 100, priority: 1000 });
  addRule(ns, { family: 4, iifName: 'l0', oifName: 'l1', table: 101, priority: 1001 });
  addRule(ns, { dst: '10.8.0.5/32', fwmark: 0x10, fwmask: 0xff, table: 1000, priority: 1002, invert: true });
  addRule(ns, { src: '2001:db8:5::/64', table: 200, priority: 500 });
  const v4 = ipJson<IpRuleJson[]>(name, '-4', 'rule', 'show');
  const r1000 = v4.find((r) => r.priority === 1000);
  assert.deepEqual([r1000?.src, r1000?.srclen, r1000?.table], ['10.5.0.0', 24, '100']);
  const r1001 = v4.find((r) => r.priority === 1001);
  assert.deepEqual([r1001?.iif, r1001?.oif, r1001?.table], ['l0', 'l1', '101']);
  const r1002 = v4.find((r) => r.priority === 1002);
  assert.deepEqual([r1002?.dst, r1002?.fwmark, r1002?.fwmask, r1002?.table, 'not' in (r1002 ?? {})], ['10.8.0.5', '0x10', '0xff', '1000', true]);
  const ours = listRules(ns, 4);
  const theirs = v4.map((r) => [r.priority, r.src === 'all' ? null : `${r.src}/${r.srclen ?? 32}`, TABLES[r.table] ?? Number(r.table)].join(' '));
  assert.deepEqual(ours.map((r) => [r.priority, r.src, r.table].join(' ')), theirs);
  const mine = ours.find((r) => r.priority === 1002);
  assert.deepEqual([mine?.dst, mine?.fwmark, mine?.fwmask, mine?.invert, mine?.action], ['10.8.0.5/32', 0x10, 0xff, true, 'toTable']);
  assert.deepEqual(
    listRules(ns, 6).filter((r) => r.priority === 500).map((r) => [r.src, r.table]),
    [['2001:db8:5::/64', 200]],
  );
});

test('rules: EEXIST on a duplicate, delete then ENOENT', (t) => {
  const { name, ns } = lab(t);
  addRule(ns, { src: '10.5.0.7/32', table: 100, priority: 900 });
  assert.throws(() => addRule(ns, { src: '10.5.0.7/32', table: 100, priority: 900 }), (e: unknown) => e instanceof NetlinkError && e.code === 'EEXIST');
  delRule(ns, { src: '10.5.0.7/32', table: 100, priority: 900 });
  assert.equal(ipJson<IpRuleJson[]>(name, 'rule', 'show').find((r) => r.priority === 900), undefined);
  assert.throws(() => delRule(ns, { src: '10.5.0.7/32', table: 100 }), { code: 'ENOENT' });
});

interface IpNeighJson {
  dst: string;
  lladdr?: string;
  state?: string[];
}

test('neighbours: permanent entries are added, replaced, listed and deleted', (t) => {
  const { name, ns, l0 } = lab(t);
  addNeighbour(ns, { index: l0, ip: '10.5.0.7', mac: '02:00:00:00:00:07' });
  addNeighbour(ns, { index: l0, ip: '2001:db8:5::7', mac: '02:00:00:00:00:08' });
  const theirs = ipJson<IpNeighJson[]>(name, 'neigh', 'show', 'dev', 'l0');
  assert.deepEqual(theirs.find((n) => n.dst === '10.5.0.7'), { dst: '10.5.0.7', lladdr: '02:00:00:00:00:07', state: ['PERMANENT'] });
  const ours = listNeighbours(ns, { index: l0 }).filter((n) => n.state === NUD.PERMANENT);
  assert.deepEqual(ours.map((n) => `${n.ip} ${n.mac}`).sort(), ['10.5.0.7 02:00:00:00:00:07', '2001:db8:5::7 02:00:00:00:00:08']);
  addNeighbour(ns, { index: l0, ip: '10.5.0.7', mac: '02:00:00:00:00:09' }); // replace is the default
  assert.equal(ipJson<IpNeighJson[]>(name, 'neigh', 'show', '10.5.0.7')[0]?.lladdr, '02:00:00:00:00:09');
  assert.throws(() => addNeighbour(ns, { index: l0, ip: '10.5.0.7', mac: '02:00:00:00:00:0a', replace: false }), { code: 'EEXIST' });
  delNeighbour(ns, l0, '10.5.0.7');
  assert.equal(listNeighbours(ns, { family: 4 }).find((n) => n.ip === '10.5.0.7'), undefined);
  assert.throws(() => delNeighbour(ns, l0, '10.5.0.7'), { code: 'ENOENT' });
});
