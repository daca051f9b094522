// The pool IPAM's pure parts: range syntaxes and what they allow, Whereabouts' names, the flat
// file merge, the candidate pick. Expected values are written out from the syntaxes' definitions
// (Whereabouts config.go/iphelpers.go, MetalLB and Kube-OVN pool docs), not from the code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipString, type Span } from '../src/ipam/pool/addrs';
import { candidates } from '../src/ipam/pool/allocate';
import { buildRange, loadPoolConf, mergeFlatFile } from '../src/ipam/pool/config';
import { parsePool, poolName, reservationName } from '../src/ipam/pool/layout';
import { PoolViews } from '../src/ipam/pool/store';

const spans = (free: Span[], family: 4 | 6 = 4) => free.map((s) => (s.lo === s.hi ? ipString(s.lo, family) : `${ipString(s.lo, family)}-${ipString(s.hi, family)}`));
const range = (r: string, extra: { start?: string; end?: string; exclude?: string[] } = {}, gw?: string, buggy = false) =>
  buildRange('ipam', { range: r, exclude: [], ...extra }, gw, buggy);

test('CIDR: network and broadcast out, host bits ignored as Whereabouts does, gateway out', () => {
  assert.deepEqual(spans(range('192.168.2.0/24').free), ['192.168.2.1-192.168.2.254']);
  assert.deepEqual(spans(range('192.168.2.225/28').free), ['192.168.2.225-192.168.2.238']);
  assert.deepEqual(spans(range('10.0.0.0/29', {}, '10.0.0.1').free), ['10.0.0.2-10.0.0.6']);
  assert.deepEqual(spans(range('10.0.0.4/31').free), ['10.0.0.4-10.0.0.5'], '/31: both usable');
  assert.deepEqual(spans(range('fd00::/126').free, 6), ['fd00::1-fd00::2']);
});

test('start-end/prefix, range_start/range_end, and the exclusion forms', () => {
  const r = range('192.168.2.225-192.168.2.230/28');
  assert.equal(r.net.prefix, 28);
  assert.deepEqual(spans(r.free), ['192.168.2.225-192.168.2.230']);
  assert.deepEqual(spans(range('10.1.0.0/24', { start: '10.1.0.10', end: '10.1.0.20' }).free), ['10.1.0.10-10.1.0.20']);
  const ex = range('10.1.0.0/24', { exclude: ['10.1.0.0/28', '10.1.0.20', '10.1.0.30..10.1.0.39', '10.1.0.100-10.1.0.254'] });
  assert.deepEqual(spans(ex.free), ['10.1.0.16-10.1.0.19', '10.1.0.21-10.1.0.29', '10.1.0.40-10.1.0.99']);
});

test('MetalLB a-b ranges (v4, v6) live in the smallest subnet holding both ends; avoidBuggyIPs', () => {
  const v4 = range('192.168.10.0-192.168.10.255');
  assert.equal(`${ipString(v4.net.base, 4)}/${v4.net.prefix}`, '192.168.10.0/24');
  assert.deepEqual(spans(v4.free), ['192.168.10.1-192.168.10.254']);
  const v6 = range('fc00:f853:ccd:e799::10-fc00:f853:ccd:e799::1f');
  assert.equal(`${ipString(v6.net.base, 6)}/${v6.net.prefix}`, 'fc00:f853:ccd:e799::10/124');
  assert.deepEqual(spans(v6.free, 6), ['fc00:f853:ccd:e799::11-fc00:f853:ccd:e799::1e']);
  const buggy = range('10.2.0.0/23', {}, undefined, true);
  assert.deepEqual(spans(buggy.free), ['10.2.0.1-10.2.0.254', '10.2.1.1-10.2.1.254']);
});

test('errors name the field', () => {
  assert.throws(() => range('10.0.0.0/24', { exclude: ['10.0.1.0/28'] }), /^CniError: ipam\.exclude\[0\]: 10\.0\.1\.0\/28 is outside the range 10\.0\.0\.0\/24$|ipam\.exclude\[0\]: 10\.0\.1\.0\/28 is outside/);
  assert.throws(() => range('10.0.0.0/24', { exclude: ['10.0.0.9..10.0.0.3'] }), /ipam\.exclude\[0\]: "10\.0\.0\.9\.\.10\.0\.0\.3" is neither/);
  assert.throws(() => range('nonsense'), /ipam\.range: "nonsense" is neither a CIDR/);
  assert.throws(() => range('10.0.0.0/30', { start: '10.0.0.2', end: '10.0.0.1' }), /has no usable address/);
});

test('Whereabouts object names', () => {
  assert.equal(poolName('10.0.0.0/24', ''), '10.0.0.0-24');
  assert.equal(poolName('10.0.0.0/24', 'blue'), 'blue-10.0.0.0-24');
  assert.equal(poolName('10.0.4.0/24', 'blue', 'node-1'), 'blue-node-1-10.0.4.0-24');
  assert.equal(poolName('10.0.4.0/24', '', 'node-1'), 'node-1-10.0.4.0-24');
  assert.equal(poolName('fd00:a::/64', ''), 'fd00-a---64');
  const v6 = range('fd00::/64').net;
  assert.equal(reservationName(v6.base, v6, ''), 'fd00--0', 'a trailing :: gets a 0, as NormalizeIP does');
  assert.equal(reservationName(v6.base + 5n, v6, 'blue'), 'blue-fd00--5');
});

