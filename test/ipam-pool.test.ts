// The pool IPAM (dist/bin/whereabouts) on the wire against the test apiserver: Whereabouts' object
// layout both ways, what it does better (no gateway/network/broadcast, requested addresses
// reserved, exclusions checked, DEL 11 when the API is away, pools full by size), dual stack, an
// IPv6 /48, node slices, IPAMClaim, and leak cleanup that never frees a live pod's address.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_OBJECT_BYTES } from './apiserver/store';
import { requireBuild } from './helpers/plexus';
import { ipsOf, plexusCli, POOL_NS, poolWorld } from './helpers/pool';

requireBuild();

const plain = (cidr: string) => cidr.replace(/\/\d+$/, '');

test('layout: IPPool and reservation names, offset keys and fields are Whereabouts’; DEL removes both', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.5.0.0/28', network_name: 'blue' });
  const add = await w.run('ADD', 'ctr-one', conf, { pod: 'web', ns: 'ns1' });
  assert.equal(add.status, 0, add.stdout);
  const [ip] = ipsOf(add);
  assert.match(ip ?? '', /^10\.5\.0\.\d+\/28$/);
  const pool = w.api.getObject('ippools', POOL_NS, 'blue-10.5.0.0-28');
  assert.ok(pool, 'IPPool <network_name>-<range with / as ->');
  assert.equal((pool.spec as { range: string }).range, '10.5.0.0/28');
  const offset = String(Number(plain(ip ?? '').split('.')[3]));
  assert.deepEqual(w.allocations('blue-10.5.0.0-28'), { [offset]: { id: 'ctr-one', podref: 'ns1/web', ifname: 'net1' } });
  const orip = w.api.getObject('overlappingrangeipreservations', POOL_NS, `blue-${plain(ip ?? '')}`);
  assert.deepEqual(orip?.spec, { containerid: 'ctr-one', podref: 'ns1/web', ifname: 'net1' });

  const del = await w.run('DEL', 'ctr-one', conf, { pod: 'web', ns: 'ns1' });
  assert.equal(del.status, 0, del.stdout);
  assert.deepEqual(w.allocations('blue-10.5.0.0-28'), {});
  assert.equal(w.api.listObjects('overlappingrangeipreservations').length, 0);
  const again = await w.run('DEL', 'ctr-one', conf, { pod: 'web', ns: 'ns1' });
  assert.equal(again.status, 0, 'DEL of nothing succeeds');
});

test('a pool in Whereabouts v0.6 format (no ifname) is honoured: held addresses skipped, its DEL frees them', async (t) => {
  const w = await poolWorld(t);
  const held: Record<string, { id: string; podref: string }> = {};
  for (let i = 1; i <= 13; i++) if (i !== 7) held[String(i)] = { id: `wb-${i}`, podref: `ns/wb-${i}` };
  w.api.putObject('ippools', { metadata: { name: '10.6.0.0-28', namespace: POOL_NS }, spec: { range: '10.6.0.0/28', allocations: held } });
  const conf = w.conf({ range: '10.6.0.0/28', enable_overlapping_ranges: false });
  const add = await w.run('ADD', 'mine', conf);
  assert.equal(add.status, 0, add.stdout);
  const second = await w.run('ADD', 'mine2', conf);
  assert.deepEqual([...ipsOf(add), ...ipsOf(second)].sort(), ['10.6.0.14/28', '10.6.0.7/28'], 'the two addresses Whereabouts left free (.14 is the last usable)');
  const full = await w.run('ADD', 'mine3', conf);
  assert.equal(full.status, 1);
  assert.match(full.json().msg as string, /could not allocate IP in range 10\.6\.0\.0\/28: all addresses are allocated/);
  // A DEL by a Whereabouts-made entry's container (no ifname recorded) frees it, as Whereabouts does.
  const del = await w.run('DEL', 'wb-3', conf);
  assert.equal(del.status, 0, del.stdout);
  assert.equal(w.allocations('10.6.0.0-28')['3'], undefined);
  assert.deepEqual(ipsOf(await w.run('ADD', 'mine3', conf)), ['10.6.0.3/28']);
});

