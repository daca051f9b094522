// Address bytes for netlink: strings in, network-order bytes out, and back, formatted the way
// inet_ntop (and so `ip -j`) prints them, so results compare equal to the kernel's view.
import { AF_INET, AF_INET6 } from './consts';

export type IpFamily = 4 | 6;

export interface IpPrefix {
  family: IpFamily;
  /** Network-order bytes, 4 or 16. */
  bytes: Buffer;
  prefixLen: number;
}

export const afOf = (family: IpFamily): number => (family === 4 ? AF_INET : AF_INET6);
export const familyOfAf = (af: number): IpFamily | null => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : null);

// Parsed by hand rather than with node:net's isIP: requiring node:net and compiling its IPv6
// regex costs ~5 ms at start-up, paid by every CNI call.
const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;

function parseIpv4(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return null;
  return Buffer.from(parts.map(Number));
}

function parseIpv6(text: string): Buffer | null {
  let s = text.replace(/%[^%]+$/, ''); // a zone id does not go on the wire
  // A trailing dotted quad (::ffff:1.2.3.4) is the last two words written another way.
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const words = (x: string): number[] | null => {
    if (x === '') return [];
    const out: number[] = [];
    for (const w of x.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return null;
      out.push(parseInt(w, 16));
    }
    return out;
  };
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const left = words(halves[0] ?? '');
  const right = halves.length === 2 ? words(halves[1] ?? '') : [];
  if (!left || !right) return null;
  const given = left.length + right.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const all = [...left, ...new Array<number>(8 - given).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

export function parseIp(text: string): { family: IpFamily; bytes: Buffer } {
  const v4 = text.includes(':') ? null : parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = text.includes(':') ? parseIpv6(text) : null;
  if (v6) return { family: 6, bytes: v6 };
  throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
}

export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const w = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run of two or more zero words (the first of equals).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  // glibc prints IPv4-compatible and IPv4-mapped addresses with a dotted quad.
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
    return (bestLen === 5 ? '::ffff:' : '::') + formatIp(bytes.subarray(12));
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** "10.0.0.1/24" or a bare address (a host prefix). Host bits are kept: addresses need them. */
export function parsePrefix(text: string): IpPrefix {
  const slash = text.indexOf('/');
  const { family, bytes } = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefixLen = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || prefixLen > max) throw new TypeError(`bad prefix length in ${JSON.stringify(text)}`);
  return { family, bytes, prefixLen };
}

export function formatPrefix(bytes: Buffer, prefixLen: number): string {
  return `${formatIp(bytes)}/${prefixLen}`;
}

/** The broadcast address of an IPv4 prefix: host bits all set. */
export function ipv4Broadcast(bytes: Buffer, prefixLen: number): Buffer {
  const host = prefixLen === 0 ? 0xffffffff : (0xffffffff >>> prefixLen) >>> 0;
  const out = Buffer.alloc(4);
  out.writeUInt32BE((bytes.readUInt32BE(0) | host) >>> 0);
  return out;
}

/** The prefix with host bits cleared ("10.0.0.7/24" -> 10.0.0.0). */
export function networkOf(p: IpPrefix): Buffer {
  const out = Buffer.from(p.bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, p.prefixLen - i * 8));
    out[i] = (out[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

export function parseMac(text: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}

export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
