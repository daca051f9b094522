// Address arithmetic on bigints, on top of src/cni/addr.ts's IPAddr and Cidr. Pure: data in, data
// out. bigint because IPv6 pools are routinely wider than 2^53 addresses (a /64 and anything above
// it), and an IPAM that does its sums in doubles (Whereabouts) silently addresses only part of them.
import type { Cidr, Family, IPAddr } from '../cni/addr';

export function familyBits(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** How many addresses the family has: 2^32 or 2^128. */
export function familySize(family: Family): bigint {
  return 1n << BigInt(familyBits(family));
}

/** The largest address of the family as a number. */
export function familyMax(family: Family): bigint {
  return familySize(family) - 1n;
}

export function ipToBigInt(ip: IPAddr): bigint {
  let n = 0n;
  for (const b of ip.bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** The address with number `n` in `family`; RangeError when n is outside the family. */
export function bigIntToIP(n: bigint, family: Family): IPAddr {
  if (n < 0n || n > familyMax(family)) throw new RangeError(`${n} is not an IPv${family} address`);
  const len = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(len);
  let v = n;
  for (let i = len - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family, bytes };
}

/** The netmask of a prefix length as a number (all ones in the first `prefix` bits). */
export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(familyBits(family));
  if (prefix < 0 || BigInt(prefix) > bits) throw new RangeError(`/${prefix} is not an IPv${family} prefix`);
  return familyMax(family) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** How many addresses a CIDR spans, network and broadcast included. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.ip.family) - c.prefix);
}

/** The CIDR's network address (host bits cleared) as a number. */
export function cidrFirst(c: Cidr): bigint {
  return ipToBigInt(c.ip) & prefixMask(c.ip.family, c.prefix);
}

/** The CIDR's last address (host bits set; the broadcast address in IPv4) as a number. */
export function cidrLast(c: Cidr): bigint {
  return cidrFirst(c) + cidrSize(c) - 1n;
}

/** The same CIDR with its host bits cleared: 10.1.2.3/24 → 10.1.2.0/24. */
export function cidrNetwork(c: Cidr): Cidr {
  return { ip: bigIntToIP(cidrFirst(c), c.ip.family), prefix: c.prefix };
}

/** Whether `ip` lies in `c` (same family, same network bits). */
export function cidrContains(c: Cidr, ip: IPAddr): boolean {
  if (c.ip.family !== ip.family) return false;
  const n = ipToBigInt(ip);
  return n >= cidrFirst(c) && n <= cidrLast(c);
}

/** Whether two CIDRs share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.ip.family !== b.ip.family) return false;
  return cidrFirst(a) <= cidrLast(b) && cidrFirst(b) <= cidrLast(a);
}

/** Total order: IPv4 before IPv6, then numerically. Returns -1, 0 or 1. */
export function compareIP(a: IPAddr, b: IPAddr): -1 | 0 | 1 {
  if (a.family !== b.family) return a.family < b.family ? -1 : 1;
  const x = ipToBigInt(a);
  const y = ipToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function ipEqual(a: IPAddr, b: IPAddr): boolean {
  return compareIP(a, b) === 0;
}

/** `ip + offset` (offset may be negative); undefined when the result leaves the family. */
export function addToIP(ip: IPAddr, offset: bigint): IPAddr | undefined {
  const n = ipToBigInt(ip) + offset;
  if (n < 0n || n > familyMax(ip.family)) return undefined;
  return bigIntToIP(n, ip.family);
}

/** `ip - base` as a number (negative when ip is below base); both must share a family. */
export function ipOffset(base: IPAddr, ip: IPAddr): bigint {
  if (base.family !== ip.family) throw new RangeError('ipOffset: addresses of different families');
  return ipToBigInt(ip) - ipToBigInt(base);
}
