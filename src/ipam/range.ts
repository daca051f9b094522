// Inclusive address ranges as bigint pairs, and the set operations IPAMs are built from: subtract
// exclusions, count, index into a set by offset (pools key allocations by offset), walk a set from
// a starting point round-robin while skipping addresses. Pure: data in, data out; no syntax here
// (each IPAM parses its own range forms into these).
import { formatIP, type Cidr, type Family, type IPAddr } from '../cni/addr';
import { bigIntToIP, cidrFirst, cidrLast, familyMax, ipToBigInt } from './ip';

/** Every address from `first` to `last`, both included, of one family. */
export interface Range {
  family: Family;
  first: bigint;
  last: bigint;
}

/** A range; RangeError when first > last or either lies outside the family. */
export function makeRange(family: Family, first: bigint, last: bigint): Range {
  if (first < 0n || last > familyMax(family) || first > last) {
    throw new RangeError(`invalid IPv${family} range ${first}-${last}`);
  }
  return { family, first, last };
}

/** The range from one address to another (same family, first ≤ last), or undefined. */
export function rangeBetween(first: IPAddr, last: IPAddr): Range | undefined {
  if (first.family !== last.family) return undefined;
  const a = ipToBigInt(first);
  const b = ipToBigInt(last);
  return a <= b ? { family: first.family, first: a, last: b } : undefined;
}

/** Every address of a CIDR, network and broadcast included. */
export function cidrRange(c: Cidr): Range {
  return { family: c.ip.family, first: cidrFirst(c), last: cidrLast(c) };
}

/**
 * The addresses of a CIDR a host may hold, the way host-local counts them: without the network
 * address, and in IPv4 without the broadcast address. Undefined when nothing is left (an IPv4 /31
 * or /32, an IPv6 /128).
 */
export function hostRange(c: Cidr): Range | undefined {
  const first = cidrFirst(c) + 1n;
  const last = c.ip.family === 4 ? cidrLast(c) - 1n : cidrLast(c);
  return first <= last ? { family: c.ip.family, first, last } : undefined;
}

export function rangeSize(r: Range): bigint {
  return r.last - r.first + 1n;
}

export function rangeContains(r: Range, n: bigint): boolean {
  return n >= r.first && n <= r.last;
}

export function rangeContainsIP(r: Range, ip: IPAddr): boolean {
  return ip.family === r.family && rangeContains(r, ipToBigInt(ip));
}

export function rangesOverlap(a: Range, b: Range): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** Whether `inner` lies entirely inside `outer`. */
export function rangeWithin(inner: Range, outer: Range): boolean {
  return inner.family === outer.family && inner.first >= outer.first && inner.last <= outer.last;
}

export function intersectRange(a: Range, b: Range): Range | undefined {
  if (!rangesOverlap(a, b)) return undefined;
  return { family: a.family, first: a.first > b.first ? a.first : b.first, last: a.last < b.last ? a.last : b.last };
}

/** `r` without the addresses of `cut`: zero, one or two ranges, in order. */
export function subtractRange(r: Range, cut: Range): Range[] {
  if (!rangesOverlap(r, cut)) return [r];
  const out: Range[] = [];
  if (cut.first > r.first) out.push({ family: r.family, first: r.first, last: cut.first - 1n });
  if (cut.last < r.last) out.push({ family: r.family, first: cut.last + 1n, last: r.last });
  return out;
}

function compareRanges(a: Range, b: Range): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.first < b.first ? -1 : a.first > b.first ? 1 : a.last < b.last ? -1 : a.last > b.last ? 1 : 0;
}