test('an OverlappingRangeIPReservation made by Whereabouts (v0.6: podref only) keeps its address out of another pool', async (t) => {
  const w = await poolWorld(t);
  w.api.putObject('overlappingrangeipreservations', { metadata: { name: '10.16.0.3', namespace: POOL_NS }, spec: { podref: 'other/pod' } });
  const conf = w.conf({ range: '10.16.0.0/29' });
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await w.run('ADD', `o${i}`, conf);
    assert.equal(r.status, 0, r.stdout);
    got.push(...ipsOf(r));
  }
  assert.deepEqual(got.sort(), ['10.16.0.1/29', '10.16.0.2/29', '10.16.0.4/29', '10.16.0.5/29', '10.16.0.6/29']);
  const full = await w.run('ADD', 'o5', conf);
  assert.match(full.json().msg as string, /all addresses are allocated \(IPPool kube-system\/10\.16\.0\.0-29, 5 allocations, 1 more reserved by other pods' OverlappingRangeIPReservations\)/);
  assert.deepEqual(w.api.getObject('overlappingrangeipreservations', POOL_NS, '10.16.0.3')?.spec, { podref: 'other/pod' }, 'untouched');
});

test('gateway, network and broadcast are never handed out; exhaustion is a clear error with nothing left behind', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.7.0.0/29', gateway: '10.7.0.1' });
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await w.run('ADD', `c${i}`, conf);
    assert.equal(r.status, 0, r.stdout);
    const res = r.json() as { ips: Array<{ address: string; gateway?: string }> };
    assert.equal(res.ips[0]?.gateway, '10.7.0.1');
    got.push(...ipsOf(r));
  }
  assert.deepEqual(got.sort(), ['10.7.0.2/29', '10.7.0.3/29', '10.7.0.4/29', '10.7.0.5/29', '10.7.0.6/29']);
  const full = await w.run('ADD', 'c5', conf);
  assert.equal(full.status, 1);
  assert.equal(full.json().code, 999);
  assert.match(full.json().msg as string, /all addresses are allocated/);
  assert.equal(Object.keys(w.allocations('10.7.0.0-29')).length, 5);
  assert.equal(w.api.listObjects('overlappingrangeipreservations').length, 5, 'the failed ADD left no reservation');
});

test('the flat file at configuration_path fills what the NAD leaves out; none at all is no error', async (t) => {
  const w = await poolWorld(t);
  const flat = join(w.dir, 'whereabouts.conf');
  writeFileSync(flat, JSON.stringify({ range: '10.18.0.0/28', kubernetes: { kubeconfig: w.kubeconfig }, network_name: 'flat' }));
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'macvlan', ipam: { type: 'whereabouts', configuration_path: flat } });
  const r = await w.run('ADD', 'ff', conf);
  assert.equal(r.status, 0, r.stdout);
  assert.match(ipsOf(r)[0] ?? '', /^10\.18\.0\.\d+\/28$/);
  assert.ok(w.api.getObject('ippools', POOL_NS, 'flat-10.18.0.0-28'));
});

test('config errors name the field and touch nothing on the API', async (t) => {
  const w = await poolWorld(t);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ range: '10.8.0.0/24', exclude: ['10.9.0.0/28'] }, /^ipam\.exclude\[0\]: 10\.9\.0\.0\/28 is outside the range 10\.8\.0\.0\/24$/],
    [{ range: '10.8.0.0/24', range_start: '10.9.0.1' }, /^ipam\.range_start: 10\.9\.0\.1 is outside the range/],
    [{ range: '10.8.0.0/33' }, /^ipam\.range: invalid CIDR/],
    [{ ipRanges: [{ range: 'fd00::/64', exclude: ['10.8.0.1'] }] }, /^ipam\.ipRanges\[0\]\.exclude\[0\]: 10\.8\.0\.1 is not an IPv6 range$/],
    [{ range: '10.8.0.0/24', node_slice_size: '/20' }, /^ipam\.node_slice_size:/],
  ];
  for (const [ipam, want] of cases) {
    const r = await w.run('ADD', 'bad', w.conf(ipam));
    assert.equal(r.status, 1, JSON.stringify(ipam));
    assert.equal(r.json().code, 7, JSON.stringify(r.json()));
    assert.match(r.json().msg as string, want);
  }
  assert.equal(w.api.requests().length, 0);
});

