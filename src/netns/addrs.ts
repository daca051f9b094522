// IPv4 and IPv6 addresses on links (RTM_*ADDR).
import { AF_UNSPEC, IFA, IFA_F, NLM_F, RTM, Scope } from './consts';
import { afOf, familyOfAf, formatIp, formatPrefix, type IpFamily, ipv4Broadcast, parseIp, parsePrefix } from './ipaddr';
import type { Netns } from './netns';
import { type Attr, nla } from './nlattr';
import { decodeIfAddrMsg, encodeIfAddrMsg, messageAttrs, type NlMessage } from './rtnl';

export interface Address {
  index: number;
  family: IpFamily;
  /** The address itself, without prefix. */
  address: string;
  prefixLen: number;
  /** address/prefixLen, as CNI results carry it. */
  cidr: string;
  /** The other end of a point-to-point address, when there is one. */
  peer: string | null;
  broadcast: string | null;
  scope: number;
  /** IFA_F_* (the full 32 bits from IFA_FLAGS when the kernel sent it). */
  flags: number;
  label: string | null;
  /** Seconds; 0xffffffff means forever. Null when the kernel did not say. */
  validLifetime: number | null;
  preferredLifetime: number | null;
}

export interface AddressOptions {
  /** IPv6: skip duplicate address detection, so the address is usable at once. */
  nodad?: boolean;
  /** Do not install the prefix route the kernel adds by default. */
  noPrefixRoute?: boolean;
  /** IPv4 broadcast: computed from the prefix by default (as the reference plugins do); false for none. */
  broadcast?: string | false;
  /** IPv4 label (alias name such as "eth0:1"). */
  label?: string;
  scope?: number;
  peer?: string;
  /** Update an existing address instead of failing with EEXIST. */
  replace?: boolean;
}

export function decodeAddress(msg: NlMessage): Address | null {
  const h = decodeIfAddrMsg(msg.payload);
  const family = familyOfAf(h.family);
  if (!family) return null;
  const a = messageAttrs(msg, 8);
  const local = a.get(IFA.LOCAL);
  const address = a.get(IFA.ADDRESS);
  const own = local ?? address;
  if (!own) return null;
  const cache = a.get(IFA.CACHEINFO);
  const brd = a.get(IFA.BROADCAST);
  return {
    index: h.index,
    family,
    address: formatIp(own),
    prefixLen: h.prefixLen,
    cidr: formatPrefix(own, h.prefixLen),
    peer: local && address && !local.equals(address) ? formatIp(address) : null,
    broadcast: brd ? formatIp(brd) : null,
    scope: h.scope,
    flags: a.u32(IFA.FLAGS) ?? h.flags,
    label: a.str(IFA.LABEL) ?? null,
    preferredLifetime: cache && cache.length >= 8 ? cache.readUInt32LE(0) : null,
    validLifetime: cache && cache.length >= 8 ? cache.readUInt32LE(4) : null,
  };
}

export function listAddrs(ns: Netns, filter: { family?: IpFamily; index?: number } = {}): Address[] {
  const af = filter.family ? afOf(filter.family) : AF_UNSPEC;
  const msgs = ns.dump(RTM.GETADDR, encodeIfAddrMsg({ family: af, prefixLen: 0, flags: 0, scope: 0, index: 0 }), [], 'list addresses');
  const out: Address[] = [];
  for (const m of msgs) {
    if (m.type !== RTM.NEWADDR) continue;
    const addr = decodeAddress(m);
    if (addr && (filter.index === undefined || addr.index === filter.index)) out.push(addr);
  }
  return out;
}

/** The header and attributes naming one address on one link (shared by add and delete). */
export function encodeAddress(index: number, cidr: string, o: AddressOptions = {}, forDelete = false): { header: Buffer; attrs: Attr[] } {
  const p = parsePrefix(cidr);
  const peer = o.peer !== undefined ? parseIp(o.peer) : null;
  if (peer && peer.family !== p.family) throw new TypeError(`peer ${o.peer} is not of the same family as ${cidr}`);
  const flags = forDelete ? 0 : (o.nodad ? IFA_F.NODAD : 0) | (o.noPrefixRoute ? IFA_F.NOPREFIXROUTE : 0);
  const loopback = p.family === 4 ? p.bytes[0] === 127 : p.bytes.equals(parseIp('::1').bytes);
  const scope = o.scope ?? (loopback ? Scope.host : Scope.universe);
  const header = encodeIfAddrMsg({ family: afOf(p.family), prefixLen: p.prefixLen, flags, scope, index });
  const attrs: Attr[] = [];
  if (p.family === 4 || peer) {
    // IFA_LOCAL is the address; IFA_ADDRESS is the peer on point-to-point links, else the same.
    attrs.push(nla.bytes(IFA.LOCAL, p.bytes), nla.bytes(IFA.ADDRESS, peer ? peer.bytes : p.bytes));
  } else {
    attrs.push(nla.bytes(IFA.ADDRESS, p.bytes));
  }
  if (forDelete) return { header, attrs };
  if (p.family === 4 && o.broadcast !== false && !peer) {
    if (o.broadcast !== undefined) attrs.push(nla.bytes(IFA.BROADCAST, parseIp(o.broadcast).bytes));
    else if (p.prefixLen < 31) attrs.push(nla.bytes(IFA.BROADCAST, ipv4Broadcast(p.bytes, p.prefixLen)));
  }
  if (o.label !== undefined) attrs.push(nla.str(IFA.LABEL, o.label));
  // ifa_flags holds only 8 bits; IFA_FLAGS carries the full set (noprefixroute is bit 9).
  if (flags) attrs.push(nla.u32(IFA.FLAGS, flags));
  return { header, attrs };
}

export function addAddr(ns: Netns, index: number, cidr: string, o: AddressOptions = {}): void {
  const { header, attrs } = encodeAddress(index, cidr, o);
  const flags = o.replace ? NLM_F.CREATE | NLM_F.REPLACE : NLM_F.CREATE | NLM_F.EXCL;
  ns.request(RTM.NEWADDR, flags, header, attrs, `add address ${cidr} on link #${index}`);
}

export function delAddr(ns: Netns, index: number, cidr: string): void {
  const { header, attrs } = encodeAddress(index, cidr, {}, true);
  ns.request(RTM.DELADDR, 0, header, attrs, `delete address ${cidr} from link #${index}`);
}
