// Differential tests: plexus's static IPAM (dist/bin/static) against Debian's reference
// /usr/lib/cni/static (containernetworking-plugins 1.1.1): the same answers (exit status, result,
// error code and message) for the same configuration, CNI_ARGS and verb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IPAM_BINS, ipamCall, outcome, type IpamCall } from './helpers/ipam';
import type { JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';

const { ref: REF, ours: OURS } = IPAM_BINS.static;

interface Case {
  name: string;
  top?: JsonObject;
  ipam?: JsonObject | null;
  args?: string;
  commands?: IpamCall['command'][];
}

const ADDRS: JsonObject[] = [
  { address: '10.90.0.5/24', gateway: '10.90.0.1' },
  { address: 'fd00:90::5/64' },
];
const ROUTES: JsonObject[] = [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.90.0.254' }, { dst: '::/0', gw: 'fd00:90::1' }];
const DNS = { nameservers: ['10.90.0.53'], domain: 'example.org', search: ['example.org'], options: ['ndots:2'] };

const CASES: Case[] = [
  { name: 'addresses, routes and dns', ipam: { addresses: ADDRS, routes: ROUTES, dns: DNS } },
  { name: 'the same in 0.3.1', top: { cniVersion: '0.3.1' }, ipam: { addresses: ADDRS, routes: ROUTES, dns: DNS } },
  { name: 'the same in 0.4.0', top: { cniVersion: '0.4.0' }, ipam: { addresses: ADDRS } },
  { name: 'no addresses', ipam: {} },
  { name: 'CNI_ARGS IP and GATEWAY appended', ipam: { addresses: ADDRS }, args: 'IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.91.0.7/24, fd00:91::7/64;GATEWAY=10.91.0.1,fd00:91::1' },
  { name: 'CNI_ARGS GATEWAY outside every address', ipam: {}, args: 'IP=10.91.0.7/24;GATEWAY=10.92.0.1' },
  { name: 'args.cni.ips replace', top: { args: { cni: { ips: ['10.93.0.9/28'] } } }, ipam: { addresses: ADDRS }, args: 'IP=10.91.0.7/24' },
  { name: 'runtimeConfig.ips replace args', top: { runtimeConfig: { ips: ['fd00:94::9/80'] }, args: { cni: { ips: ['10.93.0.9/28'] } } }, ipam: { addresses: ADDRS } },
  { name: 'no ipam', ipam: null },
  { name: 'address not a CIDR', ipam: { addresses: [{ address: '10.90.0.5' }] } },
  { name: 'gateway not an IP', ipam: { addresses: [{ address: '10.90.0.5/24', gateway: 'nope' }] } },
  { name: 'CNI_ARGS IP not a CIDR', ipam: {}, args: 'IP=10.91.0.7' },
  { name: 'CNI_ARGS bad gateway', ipam: {}, args: 'IP=10.91.0.7/24;GATEWAY=x' },
  { name: 'CNI_ARGS unknown key', ipam: {}, args: 'FOO=1' },
  { name: 'runtimeConfig.ips not CIDR', top: { runtimeConfig: { ips: ['10.1.1.1'] } }, ipam: {} },
  { name: 'bad route', ipam: { addresses: ADDRS, routes: [{ dst: '10.0.0.0' }] } },
];

test('static: same answers as the reference for ADD, DEL and CHECK', async () => {
  requireBuild();
  for (const c of CASES) {
    const o: JsonObject = { cniVersion: '1.0.0', name: 'net1', type: 'bridge', ...(c.top ?? {}) };
    if (c.ipam !== null) o.ipam = { type: 'static', ...(c.ipam ?? {}) };
    for (const command of c.commands ?? (['ADD', 'DEL'] as const)) {
      const stdin = JSON.stringify(o);
      const want = outcome(await ipamCall(REF, { command, args: c.args ?? '' }, stdin));
      const got = outcome(await ipamCall(OURS, { command, args: c.args ?? '' }, stdin));
      assert.deepEqual(got, want, `${c.name}: ${command}`);
    }
  }
});

test('static CHECK: against the prevResult the ADD printed, and a tampered one', async () => {
  requireBuild();
  const base: JsonObject = { cniVersion: '1.0.0', name: 'net1', type: 'bridge', ipam: { type: 'static', addresses: ADDRS, routes: ROUTES } };
  const added = await ipamCall(REF, { command: 'ADD' }, JSON.stringify(base));
  assert.equal(added.status, 0);
  const prev = added.out as JsonObject;
  const wrongGw = { ...prev, ips: [{ address: '10.90.0.5/24', gateway: '10.90.0.2' }] };
  const missing = { ...prev, ips: [] };
  for (const [name, stdin] of [
    ['matching', JSON.stringify({ ...base, prevResult: prev })],
    ['another gateway', JSON.stringify({ ...base, prevResult: wrongGw })],
    ['address missing (not an error in the reference)', JSON.stringify({ ...base, prevResult: missing })],
    ['no prevResult', JSON.stringify(base)],
  ] as const) {
    const want = outcome(await ipamCall(REF, { command: 'CHECK', ifname: 'net7' }, stdin));
    const got = outcome(await ipamCall(OURS, { command: 'CHECK', ifname: 'net7' }, stdin));
    assert.deepEqual(got, want, `CHECK ${name}`);
  }
});