test('requested addresses are reserved and refused while another pod holds them; ADD is idempotent', async (t) => {
  const w = await poolWorld(t);
  const conf = (ips: string[]) => w.conf({ range: '10.9.0.0/24' }, { runtimeConfig: { ips } });
  const a = await w.run('ADD', 'ca', conf(['10.9.0.50/24']), { pod: 'a' });
  assert.deepEqual(ipsOf(a), ['10.9.0.50/24']);
  assert.equal(w.allocations('10.9.0.0-24')['50']?.id, 'ca');
  const b = await w.run('ADD', 'cb', conf(['10.9.0.50']), { pod: 'b' });
  assert.equal(b.status, 1);
  assert.match(b.json().msg as string, /requested IP address 10\.9\.0\.50 is already allocated to container ca \(pod default\/a\)/);
  const again = await w.run('ADD', 'ca', conf(['10.9.0.50/24']), { pod: 'a' });
  assert.deepEqual(ipsOf(again), ['10.9.0.50/24']);
  const dyn = w.conf({ range: '10.9.0.0/24' });
  const d1 = await w.run('ADD', 'cd', dyn);
  const d2 = await w.run('ADD', 'cd', dyn);
  assert.deepEqual(ipsOf(d1), ipsOf(d2), 'same container and interface: same address');
  const d3 = await w.run('ADD', 'cd', dyn, { ifname: 'net2' });
  assert.notDeepEqual(ipsOf(d3), ipsOf(d1), 'another interface of the same container: another address');
  assert.equal(Object.keys(w.allocations('10.9.0.0-24')).length, 3);
  const out = await w.run('ADD', 'ce', conf(['10.10.0.1']));
  assert.match(out.json().msg as string, /^runtimeConfig\.ips: requested IP address 10\.10\.0\.1 is not in any configured range$/);
});

test('DEL that cannot reach the API fails with code 11 and keeps the allocation', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.11.0.0/24' });
  assert.equal((await w.run('ADD', 'keep', conf)).status, 0);
  w.api.failAll(503);
  const del = await w.run('DEL', 'keep', conf);
  assert.equal(del.status, 1);
  assert.equal(del.json().code, 11, del.stdout);
  w.api.clearFaults();
  assert.equal(Object.keys(w.allocations('10.11.0.0-24')).length, 1);
  assert.equal((await w.run('DEL', 'keep', conf)).status, 0);
  assert.equal(Object.keys(w.allocations('10.11.0.0-24')).length, 0);
});

test('dual-stack ipRanges and an IPv6 /48 (offsets past 2^64)', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ ipRanges: [{ range: '10.12.0.0/24' }, { range: 'fd00:12::/48' }], routes: [{ dst: '0.0.0.0/0', gw: '10.12.0.1' }] });
  const r = await w.run('ADD', 'ds', conf);
  assert.equal(r.status, 0, r.stdout);
  const [v4, v6] = ipsOf(r);
  assert.match(v4 ?? '', /^10\.12\.0\.\d+\/24$/);
  assert.match(v6 ?? '', /^fd00:12::[0-9a-f]+\/48$/);
  assert.deepEqual((r.json() as { routes: unknown }).routes, [{ dst: '0.0.0.0/0', gw: '10.12.0.1' }]);
  assert.ok(w.api.getObject('ippools', POOL_NS, '10.12.0.0-24'));
  assert.ok(w.api.getObject('ippools', POOL_NS, 'fd00-12---48'), 'IPv6 pool name with : and / as -');
  assert.ok(w.api.getObject('overlappingrangeipreservations', POOL_NS, plain(v6 ?? '').replaceAll(':', '-')));
  // deep in the /48: the key is the exact decimal offset, 2^79 + 5
  const deep = await w.run('ADD', 'deep', w.conf({ range: 'fd00:12::/48' }, { runtimeConfig: { ips: ['fd00:12:0:8000::5'] } }));
  assert.deepEqual(ipsOf(deep), ['fd00:12:0:8000::5/48']);
  assert.equal(w.allocations('fd00-12---48')[(2n ** 79n + 5n).toString()]?.id, 'deep');
  assert.equal((await w.run('DEL', 'deep', w.conf({ range: 'fd00:12::/48' }))).status, 0);
  assert.equal(w.allocations('fd00-12---48')[(2n ** 79n + 5n).toString()], undefined);
});