/** Sorted (IPv4 first), with overlapping and adjacent ranges of a family merged. */
export function normalizeRanges(rs: readonly Range[]): Range[] {
  const sorted = [...rs].sort(compareRanges);
  const out: Range[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && prev.family === r.family && r.first <= prev.last + 1n) {
      if (r.last > prev.last) out[out.length - 1] = { ...prev, last: r.last };
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** The addresses of `rs` not in any of `cuts`, normalised. O((n + m) log(n + m)). */
export function subtractRanges(rs: readonly Range[], cuts: readonly Range[]): Range[] {
  const base = normalizeRanges(rs);
  const holes = normalizeRanges(cuts);
  const out: Range[] = [];
  let h = 0;
  for (const r of base) {
    let cur: Range | undefined = r;
    // holes are sorted; skip those wholly before this range (they cannot touch later ones either)
    while (h < holes.length && compareFamilyEnd(holes[h] as Range, r) < 0) h++;
    for (let i = h; cur && i < holes.length; i++) {
      const hole = holes[i] as Range;
      if (hole.family !== r.family || hole.first > cur.last) break;
      const parts = subtractRange(cur, hole);
      if (parts.length === 2) {
        out.push(parts[0] as Range);
        cur = parts[1];
      } else if (parts.length === 1) {
        const p = parts[0] as Range;
        if (p.last < hole.first) {
          out.push(p);
          cur = undefined;
        } else {
          cur = p;
        }
      } else {
        cur = undefined;
      }
    }
    if (cur) out.push(cur);
  }
  return out;
}

// <0 when `hole` ends before `r` starts (or belongs to an earlier family)
function compareFamilyEnd(hole: Range, r: Range): number {
  if (hole.family !== r.family) return hole.family - r.family;
  return hole.last < r.first ? -1 : 0;
}

/** How many addresses the ranges hold together (overlaps counted once). */
export function countAddresses(rs: readonly Range[]): bigint {
  return normalizeRanges(rs).reduce((n, r) => n + rangeSize(r), 0n);
}

/**
 * The address at position `index` (0-based) of the range list taken in the order given, or
 * undefined past its end. The list is not normalised: callers that key allocations by offset keep
 * their own order.
 */
export function addressAt(rs: readonly Range[], index: bigint): bigint | undefined {
  if (index < 0n) return undefined;
  let i = index;
  for (const r of rs) {
    const size = rangeSize(r);
    if (i < size) return r.first + i;
    i -= size;
  }
  return undefined;
}

/** The position of address `n` of `family` in the range list as given (inverse of addressAt). */
export function indexOfAddress(rs: readonly Range[], family: Family, n: bigint): bigint | undefined {
  let base = 0n;
  for (const r of rs) {
    if (r.family === family && rangeContains(r, n)) return base + (n - r.first);
    base += rangeSize(r);
  }
  return undefined;
}

export interface WalkOptions {
  /** Start at this address (or the next one in the list after it); default: the list's first. */
  from?: { family: Family; n: bigint };
  /** Start strictly after `from` instead of at it (round-robin after the last handed out). */
  after?: boolean;
  /** Addresses to pass over (gateway, reserved, avoidBuggyIPs ...). */
  skip?: (family: Family, n: bigint) => boolean;
}

/**
 * Each address of the list once, in list order, starting at `from` and wrapping round to the
 * start: the walk a round-robin allocator makes. Lazy, so a /48 costs only what is consumed.
 */
export function* walkRanges(rs: readonly Range[], opts: WalkOptions = {}): Generator<{ family: Family; n: bigint }> {
  if (rs.length === 0) return;
  let startIdx = 0;
  let startN = (rs[0] as Range).first;
  const from = opts.from;
  if (from) {
    const idx = rs.findIndex((r) => r.family === from.family && rangeContains(r, from.n));
    if (idx >= 0) {
      startIdx = idx;
      startN = from.n;
      if (opts.after) {
        if (startN < (rs[idx] as Range).last) startN += 1n;
        else {
          startIdx = (idx + 1) % rs.length;
          startN = (rs[startIdx] as Range).first;
        }
      }
    }
  }
  const total = rs.length;
  for (let k = 0; k <= total; k++) {
    const idx = (startIdx + k) % total;
    const r = rs[idx] as Range;
    // the starting range is visited twice: its tail first, its head last
    let lo = r.first;
    let hi = r.last;
    if (k === 0) lo = startN;
    else if (k === total) {
      if (startN === r.first) break;
      hi = startN - 1n;
    }
    for (let n = lo; n <= hi; n++) {
      if (opts.skip?.(r.family, n)) continue;
      yield { family: r.family, n };
    }
  }
}

export function rangeFirstIP(r: Range): IPAddr {
  return bigIntToIP(r.first, r.family);
}

export function rangeLastIP(r: Range): IPAddr {
  return bigIntToIP(r.last, r.family);
}

/** "first-last" for messages (one address alone when first = last). */
export function formatRange(r: Range): string {
  const a = formatIP(rangeFirstIP(r));
  return r.first === r.last ? a : `${a}-${formatIP(rangeLastIP(r))}`;
}
