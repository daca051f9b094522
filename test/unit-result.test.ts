// src/cni/result.ts against real reference-plugin output and libcni's converters
// (pkg/types/040, pkg/types/100: convertTo04x/convertFrom04x, shared types.Route).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../src/cni/errors';
import { attachIpamResult, convertResult, formatResult, parseIpamResult, parseResult } from '../src/cni/result';
import type { Result } from '../src/cni/types';

function throwsCni(fn: () => unknown, code: number, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `want CniError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

// Captured from Debian's containernetworking-plugins (/usr/lib/cni, libcni of the 1.0.0 era) run
// by hand: host-local with two ranges and two routes, bridge with isDefaultGateway in a netns.
const HOST_LOCAL_031 = `{
    "cniVersion": "0.3.1",
    "ips": [
        {
            "version": "4",
            "address": "10.99.0.2/24",
            "gateway": "10.99.0.1"
        },
        {
            "version": "6",
            "address": "fd00:99::2/64",
            "gateway": "fd00:99::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        },
        {
            "dst": "192.168.0.0/16",
            "gw": "10.99.0.254"
        }
    ],
    "dns": {}
}`;
const HOST_LOCAL_100 = `{
    "cniVersion": "1.0.0",
    "ips": [
        {
            "address": "10.99.0.4/24",
            "gateway": "10.99.0.1"
        },
        {
            "address": "fd00:99::4/64",
            "gateway": "fd00:99::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        },
        {
            "dst": "192.168.0.0/16",
            "gw": "10.99.0.254"
        }
    ],
    "dns": {}
}`;
const BRIDGE_040 = `{
    "cniVersion": "0.4.0",
    "interfaces": [
        {
            "name": "plxcapbr0",
            "mac": "e2:2f:b9:cd:4a:8c"
        },
        {
            "name": "veth01cb0154",
            "mac": "ea:37:fe:cd:df:f7"
        },
        {
            "name": "eth040",
            "mac": "d2:7c:4d:d3:e3:69",
            "sandbox": "/run/netns/plexuscap1"
        }
    ],
    "ips": [
        {
            "version": "4",
            "interface": 2,
            "address": "10.98.0.3/24",
            "gateway": "10.98.0.1"
        },
        {
            "version": "6",
            "interface": 2,
            "address": "fd00:98::3/64",
            "gateway": "fd00:98::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0",
            "gw": "10.98.0.1"
        },
        {
            "dst": "::/0",
            "gw": "fd00:98::1"
        }
    ],
    "dns": {}
}`;
const BRIDGE_100 = `{
    "cniVersion": "1.0.0",
    "interfaces": [
        {
            "name": "plxcapbr0",
            "mac": "e2:2f:b9:cd:4a:8c"
        },
        {
            "name": "vethb67aa689",
            "mac": "ee:57:cd:e8:5a:02"
        },
        {
            "name": "eth100",
            "mac": "92:11:2e:1c:c7:1b",
            "sandbox": "/run/netns/plexuscap1"
        }
    ],
    "ips": [
        {
            "interface": 2,
            "address": "10.98.0.4/24",
            "gateway": "10.98.0.1"
        },
        {
            "interface": 2,
            "address": "fd00:98::4/64",
            "gateway": "fd00:98::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0",
            "gw": "10.98.0.1"
        },
        {
            "dst": "::/0",
            "gw": "fd00:98::1"
        }
    ],
    "dns": {}
}`;

test('real bridge 0.4.0 output parses to the 1.x shape the spec describes', () => {
  const want: Result = {
    cniVersion: '0.4.0',
    interfaces: [
      { name: 'plxcapbr0', mac: 'e2:2f:b9:cd:4a:8c' },
      { name: 'veth01cb0154', mac: 'ea:37:fe:cd:df:f7' },
      { name: 'eth040', mac: 'd2:7c:4d:d3:e3:69', sandbox: '/run/netns/plexuscap1' },
    ],
    ips: [
      { address: '10.98.0.3/24', gateway: '10.98.0.1', interface: 2 },
      { address: 'fd00:98::3/64', gateway: 'fd00:98::1', interface: 2 },
    ],
    routes: [
      { dst: '0.0.0.0/0', gw: '10.98.0.1' },
      { dst: '::/0', gw: 'fd00:98::1' },
    ],
  };
  assert.deepEqual(parseResult(BRIDGE_040), want);
});

test('real 0.x output prints back byte for byte at its own version', () => {
  // libcni's 0.4.0 types print struct order and an always-present "dns"; so must we.
  for (const text of [HOST_LOCAL_031, BRIDGE_040]) {
    const r = parseResult(text);
    assert.equal(JSON.stringify(formatResult(r, r.cniVersion), null, 4), text);
  }
});

test('real 1.0.0 output prints back equal, with the empty dns omitted as libcni ≥1.1 prints it', () => {
  for (const text of [HOST_LOCAL_100, BRIDGE_100]) {
    const { dns, ...rest } = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(dns, {});
    assert.deepEqual(formatResult(parseResult(text), '1.0.0'), rest);
  }
});

test('1.x → 0.x adds ips[].version from the address; 0.x → 1.x removes it', () => {
  const down = formatResult(parseResult(BRIDGE_100), '0.3.1');
  assert.deepEqual(down.ips, [
    { version: '4', interface: 2, address: '10.98.0.4/24', gateway: '10.98.0.1' },
    { version: '6', interface: 2, address: 'fd00:98::4/64', gateway: 'fd00:98::1' },
  ]);
  assert.deepEqual(down.dns, {});
  assert.equal(down.cniVersion, '0.3.1');
  const up = formatResult(parseResult(BRIDGE_040), '1.1.0');
  assert.deepEqual(up.ips, [
    { interface: 2, address: '10.98.0.3/24', gateway: '10.98.0.1' },
    { interface: 2, address: 'fd00:98::3/64', gateway: 'fd00:98::1' },
  ]);
  assert.equal('dns' in up, false);
  // An IPv4-mapped address is "4" for libcni (Go's To4()).
  const mapped = formatResult({ cniVersion: '1.0.0', ips: [{ address: '::ffff:10.0.0.1/120' }] }, '0.4.0');
  assert.deepEqual(mapped.ips, [{ version: '4', address: '::ffff:10.0.0.1/120' }]);
});

test('round trips across every version pair keep what both versions can hold', () => {
  const versions = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
  const base = parseResult(BRIDGE_040);
  for (const a of versions) {
    for (const b of versions) {
      const viaA = parseResult(formatResult(base, a));
      const viaB = parseResult(formatResult(viaA, b));
      assert.deepEqual({ ...viaB, cniVersion: 'x' }, { ...base, cniVersion: 'x' }, `${a} → ${b}`);
      assert.equal(viaB.cniVersion, b);
    }
  }
});

const RICH_110 = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', mtu: 9000, sandbox: '/run/netns/x', socketPath: '/run/vhu.sock', pciID: '0000:03:00.1' }],
  ips: [{ address: '10.0.0.5/24', interface: 0 }],
  routes: [{ dst: '10.10.0.0/16', gw: '10.0.0.1', mtu: 1400, advmss: 1360, priority: 100, table: 0, scope: 0 }],
  dns: { nameservers: ['10.0.0.53'], domain: 'example.org', search: ['example.org'], options: ['ndots:2'] },
};

test('1.1-only interface fields: kept for 1.0.0, dropped for 0.x (libcni 040 Interface has none)', () => {
  const r = parseResult(RICH_110);
  assert.deepEqual(formatResult(r, '1.0.0').interfaces, RICH_110.interfaces);
  assert.deepEqual(formatResult(r, '0.4.0').interfaces, [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }]);
  // A 0.x result cannot carry them in: they are not fields of that version and are not read.
  const legacy = parseResult({ cniVersion: '0.4.0', interfaces: [{ name: 'a', mtu: 1500, pciID: 'p' }] });
  assert.deepEqual(legacy.interfaces, [{ name: 'a' }]);
});

test('route mtu/advmss/priority/table/scope survive every version (libcni shares types.Route)', () => {
  const r = parseResult(RICH_110);
  for (const v of ['0.3.0', '0.4.0', '1.0.0', '1.1.0']) {
    assert.deepEqual(formatResult(r, v).routes, RICH_110.routes, v);
  }
  // table 0 and scope 0 are values (Go pointers), mtu/advmss/priority 0 mean "unset" (omitempty).
  const zero = parseResult({ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', mtu: 0, advmss: 0, priority: 0, table: 0, scope: 0 }] });
  assert.deepEqual(zero.routes, [{ dst: '0.0.0.0/0', table: 0, scope: 0 }]);
});

test('dns: kept when set, empty parts dropped', () => {
  assert.deepEqual(formatResult(parseResult(RICH_110), '0.4.0').dns, RICH_110.dns);
  const r = parseResult({ cniVersion: '1.0.0', dns: { nameservers: [], domain: '', search: ['a'] } });
  assert.deepEqual(r.dns, { search: ['a'] });
  assert.equal(parseResult({ cniVersion: '1.0.0', dns: { nameservers: [] } }).dns, undefined);
});

test('addresses are canonicalised to what Go prints', () => {
  const r = parseResult({
    cniVersion: '1.0.0',
    ips: [{ address: '2001:DB8:0:0::0A/64', gateway: '2001:db8:0000::1' }],
    routes: [{ dst: '2001:db8::/32', gw: 'FE80::1' }],
  });
  assert.deepEqual(r.ips, [{ address: '2001:db8::a/64', gateway: '2001:db8::1' }]);
  assert.deepEqual(r.routes, [{ dst: '2001:db8::/32', gw: 'fe80::1' }]);
});

test('unknown top-level fields are kept and printed again; Go zero values are "unset"', () => {
  const r = parseResult({ cniVersion: '1.0.0', ips: [], interfaces: [{ name: 'eth0', mac: '', sandbox: '' }], 'org.example.meta': { a: 1 }, podIP: '10.1.1.1' });
  assert.deepEqual(r, { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], extra: { 'org.example.meta': { a: 1 }, podIP: '10.1.1.1' } });
  assert.deepEqual(formatResult(r, '1.1.0'), { cniVersion: '1.1.0', interfaces: [{ name: 'eth0' }], 'org.example.meta': { a: 1 }, podIP: '10.1.1.1' });
  // extra never overrides a known field
  assert.equal(formatResult({ cniVersion: '1.0.0', extra: { cniVersion: '9' } }, '1.0.0').cniVersion, '1.0.0');
});

test('cniVersion: missing means the config version (libcni fixupResultVersion), else code 1', () => {
  assert.equal(parseResult({ ips: [{ address: '10.0.0.2/24' }] }, { configVersion: '0.4.0' }).cniVersion, '0.4.0');
  assert.equal(parseResult({ cniVersion: '', ips: [] }, { configVersion: '1.0.0' }).cniVersion, '1.0.0');
  throwsCni(() => parseResult({ ips: [] }), 1, /^result\.cniVersion: missing/);
  throwsCni(() => parseResult({ cniVersion: '0.2.0', ip4: {} }, 'delegate macvlan result'), 1, /^delegate macvlan result\.cniVersion: "0\.2\.0"/);
  throwsCni(() => formatResult(parseResult(BRIDGE_100), '0.2.0'), 1, /"0\.2\.0"/);
});

test('invalid results: code 6 naming the field', () => {
  const v1 = (o: Record<string, unknown>) => ({ cniVersion: '1.0.0', ...o });
  const bad: [unknown, RegExp][] = [
    ['{not json', /^result: invalid JSON/],
    ['[1]', /^result: must be a JSON object/],
    [42, /^result: must be a JSON object/],
    [v1({ ips: [{ address: '10.1.2.300/24' }] }), /^result\.ips\[0\]\.address: "10\.1\.2\.300\/24" is not an address with prefix length/],
    [v1({ ips: [{ address: '10.1.2.3' }] }), /^result\.ips\[0\]\.address: "10\.1\.2\.3" is not an address with prefix/],
    [v1({ ips: [{ address: '10.1.2.3/33' }] }), /^result\.ips\[0\]\.address: /],
    [v1({ ips: [{ address: 7 }] }), /^result\.ips\[0\]\.address: must be a string/],
    [v1({ ips: [{}, { address: '10.0.0.1/8', gateway: '10.0.0' }] }), /^result\.ips\[0\]\.address: must be a string/],
    [v1({ ips: [{ address: '10.0.0.1/8', gateway: '10.0.0' }] }), /^result\.ips\[0\]\.gateway: "10\.0\.0" is not an IP address/],
    [v1({ ips: [{ address: '10.0.0.1/8', interface: 0 }] }), /^result\.ips\[0\]\.interface: index 0 is out of range: the result lists 0 interfaces/],
    [v1({ interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.1/8', interface: 1 }] }), /^result\.ips\[0\]\.interface: index 1 is out of range: the result lists 1 interface$/],
    [v1({ interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.1/8', interface: -1 }] }), /^result\.ips\[0\]\.interface: must be an integer from 0/],
    [v1({ interfaces: [{ name: 'a' }], ips: [{ address: '10.0.0.1/8', interface: 0.5 }] }), /^result\.ips\[0\]\.interface: must be an integer/],
    [v1({ interfaces: [{ mac: '02:00:00:00:00:01' }] }), /^result\.interfaces\[0\]\.name: must be a string/],
    [v1({ interfaces: [{ name: '' }] }), /^result\.interfaces\[0\]\.name: must not be empty/],
    [v1({ interfaces: [{ name: 'a', mac: '02:00:00:00:01' }] }), /^result\.interfaces\[0\]\.mac: "02:00:00:00:01" is not a hardware address/],
    [v1({ interfaces: [{ name: 'a', mtu: -1 }] }), /^result\.interfaces\[0\]\.mtu: must be an integer from 0 to 4294967295/],
    [v1({ interfaces: ['eth0'] }), /^result\.interfaces\[0\]: must be an object/],
    [v1({ interfaces: {} }), /^result\.interfaces: must be a list/],
    [v1({ routes: [{ dst: '10.0.0.0' }] }), /^result\.routes\[0\]\.dst: "10\.0\.0\.0" is not an address with prefix/],
    [v1({ routes: [{ dst: '10.0.0.0/8', gw: 'gw' }] }), /^result\.routes\[0\]\.gw: "gw" is not an IP address/],
    [v1({ routes: [{ dst: '10.0.0.0/8', scope: 256 }] }), /^result\.routes\[0\]\.scope: must be an integer from 0 to 255/],
    [v1({ routes: [{ dst: '10.0.0.0/8', table: 'main' }] }), /^result\.routes\[0\]\.table: must be an integer/],
    [v1({ dns: { nameservers: '10.0.0.53' } }), /^result\.dns\.nameservers: must be a list/],
    [v1({ dns: { search: ['a', 1] } }), /^result\.dns\.search\[1\]: must be a string/],
    [v1({ dns: [] }), /^result\.dns: must be an object/],
    [{ cniVersion: '0.4.0', ips: [{ version: '6', address: '10.0.0.1/8' }] }, /^result\.ips\[0\]\.version: is "6" but address 10\.0\.0\.1\/8 is IPv4/],
    [{ cniVersion: '0.3.1', ips: [{ version: 'v4', address: '10.0.0.1/8' }] }, /^result\.ips\[0\]\.version: must be "4" or "6", got "v4"/],
  ];
  for (const [input, re] of bad) throwsCni(() => parseResult(input), 6, re);
});

test('0.x version key is optional (libcni never required it) and ignored in 1.x results', () => {
  assert.deepEqual(parseResult({ cniVersion: '0.4.0', ips: [{ address: '10.0.0.1/8' }] }).ips, [{ address: '10.0.0.1/8' }]);
  assert.deepEqual(parseResult({ cniVersion: '1.0.0', ips: [{ version: '6', address: '10.0.0.1/8' }] }).ips, [{ address: '10.0.0.1/8' }]);
});

test('IPAM results: abbreviated, interfaces and indexes dropped; attachIpamResult points IPs at the plugin interface', () => {
  const ipam = parseIpamResult(HOST_LOCAL_031);
  const wantIpam: Result = {
    cniVersion: '0.3.1',
    ips: [
      { address: '10.99.0.2/24', gateway: '10.99.0.1' },
      { address: 'fd00:99::2/64', gateway: 'fd00:99::1' },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.99.0.254' }],
  };
  assert.deepEqual(ipam, wantIpam);
  // Some IPAM plugins add an index anyway; the reference plugins overwrite it, so do we.
  const odd = parseIpamResult({ cniVersion: '1.0.0', interfaces: [{ name: 'x' }], ips: [{ address: '10.0.0.2/24', interface: 3 }] });
  assert.deepEqual(odd, { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] });
  throwsCni(() => parseIpamResult({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 'x' }] }), 6, /^IPAM result\.ips\[0\]\.interface: must be an integer/);

  const ifaces = [{ name: 'eth1', mac: '02:00:00:00:00:01', sandbox: '/run/netns/p' }];
  const full = attachIpamResult(ipam, ifaces, 0);
  assert.deepEqual(full.interfaces, ifaces);
  assert.deepEqual(full.ips?.map((i) => i.interface), [0, 0]);
  assert.deepEqual(formatResult(full, '0.3.1').ips, [
    { version: '4', interface: 0, address: '10.99.0.2/24', gateway: '10.99.0.1' },
    { version: '6', interface: 0, address: 'fd00:99::2/64', gateway: 'fd00:99::1' },
  ]);
  assert.deepEqual(ipam, wantIpam, 'input untouched');
  assert.throws(() => attachIpamResult(ipam, ifaces, 1), CniError);
});

test('convertResult changes the version and drops what the target cannot hold', () => {
  const r = convertResult(parseResult(RICH_110), '0.4.0');
  assert.equal(r.cniVersion, '0.4.0');
  assert.deepEqual(r.interfaces, [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }]);
  assert.deepEqual(r.routes, RICH_110.routes);
});
