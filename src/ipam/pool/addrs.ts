// The pool IPAM's view of the shared address core (src/ipam/ip.ts, range.ts: bigint, so an IPv6
// /48's 2^80 addresses work where Whereabouts' uint64 offsets reach only the first /65), plus the
// range syntaxes pool users write: CIDR, Whereabouts' `start-end/prefix`, MetalLB's `a-b` (v4 and
// v6), Kube-OVN's `a..b`, a bare address. Pure. Spans are one family's inclusive [lo, hi].
import { formatIP, parseCidr, parseIP, type Family, type IPAddr } from '../../cni/addr';
import { bigIntToIP, ipToBigInt } from '../ip';
import { normalizeRanges, subtractRanges, type Range } from '../range';

export interface Net {
  family: Family;
  /** Network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

/** Inclusive [lo, hi]. */
export interface Span {
  lo: bigint;
  hi: bigint;
}

export function bits(f: Family): number {
  return f === 4 ? 32 : 128;
}

export const toBig: (ip: IPAddr) => bigint = ipToBigInt;

export function fromBig(v: bigint, family: Family): IPAddr {
  return bigIntToIP(v, family);
}

export function ipString(v: bigint, family: Family): string {
  return formatIP(fromBig(v, family));
}

export function size(n: Net): bigint {
  return 1n << BigInt(bits(n.family) - n.prefix);
}

export function last(n: Net): bigint {
  return n.base + size(n) - 1n;
}

export function contains(n: Net, v: bigint): boolean {
  return v >= n.base && v <= last(n);
}

export function netString(n: Net): string {
  return `${ipString(n.base, n.family)}/${n.prefix}`;
}

/** The network a CIDR string names, host bits cleared (Go's ParseCIDR's *IPNet). */
export function parseNet(s: string): Net | undefined {
  const c = parseCidr(s.trim());
  if (!c) return undefined;
  const width = BigInt(bits(c.ip.family) - c.prefix);
  const base = (toBig(c.ip) >> width) << width;
  return { family: c.ip.family, base, prefix: c.prefix };
}

/** The smallest network holding both addresses: the subnet a MetalLB `a-b` range lives in. */
export function enclosing(lo: bigint, hi: bigint, family: Family): Net {
  let prefix = bits(family);
  while (prefix > 0 && !(contains({ family, base: (lo >> BigInt(bits(family) - prefix)) << BigInt(bits(family) - prefix), prefix }, hi))) prefix--;
  const width = BigInt(bits(family) - prefix);
  return { family, base: (lo >> width) << width, prefix };
}

export function addr(s: string): { v: bigint; family: Family } | undefined {
  const ip = parseIP(s.trim());
  return ip ? { v: toBig(ip), family: ip.family } : undefined;
}

/**
 * A set of addresses as the seeds write them in `exclude` and MetalLB pools: `cidr`, `a-b`,
 * `a..b`, or one address. Undefined when it is none of those, or mixes families, or runs backwards.
 */
export function parseSpan(s: string): { span: Span; family: Family } | undefined {
  const t = s.trim();
  const sep = t.includes('..') ? '..' : !t.includes('/') && t.includes('-') ? '-' : undefined;
  if (sep) {
    const [a, b, ...more] = t.split(sep);
    const x = addr(a ?? '');
    const y = addr(b ?? '');
    if (more.length || !x || !y || x.family !== y.family || x.v > y.v) return undefined;
    return { span: { lo: x.v, hi: y.v }, family: x.family };
  }
  if (t.includes('/')) {
    const n = parseNet(t);
    return n ? { span: { lo: n.base, hi: last(n) }, family: n.family } : undefined;
  }
  const x = addr(t);
  return x ? { span: { lo: x.v, hi: x.v }, family: x.family } : undefined;
}

// Spans are one family's, so the core's ranges are built with a fixed family and dropped again.
const asRange = (s: Span): Range => ({ family: 6, first: s.lo, last: s.hi });
const asSpan = (r: Range): Span => ({ lo: r.first, hi: r.last });

/** Sorted, merged spans: what an allocator walks around. */
export function normalize(spans: readonly Span[]): Span[] {
  return normalizeRanges(spans.map(asRange)).map(asSpan);
}

/** The pieces of `from` not covered by `holes`. */
export function subtract(from: Span, holes: readonly Span[]): Span[] {
  return subtractRanges([asRange(from)], holes.map(asRange)).map(asSpan);
}