test('a pool full by size is a clear error, not the apiserver’s bare 500', async (t) => {
  const w = await poolWorld(t);
  const allocations: Record<string, { id: string; podref: string; ifname: string }> = {};
  // Fill the object to just under the apiserver's limit with Whereabouts-shaped entries.
  let bytes = 200;
  for (let i = 1; bytes < MAX_OBJECT_BYTES - 4096; i++) {
    allocations[String(i)] = { id: 'f'.repeat(64), podref: `some-namespace/some-statefulset-pod-${i}`, ifname: 'net1' };
    bytes += JSON.stringify(allocations[String(i)]).length + String(i).length + 4;
  }
  w.api.putObject('ippools', { metadata: { name: '10.128.0.0-16', namespace: POOL_NS }, spec: { range: '10.128.0.0/16', allocations } });
  const r = await w.run('ADD', 'big', w.conf({ range: '10.128.0.0/16' }));
  assert.equal(r.status, 1);
  assert.match(r.json().msg as string, /IPPool kube-system\/10\.128\.0\.0-16 is full by size, not by addresses: \d+ allocations take \d+ bytes .* set node_slice_size/);
});

test('past the apiserver’s 256 KiB of annotations, entries go in without plexus’s extra facts instead of failing', async (t) => {
  const w = await poolWorld(t);
  w.api.putObject('ippools', {
    metadata: { name: '10.17.0.0-24', namespace: POOL_NS, annotations: { 'example.com/bulk': 'x'.repeat(250 * 1024) } },
    spec: { range: '10.17.0.0/24', allocations: {} },
  });
  const r = await w.run('ADD', 'late', w.conf({ range: '10.17.0.0/24' }));
  assert.equal(r.status, 0, r.stdout);
  assert.deepEqual(Object.values(w.allocations('10.17.0.0-24')), [{ id: 'late', podref: 'default/late', ifname: 'net1' }]);
  const ann = (w.api.getObject('ippools', POOL_NS, '10.17.0.0-24')?.metadata as { annotations: Record<string, string> }).annotations;
  assert.deepEqual(Object.keys(ann), ['example.com/bulk']);
});

test('node slices: each node gets its own slice and pool; plexus assigns a slice when no controller did', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.20.0.0/16', node_slice_size: '/24', network_name: 'fast' });
  const a = await w.run('ADD', 'na', conf, { env: { NODENAME: 'node-a' } });
  const b = await w.run('ADD', 'nb', conf, { env: { NODENAME: 'node-b' } });
  assert.equal(a.status, 0, a.stdout);
  assert.equal(b.status, 0, b.stdout);
  const nsp = w.api.getObject('nodeslicepools', POOL_NS, 'fast');
  const allocs = (nsp?.status as { allocations: Array<{ nodeName: string; sliceRange: string }> }).allocations;
  assert.equal(allocs.length, 256);
  const sliceA = allocs.find((x) => x.nodeName === 'node-a')?.sliceRange ?? '';
  const sliceB = allocs.find((x) => x.nodeName === 'node-b')?.sliceRange ?? '';
  assert.notEqual(sliceA, sliceB);
  const within = (ip: string, slice: string) => plain(ip).split('.').slice(0, 3).join('.') === slice.split('.').slice(0, 3).join('.');
  assert.ok(within(ipsOf(a)[0] ?? '', sliceA) && ipsOf(a)[0]?.endsWith('/16'), `${ipsOf(a)[0]} in ${sliceA}, with the range's prefix`);
  assert.ok(within(ipsOf(b)[0] ?? '', sliceB));
  assert.ok(w.api.getObject('ippools', POOL_NS, `fast-node-a-${sliceA.replaceAll('/', '-')}`), 'per-node pool <network>-<node>-<slice>');
  assert.equal((await w.run('DEL', 'na', conf, { env: { NODENAME: 'node-a' } })).status, 0);
  assert.deepEqual(w.allocations(`fast-node-a-${sliceA.replaceAll('/', '-')}`), {});
});

