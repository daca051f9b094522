// src/ipam/ip.ts and src/ipam/range.ts: bigint address math and range sets. Expected values come
// from independent derivations (hex strings of the bytes, brute force over small sets of numbers),
// never from the functions under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIP, parseCidr, parseIP, type Cidr, type IPAddr } from '../src/cni/addr';
import {
  addToIP,
  bigIntToIP,
  cidrContains,
  cidrFirst,
  cidrLast,
  cidrNetwork,
  cidrSize,
  cidrsOverlap,
  compareIP,
  familySize,
  ipOffset,
  ipToBigInt,
  prefixMask,
} from '../src/ipam/ip';
import {
  addressAt,
  cidrRange,
  countAddresses,
  formatRange,
  hostRange,
  indexOfAddress,
  intersectRange,
  makeRange,
  normalizeRanges,
  rangeBetween,
  rangeContainsIP,
  subtractRange,
  subtractRanges,
  walkRanges,
  type Range,
} from '../src/ipam/range';

const ip = (s: string): IPAddr => {
  const v = parseIP(s);
  assert.ok(v, s);
  return v;
};
const cidr = (s: string): Cidr => {
  const v = parseCidr(s);
  assert.ok(v, s);
  return v;
};
const hexOf = (a: IPAddr): bigint => BigInt('0x' + Buffer.from(a.bytes).toString('hex'));

// a small deterministic PRNG so failures reproduce
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('ipToBigInt/bigIntToIP round-trip and agree with the bytes read as hex', () => {
  for (const s of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', '::1', '2001:db8::2:1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe80::1:0:0:1']) {
    const a = ip(s);
    const n = ipToBigInt(a);
    assert.equal(n, hexOf(a), s);
    assert.equal(formatIP(bigIntToIP(n, a.family)), formatIP(a), s);
  }
  assert.equal(ipToBigInt(ip('10.1.2.3')), BigInt(10 * 2 ** 24 + 1 * 2 ** 16 + 2 * 2 ** 8 + 3));
  assert.throws(() => bigIntToIP(2n ** 32n, 4), RangeError);
  assert.throws(() => bigIntToIP(-1n, 6), RangeError);
  assert.equal(familySize(4), 2n ** 32n);
  assert.equal(familySize(6), 2n ** 128n);
});

