// Address announcements after a MAC or address moves: a gratuitous ARP for IPv4 and an
// unsolicited neighbour advertisement for IPv6, so neighbours update their caches at once instead
// of sending traffic to the old MAC until their entries expire. The frames are built here (pure)
// and sent through an AF_PACKET socket created inside the namespace.
import { parseIp, parseMac } from './ipaddr';
import { type Netns, sendRawFrames } from './netns';

const BROADCAST = Buffer.from('ffffffffffff', 'hex');
const ALL_NODES_MAC = Buffer.from('333300000001', 'hex');
const ALL_NODES_IP = Buffer.from('ff020000000000000000000000000001', 'hex');
const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
const MIN_FRAME = 60; // Ethernet minimum without FCS; veth does not pad short frames itself

function ethernet(dst: Buffer, src: Buffer, etherType: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(Math.max(MIN_FRAME, 14 + payload.length));
  dst.copy(frame, 0);
  src.copy(frame, 6);
  frame.writeUInt16BE(etherType, 12);
  payload.copy(frame, 14);
  return frame;
}

/** A gratuitous ARP request (sender = target = ip), broadcast, as `arping -U` sends it. */
export function gratuitousArpFrame(mac: string, ipv4: string): Buffer {
  const hw = parseMac(mac);
  const ip = parseIp(ipv4);
  if (ip.family !== 4) throw new TypeError(`gratuitous ARP needs an IPv4 address, not ${ipv4}`);
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); // Ethernet
  arp.writeUInt16BE(0x0800, 2); // IPv4
  arp.writeUInt8(6, 4);
  arp.writeUInt8(4, 5);
  arp.writeUInt16BE(1, 6); // request
  hw.copy(arp, 8);
  ip.bytes.copy(arp, 14);
  ip.bytes.copy(arp, 24); // target hardware address stays zero
  return ethernet(BROADCAST, hw, ETH_P_ARP, arp);
}

function checksum(chunks: Buffer[]): number {
  let sum = 0;
  for (const c of chunks) {
    for (let i = 0; i + 1 < c.length; i += 2) sum += c.readUInt16BE(i);
    if (c.length % 2) sum += (c[c.length - 1] ?? 0) << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * An unsolicited neighbour advertisement to all nodes (RFC 4861 §7.2.6): override flag set,
 * target link-layer address option, hop limit 255 (receivers drop anything else).
 */
export function unsolicitedNaFrame(mac: string, ipv6: string): Buffer {
  const hw = parseMac(mac);
  const ip = parseIp(ipv6);
  if (ip.family !== 6) throw new TypeError(`a neighbour advertisement needs an IPv6 address, not ${ipv6}`);
  const icmp = Buffer.alloc(32);
  icmp.writeUInt8(136, 0); // neighbour advertisement
  icmp.writeUInt32BE(0x20000000, 4); // O (override)
  ip.bytes.copy(icmp, 8);
  icmp.writeUInt8(2, 24); // option: target link-layer address
  icmp.writeUInt8(1, 25); // length in units of 8 bytes
  hw.copy(icmp, 26);
  const pseudo = Buffer.alloc(40);
  ip.bytes.copy(pseudo, 0);
  ALL_NODES_IP.copy(pseudo, 16);
  pseudo.writeUInt32BE(icmp.length, 32);
  pseudo.writeUInt8(58, 39);
  icmp.writeUInt16BE(checksum([pseudo, icmp]), 2);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(icmp.length, 4);
  ip6.writeUInt8(58, 6); // ICMPv6
  ip6.writeUInt8(255, 7);
  ip.bytes.copy(ip6, 8);
  ALL_NODES_IP.copy(ip6, 24);
  return ethernet(ALL_NODES_MAC, hw, ETH_P_IPV6, Buffer.concat([ip6, icmp]));
}

/** Announces each ip (v4 or v6) as reachable at mac out of the link ifindex in ns, in one socket. */
export function announceAddresses(ns: Netns, ifindex: number, mac: string, ips: readonly string[]): void {
  if (ips.length === 0) return;
  sendRawFrames(ns, ifindex, ips.map((ip) => (parseIp(ip).family === 4 ? gratuitousArpFrame(mac, ip) : unsolicitedNaFrame(mac, ip))));
}

export function announceAddress(ns: Netns, ifindex: number, mac: string, ip: string): void {
  announceAddresses(ns, ifindex, mac, [ip]);
}