test('IPAMClaim: the same address across pod delete and re-create, written to status.ips, freed when the claim goes', async (t) => {
  const w = await poolWorld(t);
  w.api.putObject('ipamclaims', { metadata: { name: 'vm-a.net1', namespace: 'vms' }, spec: { network: 'poolnet', interface: 'net1' } });
  w.api.putPod({ metadata: { name: 'virt-launcher-a', namespace: 'vms', uid: 'uid-1' } });
  const conf = w.conf({ range: '10.30.0.0/24' }, { args: { cni: { 'ipam-claim-reference': 'vm-a.net1' } } });
  const first = await w.run('ADD', 'pod1', conf, { pod: 'virt-launcher-a', ns: 'vms', uid: 'uid-1' });
  assert.equal(first.status, 0, first.stdout);
  const claim = w.api.getObject('ipamclaims', 'vms', 'vm-a.net1');
  assert.deepEqual((claim?.status as { ips: string[] }).ips, ipsOf(first));
  assert.equal((await w.run('DEL', 'pod1', conf, { pod: 'virt-launcher-a', ns: 'vms', uid: 'uid-1' })).status, 0);
  assert.equal(Object.keys(w.allocations('10.30.0.0-24')).length, 1, 'the claim keeps its address after DEL');
  w.api.deletePod('vms', 'virt-launcher-a');
  const other = await w.run('ADD', 'x', w.conf({ range: '10.30.0.0/24' }));
  assert.notDeepEqual(ipsOf(other), ipsOf(first));
  w.api.putPod({ metadata: { name: 'virt-launcher-b', namespace: 'vms', uid: 'uid-2' } });
  const second = await w.run('ADD', 'pod2', conf, { pod: 'virt-launcher-b', ns: 'vms', uid: 'uid-2' });
  assert.deepEqual(ipsOf(second), ipsOf(first), 'the re-created pod gets the claim’s address');
  const key = Object.entries(w.allocations('10.30.0.0-24')).find(([, a]) => a.id === 'pod2');
  assert.ok(key, 'the entry moved to the new container');
  // gc: the claim still exists, so nothing is freed; after the claim and the pod go, the address is.
  const kc = ['--kubeconfig', w.kubeconfig, '--grace-seconds', '0'];
  const gc1 = await plexusCli(['ipam', 'gc', ...kc]);
  assert.equal(gc1.status, 0, gc1.stderr);
  assert.ok(w.allocations('10.30.0.0-24')[key[0]]);
  w.api.removeObject('ipamclaims', 'vms', 'vm-a.net1');
  w.api.deletePod('vms', 'virt-launcher-b');
  const gc2 = await plexusCli(['ipam', 'gc', ...kc]);
  assert.equal(gc2.status, 0, gc2.stderr);
  assert.equal(w.allocations('10.30.0.0-24')[key[0]], undefined, JSON.stringify(gc2.stdout));
});

