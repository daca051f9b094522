// src/delegates/status.ts against NPWG §5 (first sandbox interface, its IPs, minimal entry,
// default) and the NAD client's CreateNetworkStatus / SetNetworkStatus (plain IPs, mtu, gateway,
// four-space MarshalIndent entries joined by ",").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResult } from '../src/cni/result';
import type { NetworkStatus, Result } from '../src/cni/types';
import { formatNetworkStatus, nadStatusName, networkStatusEntry } from '../src/delegates/status';

// Real bridge (isDefaultGateway) output from the Debian reference plugin, see unit-result.test.ts.
const BRIDGE: Result = parseResult({
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'plxcapbr0', mac: 'e2:2f:b9:cd:4a:8c' },
    { name: 'vethb67aa689', mac: 'ee:57:cd:e8:5a:02' },
    { name: 'eth100', mac: '92:11:2e:1c:c7:1b', sandbox: '/run/netns/plexuscap1' },
  ],
  ips: [
    { interface: 2, address: '10.98.0.4/24', gateway: '10.98.0.1' },
    { interface: 2, address: 'fd00:98::4/64', gateway: 'fd00:98::1' },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.98.0.1' },
    { dst: '::/0', gw: 'fd00:98::1' },
  ],
  dns: {},
});

test('nadStatusName: ns/name (§5.3.1)', () => {
  assert.equal(nadStatusName('team-a', 'br-net'), 'team-a/br-net');
});

test('a real bridge result: first sandbox interface, its IPs without prefix, default-route gateways', () => {
  assert.deepEqual(networkStatusEntry({ name: 'team-a/br-net', isDefault: false, result: BRIDGE }), {
    name: 'team-a/br-net',
    interface: 'eth100',
    ips: ['10.98.0.4', 'fd00:98::4'],
    mac: '92:11:2e:1c:c7:1b',
    default: false,
    gateway: ['10.98.0.1', 'fd00:98::1'],
    'default-route': ['10.98.0.1', 'fd00:98::1'],
  });
});

test('which interface and which IPs (§5.3.2.1, §5.3.3.1)', () => {
  type Case = [string, Result, Pick<NetworkStatus, 'interface' | 'ips' | 'mac'>];
  const cases: Case[] = [
    [
      'host-side IPs are not the pod interface\'s',
      {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'veth0', mac: '02:00:00:00:00:0a' }, { name: 'eth1', mac: '02:00:00:00:00:0b', sandbox: '/ns' }],
        ips: [{ address: '169.254.1.1/32', interface: 0 }, { address: '10.0.0.7/24', interface: 1 }],
      },
      { interface: 'eth1', ips: ['10.0.0.7'], mac: '02:00:00:00:00:0b' },
    ],
    [
      'two sandbox interfaces: the first one (the NAD client takes the last)',
      {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'net1', sandbox: '/ns' }, { name: 'net2', sandbox: '/ns' }],
        ips: [{ address: '10.0.1.1/24', interface: 1 }, { address: '10.0.0.1/24', interface: 0 }],
      },
      { interface: 'net1', ips: ['10.0.0.1'] },
    ],
    [
      'no sandbox interface: the IPs without an index, no interface or mac',
      {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'host0', mac: '02:00:00:00:00:01' }],
        ips: [{ address: '10.0.0.9/24', interface: 0 }, { address: '10.0.9.9/24' }],
      },
      { ips: ['10.0.9.9'] },
    ],
    [
      'sandbox interface but no IP points at it: fall back to those without an index',
      {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'eth1', sandbox: '/ns' }],
        ips: [{ address: '2001:db8::5/64' }],
      },
      { interface: 'eth1', ips: ['2001:db8::5'] },
    ],
    ['an IPAM-like result with no interfaces', { cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24' }] }, { ips: ['10.0.0.2'] }],
    ['no IPs at all (e.g. a pure L2 attachment)', { cniVersion: '1.0.0', interfaces: [{ name: 'eth1', sandbox: '/ns' }] }, { interface: 'eth1' }],
  ];
  for (const [why, result, want] of cases) {
    const e = networkStatusEntry({ name: 'n', isDefault: false, result });
    assert.deepEqual({ interface: e.interface, ips: e.ips, mac: e.mac }, { interface: undefined, ips: undefined, mac: undefined, ...want }, why);
  }
});

