// The pure rules behind CHECK on shared bridges and DEL ordering for IPAM (docs/decisions.md):
// which bridge MAC the kernel chose by itself, the MAC plexus gives a bridge it creates, and which
// IPAM types need the pod's interface on DEL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeMacFollowsPorts, type Link } from '../src/netns';
import { bridgeMac } from '../plugins/bridge/netdev';
import { ipamNeedsLink } from '../plugins/common/ipam-link';

const link = (index: number, mac: string | null, masterIndex = 0): Link => ({ index, name: `l${index}`, mac, masterIndex }) as Link;

test('bridgeMacFollowsPorts: true only when the bridge has exactly the lowest MAC of its own ports', () => {
  const br = (mac: string) => link(1, mac);
  const ports = [link(2, '02:aa:00:00:00:02', 1), link(3, '02:0b:00:00:00:01', 1), link(4, '02:00:00:00:00:00', 9)];
  assert.equal(bridgeMacFollowsPorts([br('02:0b:00:00:00:01'), ...ports], br('02:0b:00:00:00:01')), true, 'the lowest port');
  assert.equal(bridgeMacFollowsPorts([br('02:aa:00:00:00:02'), ...ports], br('02:aa:00:00:00:02')), false, 'a port, but not the lowest');
  assert.equal(bridgeMacFollowsPorts([br('02:00:00:00:00:00'), ...ports], br('02:00:00:00:00:00')), false, 'another bridge’s port does not count');
  assert.equal(bridgeMacFollowsPorts([br('02:12:34:56:78:9a')], br('02:12:34:56:78:9a')), false, 'no ports: nothing to follow');
  assert.equal(bridgeMacFollowsPorts([br('02:0b:00:00:00:01'), link(5, '00:00:00:00:00:00', 1), ports[1]!], br('02:0b:00:00:00:01')), true, 'an all-zero port address is skipped, as the kernel does');
});

test('bridgeMac: locally administered unicast, stable per machine and name, random without a machine ID', () => {
  const a = bridgeMac('cni0', '0123456789abcdef0123456789abcdef');
  assert.match(a, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(a.slice(0, 2), 16);
  assert.equal(first & 0x01, 0, 'unicast');
  assert.equal(first & 0x02, 0x02, 'locally administered');
  assert.equal(bridgeMac('cni0', '0123456789abcdef0123456789abcdef'), a, 'stable');
  assert.notEqual(bridgeMac('cni1', '0123456789abcdef0123456789abcdef'), a, 'another bridge');
  assert.notEqual(bridgeMac('cni0', 'fedcba9876543210fedcba9876543210'), a, 'another node');
  assert.notEqual(bridgeMac('cni0', ''), bridgeMac('cni0', ''), 'random without a machine ID');
});

test('ipamNeedsLink: store-only IPAM may run after the link is gone; dhcp and anything unknown need it', () => {
  for (const t of ['host-local', 'static', 'whereabouts']) assert.equal(ipamNeedsLink(t), false, t);
  for (const t of ['dhcp', 'example-ipam', 'Host-Local']) assert.equal(ipamNeedsLink(t), true, t);
  assert.equal(ipamNeedsLink(undefined), false, 'no IPAM');
  assert.equal(ipamNeedsLink(''), false, 'no IPAM');
});
