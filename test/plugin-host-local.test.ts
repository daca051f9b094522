// Differential tests: plexus's host-local (dist/bin/host-local) against Debian's reference
// /usr/lib/cni/host-local (containernetworking-plugins 1.1.1). Each scenario runs the same calls
// with the same configuration against two stores, one per binary; after every call both must
// have answered the same (exit status, result or error code and message) and both stores must
// hold the same files, byte for byte, with the same modes.
import { test, type TestContext as T } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/host';
import { IPAM_BINS, ipamCall, outcome, storeTree, type IpamCall } from './helpers/ipam';
import type { JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';

const { ref: REF, ours: OURS } = IPAM_BINS['host-local'];

interface Step extends IpamCall {
  /** merged into the top level of the configuration (runtimeConfig, args, cniVersion ...) */
  top?: JsonObject;
  /** merged into its ipam object */
  ipam?: JsonObject;
}

function conf(dataDir: string, base: JsonObject, s: Step): string {
  const ipam = { type: 'host-local', dataDir, ...(base.ipam as JsonObject), ...(s.ipam ?? {}) };
  return JSON.stringify({ cniVersion: '1.0.0', name: 'net1', type: 'bridge', ...base, ...(s.top ?? {}), ipam });
}

async function differential(t: T, base: JsonObject, steps: Step[]): Promise<void> {
  requireBuild();
  const a = tempDir(t, 'pxhl-ref-');
  const b = tempDir(t, 'pxhl-ours-');
  for (const [i, s] of steps.entries()) {
    const what = `step ${i}: ${s.command} ${s.id ?? 'c1'}/${s.ifname ?? 'eth0'}${s.args ? ` ${s.args}` : ''}`;
    const want = await ipamCall(REF, s, conf(a, base, s));
    const got = await ipamCall(OURS, s, conf(b, base, s));
    assert.deepEqual(outcome(got), outcome(want), `${what}: answer (stderr: ${got.stderr})`);
    assert.deepEqual(storeTree(b), storeTree(a), `${what}: store`);
  }
}

const add = (id: string, more: Partial<Step> = {}): Step => ({ command: 'ADD', id, ...more });
const del = (id: string, more: Partial<Step> = {}): Step => ({ command: 'DEL', id, ...more });
const check = (id: string, more: Partial<Step> = {}): Step => ({ command: 'CHECK', id, ...more });

test('IPv4 /29: fill, exhaust, release, round-robin on from the last reserved, DEL twice, CHECK', async (t) => {
  await differential(t, { ipam: { subnet: '10.77.0.0/29', routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.9.0/24', gw: '10.77.0.6' }] } }, [
    ...['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => add(id)),
    check('c'),
    check('zz'),
    del('b'),
    del('b'),
    del('d'),
    add('h'),
    add('i'),
    add('j'),
    add('a'),
    add('a', { ifname: 'eth1' }),
    del('a'),
    check('a', { ifname: 'eth1' }),
    del('a', { ifname: 'eth1' }),
    add('k'),
  ]);
});

test('IPv6 and IPv4 with rangeStart, rangeEnd and gateway inside the range', async (t) => {
  await differential(t, { cniVersion: '0.4.0', ipam: { ranges: [[{ subnet: 'fd00:77::/64', rangeStart: 'fd00:77::ffff:fffe', rangeEnd: 'fd00:77::1:0:3', gateway: 'fd00:77::1:0:1' }], [{ subnet: '10.78.0.0/24', rangeStart: '10.78.0.250', gateway: '10.78.0.252' }]] } }, [
    ...['a', 'b', 'c', 'd', 'e'].map((id) => add(id)),
    del('c'),
    add('f'),
    add('g'),
    del('a'),
    add('h'),
  ]);
});

test('IPv6 /48: allocation runs across a /64 boundary', async (t) => {
  await differential(t, { ipam: { ranges: [[{ subnet: 'fd00:7a::/48', rangeStart: 'fd00:7a:0:1:ffff:ffff:ffff:fffe', rangeEnd: 'fd00:7a:0:2::1' }]] } }, [
    ...['a', 'b', 'c', 'd', 'e'].map((id) => add(id)),
    del('b'),
    add('f'),
  ]);
});

test('one range set of several ranges: order, wrap-around, another range gateway not skipped', async (t) => {
  await differential(t, { cniVersion: '0.3.1', ipam: { ranges: [[{ subnet: '10.79.1.0/24', rangeStart: '10.79.1.10', rangeEnd: '10.79.1.12' }, { subnet: '10.79.0.0/24', rangeStart: '10.79.0.1', rangeEnd: '10.79.0.3', gateway: '10.79.1.11' }]] } }, [
    ...['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => add(id)),
    del('a'),
    del('e'),
    add('h'),
    add('i'),
    add('j'),
  ]);
});

test('requested IPs: CNI_ARGS IP, args.cni.ips, runtimeConfig.ips, gateway, taken, outside, several', async (t) => {
  const dual = { ipam: { ranges: [[{ subnet: '10.80.0.0/24' }], [{ subnet: 'fd00:80::/120' }]] } };
  await differential(t, dual, [
    add('a', { args: 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.80.0.50' }),
    add('b', { top: { args: { cni: { ips: ['fd00:80::7', '10.80.0.51/24'] } } } }),
    add('c', { top: { runtimeConfig: { ips: ['10.80.0.50'] } } }),
    add('c', { top: { runtimeConfig: { ips: ['10.80.0.1'] } } }),
    add('c', { top: { runtimeConfig: { ips: ['10.81.0.9'] } } }),
    // (two for one range set would make the reference pick one at random: Go map order)
    add('c', { top: { runtimeConfig: { ips: ['10.80.0.52', '10.99.0.1'] } } }),
    add('c', { top: { runtimeConfig: { ips: ['fd00:80::9'] } }, args: 'IP=10.80.0.61' }),
    add('d'),
    add('d'),
    del('a'),
    add('e', { args: 'IP=10.80.0.50' }),
    add('f', { args: 'IP=' }),
    add('g', { args: 'FOO=bar' }),
    add('g', { args: 'IP=10.80.0.300' }),
    add('g', { args: 'IgnoreUnknown=maybe' }),
    add('g', { args: 'IP' }),
    add('g', { top: { runtimeConfig: { ips: ['nonsense'] } } }),
  ]);
});

test('legacy flat subnet, ranges and runtimeConfig.ipRanges combined; resolvConf', async (t) => {
  const dir = tempDir(t, 'pxhl-resolv-');
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, '# comment\nnameserver 10.0.0.53\n; other\nnameserver fd00::53\ndomain example.org\nsearch a.example b.example\noptions ndots:2 rotate\nbogus\n');
  await differential(t, { ipam: { subnet: '10.82.0.0/30', ranges: [[{ subnet: 'fd00:82::/126' }]], resolvConf: resolv } }, [
    add('a'),
    add('b'),
    add('c', { top: { runtimeConfig: { ipRanges: [[{ subnet: '10.83.0.0/30' }]] } } }),
    add('d', { ipam: { resolvConf: join(dir, 'absent') } }),
    del('a'),
    del('c', { top: { runtimeConfig: { ipRanges: [[{ subnet: '10.83.0.0/30' }]] } } }),
    add('e'),
  ]);
});

test('stores written before 0.7 (container ID alone): matched by DEL, CHECK and the duplicate check', async (t) => {
  // both stores get the same old-format file before the first call
  const base = { ipam: { subnet: '10.84.0.0/29' } };
  const steps: Step[] = [add('old'), check('old'), del('old'), check('old'), add('old')];
  requireBuild();
  const a = tempDir(t, 'pxhl-ref-');
  const b = tempDir(t, 'pxhl-ours-');
  for (const d of [a, b]) {
    mkdirSync(join(d, 'net1'), { recursive: true });
    writeFileSync(join(d, 'net1', '10.84.0.5'), 'old\n');
  }
  for (const [i, s] of steps.entries()) {
    const want = await ipamCall(REF, s, conf(a, base, s));
    const got = await ipamCall(OURS, s, conf(b, base, s));
    assert.deepEqual(outcome(got), outcome(want), `step ${i}`);
    assert.deepEqual(storeTree(b), storeTree(a), `step ${i}: store`);
  }
});

// Configurations both refuse. Messages are the reference's, except where Go's JSON decoder
// reports a wrong JSON type in its own words: plexus names the field instead (same code).
const BAD: { name: string; top?: JsonObject; ipam?: JsonObject | null; sameMsg?: false; field?: string }[] = [
  { name: 'no ipam', ipam: null },
  { name: 'no ranges', ipam: {} },
  { name: 'subnet not a CIDR', ipam: { subnet: '10.0.0.0/33' } },
  { name: 'subnet with host bits', ipam: { subnet: '10.0.0.1/24' } },
  { name: 'IPv4 /31', ipam: { subnet: '10.0.0.0/31' } },
  { name: 'IPv6 /127', ipam: { ranges: [[{ subnet: 'fd00::/127' }]] } },
  { name: 'rangeStart not an IP', ipam: { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.x' }]] } },
  { name: 'rangeStart outside', ipam: { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.1' }]] } },
  { name: 'rangeEnd before rangeStart', ipam: { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.8' }]] } },
  { name: 'rangeStart of the other family', ipam: { ranges: [[{ subnet: '10.0.0.0/24', rangeStart: 'fd00::1' }]] } },
  { name: 'overlap inside a set', ipam: { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/25' }]] } },
  { name: 'overlap across sets', ipam: { ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] } },
  { name: 'mixed families in a set', ipam: { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] } },
  { name: 'empty range set', ipam: { ranges: [[]] } },
  { name: 'range without subnet', ipam: { ranges: [[{ rangeStart: '10.0.0.1' }]] } },
  { name: 'bad route dst', ipam: { subnet: '10.0.0.0/24', routes: [{ dst: 'nope' }] } },
  { name: 'subnet a number', ipam: { subnet: 5 }, sameMsg: false, field: 'ipam.subnet' },
  { name: 'dataDir a list', ipam: { subnet: '10.0.0.0/24', dataDir: ['x'] }, sameMsg: false, field: 'ipam.dataDir' },
];

test('bad configurations: the same code and message, nothing stored', async (t) => {
  requireBuild();
  for (const c of BAD) {
    const a = tempDir(t, 'pxhl-ref-');
    const b = tempDir(t, 'pxhl-ours-');
    const mk = (d: string) => {
      const o: JsonObject = { cniVersion: '1.0.0', name: 'net1', type: 'bridge', ...(c.top ?? {}) };
      if (c.ipam !== null) o.ipam = { type: 'host-local', dataDir: d, ...(c.ipam ?? {}) };
      return JSON.stringify(o);
    };
    for (const command of ['ADD', 'DEL', 'CHECK'] as const) {
      const want = outcome(await ipamCall(REF, { command }, mk(a)));
      const got = outcome(await ipamCall(OURS, { command }, mk(b)));
      assert.equal(got.status, 1, `${c.name} ${command}: plexus fails`);
      assert.equal(want.status, 1, `${c.name} ${command}: the reference fails`);
      const g = got.out as JsonObject;
      const w = want.out as JsonObject;
      assert.equal(g.code, w.code, `${c.name} ${command}: code`);
      if (c.sameMsg === false) assert.match(String(g.msg), new RegExp(`^${c.field?.replace('.', '\\.')}: `), `${c.name}: names the field`);
      else assert.equal(g.msg, w.msg, `${c.name} ${command}: message`);
      assert.deepEqual(storeTree(b), {}, `${c.name} ${command}: nothing stored`);
    }
  }
});