test('gateway and default-route only for a real default route with a gateway', () => {
  const gw = (result: Result) => {
    const e = networkStatusEntry({ name: 'n', isDefault: true, result });
    assert.deepEqual(e.gateway, e['default-route']);
    return e.gateway;
  };
  const iface = [{ name: 'eth0', sandbox: '/ns' }];
  // host-local style: default route without gw uses the address's gateway (ipam.ConfigureIface)
  assert.deepEqual(
    gw({ cniVersion: '1.0.0', interfaces: iface, ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }], routes: [{ dst: '0.0.0.0/0' }] }),
    ['10.0.0.1'],
  );
  // ... of the same family only
  assert.equal(gw({ cniVersion: '1.0.0', interfaces: iface, ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }], routes: [{ dst: '::/0' }] }), undefined);
  assert.deepEqual(
    gw({
      cniVersion: '1.0.0',
      interfaces: iface,
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::2/64', gateway: 'fd00::1', interface: 0 }],
      routes: [{ dst: '::/0' }, { dst: '0.0.0.0/0' }],
    }),
    ['fd00::1', '10.0.0.1'],
  );
  // no gateway anywhere: nothing (the NAD client writes "<nil>")
  assert.equal(gw({ cniVersion: '1.0.0', interfaces: iface, ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [{ dst: '0.0.0.0/0' }] }), undefined);
  // not default routes
  assert.equal(gw({ cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/8', gw: '10.0.0.1' }, { dst: '10.0.0.0/0', gw: '10.0.0.1' }, { dst: '192.168.0.0/16', gw: '10.0.0.1' }] }), undefined);
  // no routes at all
  assert.equal(gw({ cniVersion: '1.0.0', interfaces: iface, ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }] }), undefined);
  // repeated default routes (metrics) are one gateway
  assert.deepEqual(gw({ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1', priority: 10 }, { dst: '0.0.0.0/0', gw: '10.0.0.1', priority: 20 }, { dst: '0.0.0.0/0', gw: '10.0.0.254' }] }), ['10.0.0.1', '10.0.0.254']);
});

test('mtu, dns and device-info', () => {
  const result: Result = {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', mtu: 9000, sandbox: '/ns', pciID: '0000:03:00.1' }],
    ips: [{ address: '10.0.0.5/24', interface: 0 }],
    dns: { nameservers: ['10.0.0.53'], search: ['svc.example'], options: ['ndots:5'] },
  };
  const dev = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:03:00.1' } };
  assert.deepEqual(networkStatusEntry({ name: 'sriov/net', isDefault: false, result, deviceInfo: dev }), {
    name: 'sriov/net',
    interface: 'net1',
    ips: ['10.0.0.5'],
    mac: '02:00:00:00:00:01',
    mtu: 9000,
    default: false,
    dns: { nameservers: ['10.0.0.53'], search: ['svc.example'], options: ['ndots:5'] },
    'device-info': dev,
  });
  // empty dns is left out rather than written as {}
  const e = networkStatusEntry({ name: 'n', isDefault: false, result: { cniVersion: '1.0.0', dns: { nameservers: [] } } });
  assert.equal('dns' in e, false);
});

test('no result: a minimal entry (§5.1.1), default always written (§5.3.5 required)', () => {
  assert.deepEqual(networkStatusEntry({ name: 'cbr0', isDefault: true }), { name: 'cbr0', default: true });
  const dev = { type: 'pci', version: '1.1.0' };
  assert.deepEqual(networkStatusEntry({ name: 'ns/x', isDefault: false, deviceInfo: dev }), { name: 'ns/x', default: false, 'device-info': dev });
});

test('formatNetworkStatus: NAD client layout and key order', () => {
  const entries = [
    networkStatusEntry({ name: 'cbr0', isDefault: true, result: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:00:05', sandbox: '/ns' }], ips: [{ address: '10.244.0.5/24', interface: 0, gateway: '10.244.0.1' }], routes: [{ dst: '0.0.0.0/0', gw: '10.244.0.1' }], dns: { domain: 'cluster.local' } } }),
    networkStatusEntry({ name: 'team-a/macvlan', isDefault: false }),
  ];
  const want = `[{
    "name": "cbr0",
    "interface": "eth0",
    "ips": [
        "10.244.0.5"
    ],
    "mac": "0a:58:0a:f4:00:05",
    "default": true,
    "dns": {
        "domain": "cluster.local"
    },
    "gateway": [
        "10.244.0.1"
    ],
    "default-route": [
        "10.244.0.1"
    ]
},{
    "name": "team-a/macvlan",
    "default": false
}]`;
  assert.equal(formatNetworkStatus(entries), want);
  assert.deepEqual(JSON.parse(formatNetworkStatus(entries)), entries);
  assert.equal(formatNetworkStatus([]), '[]');
  // Key order is fixed whatever order the entry was built in.
  const shuffled = { 'default-route': ['1.1.1.1'], default: false, dns: { search: ['s'], nameservers: ['1.1.1.1'] }, ips: ['1.1.1.2'], name: 'x' } as NetworkStatus;
  assert.deepEqual(Object.keys(JSON.parse(formatNetworkStatus([shuffled]))[0]), ['name', 'ips', 'default', 'dns', 'default-route']);
  assert.deepEqual(Object.keys(JSON.parse(formatNetworkStatus([shuffled]))[0].dns), ['nameservers', 'search']);
});