test('leaks: CNI GC frees this node’s stale entries only; plexus ipam gc tells a re-created StatefulSet pod from its predecessor', async (t) => {
  const w = await poolWorld(t);
  const conf = w.conf({ range: '10.40.0.0/24' });
  const add = async (id: string, pod: string, uid: string, node = 'node-a') => {
    const r = await w.run('ADD', id, conf, { pod, uid, env: { NODENAME: node } });
    assert.equal(r.status, 0, r.stdout);
  };
  w.api.putPod({ metadata: { name: 'db-0', namespace: 'default', uid: 'uid-db0-new' } });
  w.api.putPod({ metadata: { name: 'live', namespace: 'default', uid: 'uid-live' } });
  w.api.putPod({ metadata: { name: 'other-node', namespace: 'default', uid: 'uid-on' } });
  await add('old-db0', 'db-0', 'uid-db0-old'); // the predecessor, never DEL'd
  await add('new-db0', 'db-0', 'uid-db0-new');
  await add('live', 'live', 'uid-live');
  await add('gone', 'gone', 'uid-gone');
  await add('remote', 'other-node', 'uid-on', 'node-b');
  const ids = () => Object.values(w.allocations('10.40.0.0-24')).map((a) => a.id).sort();

  // CNI GC on node-a: the runtime still has live and new-db0 only.
  const gcConf = JSON.parse(conf) as Record<string, unknown>;
  gcConf.cniVersion = '1.1.0';
  gcConf['cni.dev/valid-attachments'] = [{ containerID: 'live', ifname: 'net1' }, { containerID: 'new-db0', ifname: 'net1' }];
  const gc = await w.run('GC', '', JSON.stringify(gcConf));
  assert.equal(gc.status, 0, gc.stdout);
  assert.deepEqual(ids(), ['live', 'new-db0', 'remote'], 'node-b’s entry is not node-a’s to free');

  // The cluster sweep on a fresh set: the old db-0 (uid differs) and the gone pod go, live pods stay.
  await add('old-db0', 'db-0', 'uid-db0-old');
  await add('gone', 'gone', 'uid-gone');
  const dry = await plexusCli(['ipam', 'gc', '--kubeconfig', w.kubeconfig, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.deepEqual(ids(), ['gone', 'live', 'new-db0', 'old-db0', 'remote'], 'dry run changes nothing');
  const run = await plexusCli(['ipam', 'gc', '--kubeconfig', w.kubeconfig, '--grace-seconds', '0']);
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { freed: Array<{ id: string; why: string }>; reservationsDeleted: string[] };
  assert.deepEqual(report.freed.map((f) => f.id).sort(), ['gone', 'old-db0']);
  assert.match(report.freed.find((f) => f.id === 'old-db0')?.why ?? '', /re-created/);
  assert.deepEqual(ids(), ['live', 'new-db0', 'remote']);
  assert.equal(w.api.listObjects('overlappingrangeipreservations').length, 3, 'their reservations went too');
});

test('plexus ipam gc reads a namespace holding many entries’ pods with one metadata-only LIST, and judges exactly as pod by pod', async (t) => {
  const w = await poolWorld(t);
  const allocations: Record<string, { id: string; podref: string; ifname: string }> = {};
  const annotations: Record<string, string> = {};
  // 12 entries in "busy" (listed), 2 in "quiet" (read pod by pod).
  for (let i = 1; i <= 14; i++) {
    const ns = i <= 12 ? 'busy' : 'quiet';
    allocations[String(i)] = { id: `c${i}`, podref: `${ns}/p${i}`, ifname: 'net1' };
    annotations[`ipam.plexus.io/${i}`] = JSON.stringify({ cid: `c${i}`, uid: `uid-${i}` });
  }
  w.api.putObject('ippools', { metadata: { name: '10.41.0.0-24', namespace: POOL_NS, annotations }, spec: { range: '10.41.0.0/24', allocations } });
  for (let i = 1; i <= 14; i++) {
    if (i === 3 || i === 13) continue; // deleted
    w.api.putPod({ metadata: { name: `p${i}`, namespace: i <= 12 ? 'busy' : 'quiet', uid: i === 5 ? 'uid-5-recreated' : `uid-${i}` } });
  }
  w.api.clearRequests();
  const run = await plexusCli(['ipam', 'gc', '--kubeconfig', w.kubeconfig]);
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { freed: Array<{ id: string; why: string }> };
  assert.deepEqual(report.freed.map((f) => `${f.id}: ${f.why}`).sort(), ['c13: pod deleted', 'c3: pod deleted', 'c5: pod re-created (uid uid-5 is now uid-5-recreated)']);
  const podReads = w.api.requests().filter((r) => r.path.includes('/pods'));
  assert.deepEqual(podReads.map((r) => `${r.method} ${r.path}`).sort(), ['GET /api/v1/namespaces/busy/pods', 'GET /api/v1/namespaces/quiet/pods/p13', 'GET /api/v1/namespaces/quiet/pods/p14']);
  assert.deepEqual(Object.keys(w.allocations('10.41.0.0-24')).sort((a, b) => Number(a) - Number(b)), ['1', '2', '4', '6', '7', '8', '9', '10', '11', '12', '14']);
});

test('plexus ipam gc frees a pool’s leaks in one guarded patch; when an entry changed meanwhile, one by one, and the changed one stays', async (t) => {
  const w = await poolWorld(t);
  const pool = (ids: Record<string, string>) => ({
    metadata: { name: '10.42.0.0-24', namespace: POOL_NS, annotations: {} },
    spec: { range: '10.42.0.0/24', allocations: Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, { id, podref: `default/${id}`, ifname: 'net1' }])) },
  });
  w.api.putPod({ metadata: { name: 'live', namespace: 'default' } });
  w.api.putObject('ippools', pool({ 1: 'live', 2: 'gone-a', 3: 'gone-b', 4: 'gone-c' }));
  const path = `/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/${POOL_NS}/ippools/10.42.0.0-24`;
  const sweep = async () => {
    const run = await plexusCli(['ipam', 'gc', '--kubeconfig', w.kubeconfig]);
    assert.equal(run.status, 0, run.stderr);
    return (JSON.parse(run.stdout) as { freed: Array<{ id: string }> }).freed.map((f) => f.id).sort();
  };
  w.api.clearRequests();
  assert.deepEqual(await sweep(), ['gone-a', 'gone-b', 'gone-c']);
  assert.equal(w.api.requests().filter((r) => r.method === 'PATCH' && r.path === path).length, 1, 'one patch for the three');
  assert.deepEqual(Object.keys(w.allocations('10.42.0.0-24')), ['1']);

  // The batch is held at the server while a new pod takes offset 3: it then applies nothing.
  w.api.putObject('ippools', pool({ 1: 'live', 2: 'gone-a', 3: 'gone-b' }));
  w.api.inject({ method: 'PATCH', pathPrefix: path, times: 1, delayMs: 1_000 });
  w.api.clearRequests();
  const running = sweep();
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 20_000;
    const poll = () => {
      if (w.api.requests().some((r) => r.method === 'PATCH' && r.path === path)) return resolve();
      if (Date.now() > deadline) return reject(new Error('the sweep never sent its patch'));
      setTimeout(poll, 5);
    };
    poll();
  });
  const now = w.api.getObject('ippools', POOL_NS, '10.42.0.0-24')!;
  (now.spec as { allocations: Record<string, unknown> }).allocations['3'] = { id: 'newcomer', podref: 'default/newcomer', ifname: 'net1' };
  w.api.putObject('ippools', now);
  assert.deepEqual(await running, ['gone-a'], 'the entry that changed is not freed');
  assert.deepEqual(w.allocations('10.42.0.0-24'), { 1: { id: 'live', podref: 'default/live', ifname: 'net1' }, 3: { id: 'newcomer', podref: 'default/newcomer', ifname: 'net1' } });
  assert.deepEqual(w.api.requests().filter((r) => r.method === 'PATCH').map((r) => r.status), [422, 200, 422], 'the batch, then one by one');
});
