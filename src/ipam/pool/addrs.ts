// Address math for the pool IPAM on bigint (an IPv6 /48 has 2^80 addresses; Whereabouts' uint64
// offsets reach only the first /65) and the range syntaxes pool users write: CIDR, Whereabouts'
// `start-end/prefix`, MetalLB's `a-b` (v4 and v6), Kube-OVN's `a..b`, a bare address. Pure.
import { formatIP, parseCidr, parseIP, type Family, type IPAddr } from '../../cni/addr';

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

export function toBig(ip: IPAddr): bigint {
  let v = 0n;
  for (const b of ip.bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function fromBig(v: bigint, family: Family): IPAddr {
  const n = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family, bytes };
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

/** Sorted, merged spans: what an allocator walks around. */
export function normalize(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Span[] = [];
  for (const s of sorted) {
    const prev = out[out.length - 1];
    if (prev && s.lo <= prev.hi + 1n) {
      if (s.hi > prev.hi) prev.hi = s.hi;
    } else out.push({ lo: s.lo, hi: s.hi });
  }
  return out;
}

/** The pieces of `from` not covered by `holes` (normalised). */
export function subtract(from: Span, holes: readonly Span[]): Span[] {
  const out: Span[] = [];
  let cur = from.lo;
  for (const h of holes) {
    if (h.hi < cur) continue;
    if (h.lo > from.hi) break;
    if (h.lo > cur) out.push({ lo: cur, hi: h.lo - 1n });
    cur = h.hi + 1n;
    if (cur > from.hi) return out;
  }
  if (cur <= from.hi) out.push({ lo: cur, hi: from.hi });
  return out;
}

export function count(spans: readonly Span[]): bigint {
  return spans.reduce((n, s) => n + (s.hi - s.lo + 1n), 0n);
}
