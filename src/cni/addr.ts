// Address helpers for untrusted strings: IPs, CIDRs, hardware addresses, interface names.
// Pure and dependency-free. Parsing is strict the way Go's net package is (libcni and every
// reference plugin parse with it): no IPv6 zones, no leading zeros in IPv4 octets, so a value we
// accept is one the delegates will accept too. Formatting is RFC 5952, which is also what Go prints,
// so canonical strings compare equal to what plugins return.

export type Family = 4 | 6;

export interface IPAddr {
  family: Family;
  /** 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array;
}

export interface Cidr {
  ip: IPAddr;
  prefix: number;
}

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!V4_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseGroups(s: string, allowV4Tail: boolean): number[] | undefined {
  if (s === '') return [];
  const parts = s.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (allowV4Tail && i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (!v4) return undefined;
      groups.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      continue;
    }
    if (!HEX_GROUP.test(p)) return undefined;
    groups.push(parseInt(p, 16));
  }
  return groups;
}

function parseIPv6(s: string): Uint8Array | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0] as string, false);
    const tail = parseGroups(halves[1] as string, true);
    if (!head || !tail) return undefined;
    // "::" stands for at least one zero group (RFC 4291 §2.2).
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    const all = parseGroups(s, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Parses a bare IPv4 or IPv6 address (no prefix, no zone). */
export function parseIP(s: string): IPAddr | undefined {
  if (s.includes(':')) {
    const b = parseIPv6(s);
    return b ? { family: 6, bytes: b } : undefined;
  }
  const b = parseIPv4(s);
  return b ? { family: 4, bytes: b } : undefined;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** RFC 5952 text form: lower case, no leading zeros, longest zero run (≥2 groups, leftmost) as "::". */
export function formatIP(ip: IPAddr): string {
  const b = ip.bytes;
  if (ip.family === 4) return Array.from(b).join('.');
  if (isV4Mapped(b)) return `::ffff:${Array.from(b.subarray(12)).join('.')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The canonical form of an address, or undefined when it is not one. */
export function canonicalIP(s: string): string | undefined {
  const ip = parseIP(s);
  return ip ? formatIP(ip) : undefined;
}

/** Address plus prefix length; the address keeps its host bits ("10.1.2.3/24"), as CNI results do. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ip, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.ip)}/${c.prefix}`;
}

export function canonicalCidr(s: string): string | undefined {
  const c = parseCidr(s);
  return c ? formatCidr(c) : undefined;
}

/** "ip" or "ip/prefix", the form of the `ips` capability and the selection annotation. */
export function parseIPWithOptionalPrefix(s: string): { ip: IPAddr; prefix?: number } | undefined {
  if (s.includes('/')) return parseCidr(s);
  const ip = parseIP(s);
  return ip ? { ip } : undefined;
}

export function canonicalIPWithOptionalPrefix(s: string): string | undefined {
  const v = parseIPWithOptionalPrefix(s);
  if (!v) return undefined;
  return v.prefix === undefined ? formatIP(v.ip) : `${formatIP(v.ip)}/${v.prefix}`;
}

/** The address part of "ip/prefix" (or of a bare ip), canonical; undefined when invalid. */
export function addressOf(s: string): string | undefined {
  const v = parseIPWithOptionalPrefix(s);
  return v ? formatIP(v.ip) : undefined;
}

/**
 * Family as libcni reports it in 0.x results (`ips[].version`): Go's `IP.To4() != nil`, which is
 * also true for IPv4-mapped IPv6 addresses.
 */
export function resultFamily(ip: IPAddr): Family {
  return ip.family === 4 || isV4Mapped(ip.bytes) ? 4 : 6;
}

/** 0.0.0.0/0 or ::/0. */
export function isDefaultDst(c: Cidr): boolean {
  return c.prefix === 0 && c.ip.bytes.every((x) => x === 0);
}

// Hardware addresses, accepted in the forms Go's net.ParseMAC accepts (what plugins parse with):
// aa:bb:.., aa-bb-.., aabb.ccdd.eeff; lengths 6 (Ethernet), 8 (EUI-64, IB GUID), 20 (IPoIB).
export function parseHwAddr(s: string): Uint8Array | undefined {
  let hex: string[];
  if (s.includes(':') || s.includes('-')) {
    const sep = s[2];
    if (sep !== ':' && sep !== '-') return undefined;
    hex = s.split(sep);
    if (!hex.every((h) => /^[0-9a-fA-F]{2}$/.test(h))) return undefined;
  } else if (s.includes('.')) {
    const groups = s.split('.');
    if (!groups.every((g) => /^[0-9a-fA-F]{4}$/.test(g))) return undefined;
    hex = groups.flatMap((g) => [g.slice(0, 2), g.slice(2)]);
  } else {
    return undefined;
  }
  if (![6, 8, 20].includes(hex.length)) return undefined;
  return Uint8Array.from(hex.map((h) => parseInt(h, 16)));
}

export function formatHwAddr(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Lower-case colon form of a hardware address of one of the given byte lengths. */
export function normalizeHwAddr(s: string, lengths: readonly number[] = [6]): string | undefined {
  const b = parseHwAddr(s);
  return b && lengths.includes(b.length) ? formatHwAddr(b) : undefined;
}

const IFNAMSIZ = 16;

/**
 * Why a Linux interface name is unusable, or undefined when it is fine. Same rules as libcni's
 * ValidateInterfaceName (what the runtime applies to CNI_IFNAME): non-empty, at most 15 bytes,
 * not "." or "..", no "/", ":" or whitespace.
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > IFNAMSIZ - 1) return `is longer than ${IFNAMSIZ - 1} bytes`;
  if (name === '.' || name === '..') return 'must not be "." or ".."';
  if (/[\s/:]/u.test(name)) return 'must not contain "/", ":" or whitespace';
  return undefined;
}