test('the flat file fills what the NAD leaves empty, never enable_overlapping_ranges', () => {
  const merged = mergeFlatFile(
    { type: 'whereabouts', range: '10.0.0.0/24', kubernetes: {} },
    { range: '10.9.9.0/24', kubernetes: { kubeconfig: '/etc/k' }, enable_overlapping_ranges: false, gateway: '10.0.0.1' },
  );
  const conf = loadPoolConf({ name: 'n', cniVersion: '1.0.0' }, merged);
  assert.equal(conf.ranges[0]?.text, '10.0.0.0/24');
  assert.equal(conf.kubeconfig, '/etc/k');
  assert.equal(conf.gateway, '10.0.0.1');
  assert.equal(conf.overlapping, true, 'Whereabouts defaults it to true and ignores the flat file’s');
});

test('candidates: the lowest free addresses, skipping what the pool and earlier losses hold', () => {
  const pool = parsePool({ metadata: { name: 'p' }, spec: { range: '10.0.0.0/24', allocations: { '1': { id: 'a', podref: 'x/y' }, '3': { id: 'b', podref: 'x/z' } } } }, 0);
  const free = range('10.0.0.0/24').free;
  assert.deepEqual(candidates(free, pool, new Set([(10n << 24n) + 2n]), 3).map((v) => ipString(v, 4)), ['10.0.0.4', '10.0.0.5', '10.0.0.6']);
});

test('a pool’s entries decode lazily and read like the map they were: bad offsets and id-less entries skipped, writes layered on top', () => {
  const pool = parsePool({
    metadata: { name: 'p', annotations: { 'ipam.plexus.io/1': '{"cid":"aaaa","uid":"u1"}', 'ipam.plexus.io/2': '{"cid":"zzzz","uid":"stale"}' } },
    spec: { range: '10.0.0.0/24', allocations: { '1': { id: 'aaaa1', podref: 'x/a', ifname: 'net1' }, '2': { id: 'bbbb', podref: 'x/b' }, '01': { id: 'bad' }, '-1': { id: 'bad' }, x: { id: 'bad' }, '4': { podref: 'no-id' }, '5': 'junk' } },
  }, 0);
  const all = pool.allocations;
  assert.equal(all.size, 2);
  assert.deepEqual([all.has('1'), all.has('2'), all.has('01'), all.has('4'), all.has('5'), all.has('3')], [true, true, false, false, false, false]);
  assert.deepEqual(all.get('1'), { offset: 1n, id: 'aaaa1', podref: 'x/a', ifname: 'net1', extra: { cid: 'aaaa', uid: 'u1' } });
  assert.deepEqual(all.get('2'), { offset: 2n, id: 'bbbb', podref: 'x/b' }, 'an annotation whose cid no longer matches is not this entry’s');
  all.set('3', { offset: 3n, id: 'cccc', podref: 'x/c' });
  all.delete('1');
  all.set('2', { offset: 2n, id: 'dddd', podref: 'x/d' });
  assert.equal(all.size, 2);
  assert.deepEqual([...all.values()].map((a) => a.id).sort(), ['cccc', 'dddd']);
  assert.deepEqual([...all.ofContainer('bbbb')], [], 'overwritten here');
  assert.deepEqual([...all.ofContainer('dddd')].map((a) => a.offset), [2n]);
  assert.deepEqual([...all.ofContainer('aaaa1')], [], 'deleted here');
  all.delete('1');
  assert.equal(all.size, 2, 'deleting twice counts once');
});

test('pool views: fresh for maxAge, then dropped; writes on another read of the pool are mirrored; pending outlives the read', () => {
  const views = new PoolViews(10_000);
  const read = () => parsePool({ metadata: { name: 'p' }, spec: { range: '10.0.0.0/24', allocations: { '1': { id: 'a', podref: 'x/a' } } } }, 0);
  const pending = views.pending('k');
  pending.add(5n);
  const view = read();
  views.store('k', view, 1_000);
  assert.equal(views.fresh('k', 11_000), view);
  const other = read();
  other.allocations.set('2', { offset: 2n, id: 'b', podref: 'x/b' });
  views.mirror('k', other, '2');
  other.allocations.delete('1');
  views.mirror('k', other, '1');
  assert.deepEqual([...view.allocations.values()].map((a) => a.id), ['b']);
  assert.equal(views.pending('k'), pending, 'a new read keeps what is being committed');
  assert.equal(views.fresh('k', 11_001), undefined, 'too old');
  assert.equal(views.fresh('k', 1_000), undefined, 'and dropped, not kept in memory');
  views.store('k', read(), 20_000);
  assert.deepEqual([...views.pending('k')], [5n]);
});