test('CIDR first/last/size/network/contains, including IPv6 wider than /64', () => {
  const c4 = cidr('10.1.2.77/24');
  assert.equal(formatIP(bigIntToIP(cidrFirst(c4), 4)), '10.1.2.0');
  assert.equal(formatIP(bigIntToIP(cidrLast(c4), 4)), '10.1.2.255');
  assert.equal(cidrSize(c4), 256n);
  assert.equal(`${formatIP(cidrNetwork(c4).ip)}/${cidrNetwork(c4).prefix}`, '10.1.2.0/24');
  assert.ok(cidrContains(c4, ip('10.1.2.255')));
  assert.ok(!cidrContains(c4, ip('10.1.3.0')));
  assert.ok(!cidrContains(c4, ip('::a01:200')), 'another family never matches');

  const c6 = cidr('2001:db8:abcd::5/48');
  assert.equal(cidrSize(c6), 2n ** 80n);
  assert.equal(formatIP(bigIntToIP(cidrLast(c6), 6)), '2001:db8:abcd:ffff:ffff:ffff:ffff:ffff');
  // an address in the upper half of the /48, beyond any /64 or /65 slice of it
  assert.ok(cidrContains(c6, ip('2001:db8:abcd:8000::1')));
  assert.ok(!cidrContains(c6, ip('2001:db8:abce::')));
  assert.equal(prefixMask(6, 48), hexOf(ip('ffff:ffff:ffff::')));
  assert.equal(prefixMask(4, 0), 0n);
  assert.equal(prefixMask(4, 32), 2n ** 32n - 1n);
  assert.throws(() => prefixMask(4, 33), RangeError);
  assert.equal(cidrSize(cidr('::/0')), 2n ** 128n);

  assert.ok(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.9.0.0/16')));
  assert.ok(!cidrsOverlap(cidr('10.0.0.0/16'), cidr('10.1.0.0/16')));
});

test('compare, add, offset', () => {
  assert.equal(compareIP(ip('10.0.0.1'), ip('10.0.0.2')), -1);
  assert.equal(compareIP(ip('10.0.0.2'), ip('10.0.0.2')), 0);
  assert.equal(compareIP(ip('255.255.255.255'), ip('::')), -1, 'IPv4 sorts before IPv6');
  assert.equal(formatIP(addToIP(ip('10.0.0.255'), 1n) as IPAddr), '10.0.1.0');
  assert.equal(formatIP(addToIP(ip('10.0.1.0'), -1n) as IPAddr), '10.0.0.255');
  assert.equal(addToIP(ip('255.255.255.255'), 1n), undefined);
  assert.equal(addToIP(ip('::'), -1n), undefined);
  assert.equal(formatIP(addToIP(ip('2001:db8::'), 2n ** 64n + 5n) as IPAddr), '2001:db8:0:1::5');
  assert.equal(ipOffset(ip('2001:db8::'), ip('2001:db8:0:1::5')), 2n ** 64n + 5n);
  assert.throws(() => ipOffset(ip('10.0.0.1'), ip('::1')), RangeError);
});

test('makeRange/rangeBetween/cidrRange/hostRange and formatting', () => {
  assert.throws(() => makeRange(4, 5n, 4n), RangeError);
  assert.throws(() => makeRange(4, 0n, 2n ** 32n), RangeError);
  assert.equal(rangeBetween(ip('10.0.0.5'), ip('10.0.0.1')), undefined);
  assert.equal(rangeBetween(ip('10.0.0.5'), ip('::1')), undefined);
  const r = rangeBetween(ip('10.0.0.1'), ip('10.0.0.5')) as Range;
  assert.equal(formatRange(r), '10.0.0.1-10.0.0.5');
  assert.ok(rangeContainsIP(r, ip('10.0.0.5')));
  assert.ok(!rangeContainsIP(r, ip('10.0.0.6')));
  assert.equal(formatRange(cidrRange(cidr('10.0.0.9/30'))), '10.0.0.8-10.0.0.11');
  assert.equal(formatRange(hostRange(cidr('10.0.0.9/30')) as Range), '10.0.0.9-10.0.0.10');
  assert.equal(formatRange(hostRange(cidr('2001:db8::/126')) as Range), '2001:db8::1-2001:db8::3');
  assert.equal(hostRange(cidr('10.0.0.0/31')), undefined);
  assert.equal(hostRange(cidr('10.0.0.0/32')), undefined);
  assert.equal(hostRange(cidr('::1/128')), undefined);
  assert.equal(formatRange(makeRange(6, 1n, 1n)), '::1');
});

// the addresses of a range list as a set of numbers, by brute force
const expand = (rs: readonly Range[]): Set<string> => {
  const s = new Set<string>();
  for (const r of rs) for (let n = r.first; n <= r.last; n++) s.add(`${r.family}/${n}`);
  return s;
};
const randomRanges = (next: () => number, count: number): Range[] =>
  Array.from({ length: count }, () => {
    const family = next() < 0.7 ? 4 : 6;
    const a = BigInt(Math.floor(next() * 60));
    const b = a + BigInt(Math.floor(next() * 12));
    return { family, first: a, last: b } as Range;
  });

test('normalize/subtract/count agree with brute force on random range sets', () => {
  const next = rng(7);
  for (let round = 0; round < 300; round++) {
    const rs = randomRanges(next, 1 + Math.floor(next() * 5));
    const cuts = randomRanges(next, Math.floor(next() * 6));
    const want = expand(rs);
    for (const k of expand(cuts)) want.delete(k);
    const got = subtractRanges(rs, cuts);
    assert.deepEqual(expand(got), want, `round ${round}`);
    assert.equal(countAddresses(got), BigInt(want.size));
    assert.equal(countAddresses(rs), BigInt(expand(rs).size));
    // normalised: sorted, disjoint, not adjacent
    for (let i = 1; i < got.length; i++) {
      const p = got[i - 1] as Range;
      const c = got[i] as Range;
      assert.ok(p.family < c.family || p.last + 1n < c.first, `round ${round}: ${i} not normalised`);
    }
    const norm = normalizeRanges(rs);
    assert.deepEqual(expand(norm), expand(rs));
  }
});

test('subtractRange and intersectRange on the edges', () => {
  const r = makeRange(4, 10n, 20n);
  assert.deepEqual(subtractRange(r, makeRange(4, 10n, 20n)), []);
  assert.deepEqual(subtractRange(r, makeRange(4, 15n, 15n)), [makeRange(4, 10n, 14n), makeRange(4, 16n, 20n)]);
  assert.deepEqual(subtractRange(r, makeRange(4, 0n, 10n)), [makeRange(4, 11n, 20n)]);
  assert.deepEqual(subtractRange(r, makeRange(6, 0n, 100n)), [r], 'other family untouched');
  assert.deepEqual(intersectRange(r, makeRange(4, 18n, 30n)), makeRange(4, 18n, 20n));
  assert.equal(intersectRange(r, makeRange(4, 21n, 30n)), undefined);
});

test('addressAt/indexOfAddress are inverses over the list order, across IPv6 /48 sizes', () => {
  const big = cidrRange(cidr('2001:db8:abcd::/48'));
  const rs = [makeRange(4, 100n, 104n), big, makeRange(4, 10n, 11n)];
  assert.equal(addressAt(rs, 0n), 100n);
  assert.equal(addressAt(rs, 4n), 104n);
  assert.equal(addressAt(rs, 5n), big.first);
  const lastOfBig = 5n + 2n ** 80n - 1n;
  assert.equal(addressAt(rs, lastOfBig), big.last);
  assert.equal(addressAt(rs, lastOfBig + 1n), 10n);
  assert.equal(addressAt(rs, lastOfBig + 3n), undefined);
  assert.equal(addressAt(rs, -1n), undefined);
  for (const idx of [0n, 3n, 5n, 5n + 2n ** 70n, lastOfBig, lastOfBig + 2n]) {
    const n = addressAt(rs, idx) as bigint;
    const fam = idx >= 5n && idx <= lastOfBig ? 6 : 4;
    assert.equal(indexOfAddress(rs, fam, n), idx);
  }
  assert.equal(indexOfAddress(rs, 4, 50n), undefined);
});

// brute-force round-robin: the list flattened, rotated to start after `from`
function bruteWalk(rs: Range[], from: { family: 4 | 6; n: bigint } | undefined, after: boolean, skip: (n: bigint) => boolean): string[] {
  const flat: string[] = [];
  for (const r of rs) for (let n = r.first; n <= r.last; n++) flat.push(`${r.family}/${n}`);
  let start = 0;
  if (from) {
    const i = flat.indexOf(`${from.family}/${from.n}`);
    if (i >= 0) start = after ? (i + 1) % flat.length : i;
  }
  return [...flat.slice(start), ...flat.slice(0, start)].filter((k) => !skip(BigInt(k.split('/')[1] as string)));
}

test('walkRanges visits every address once, round-robin from a start, with skips', () => {
  const next = rng(42);
  for (let round = 0; round < 200; round++) {
    // disjoint ranges in a random (not sorted) list order, as a range set in config order
    const rs = normalizeRanges(randomRanges(next, 1 + Math.floor(next() * 4))).sort(() => next() - 0.5);
    const all = rs.flatMap((r) => Array.from({ length: Number(r.last - r.first + 1n) }, (_, i) => ({ family: r.family, n: r.first + BigInt(i) })));
    const pick = all[Math.floor(next() * all.length)];
    const from = next() < 0.2 ? { family: 4 as const, n: 9999n } : pick;
    const after = next() < 0.5;
    const mod = 2n + BigInt(Math.floor(next() * 5));
    const skip = (n: bigint) => n % mod === 0n;
    const got = [...walkRanges(rs, { from, after, skip: (_f, n) => skip(n) })].map((a) => `${a.family}/${a.n}`);
    assert.deepEqual(got, bruteWalk(rs, from, after, skip), `round ${round}`);
  }
  assert.deepEqual([...walkRanges([])], []);
  // lazy: taking three addresses of a /48 is instant
  const it = walkRanges([cidrRange(cidr('2001:db8::/48'))], { from: { family: 6, n: cidrLast(cidr('2001:db8::/48')) }, after: true });
  const first3 = [it.next(), it.next(), it.next()].map((r) => (r.done ? 'done' : formatIP(bigIntToIP(r.value.n, 6))));
  assert.deepEqual(first3, ['2001:db8::', '2001:db8::1', '2001:db8::2']);
});
