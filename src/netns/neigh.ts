// Neighbour (ARP / NDP) entries (RTM_*NEIGH).
import { AF_UNSPEC, NDA, NLM_F, NUD, RTM } from './consts';
import { afOf, familyOfAf, formatIp, formatMac, type IpFamily, parseIp, parseMac } from './ipaddr';
import type { Netns } from './netns';
import { type Attr, nla } from './nlattr';
import { decodeNdMsg, encodeNdMsg, messageAttrs, type NlMessage } from './rtnl';

export interface Neighbour {
  family: IpFamily;
  index: number;
  ip: string;
  /** Null while the entry is unresolved (incomplete, failed). */
  mac: string | null;
  /** NUD_* state bits. */
  state: number;
  /** NTF_* flags. */
  flags: number;
}

export interface NeighbourSpec {
  index: number;
  ip: string;
  mac: string;
  /** NUD_* state; default permanent. */
  state?: number;
  /** Overwrite an existing entry (default true: the wanted end state is what matters). */
  replace?: boolean;
}

export function decodeNeighbour(msg: NlMessage): Neighbour | null {
  const h = decodeNdMsg(msg.payload);
  const family = familyOfAf(h.family);
  if (!family) return null;
  const a = messageAttrs(msg, 12);
  const dst = a.get(NDA.DST);
  if (!dst || (dst.length !== 4 && dst.length !== 16)) return null;
  const ll = a.get(NDA.LLADDR);
  return { family, index: h.index, ip: formatIp(dst), mac: ll && ll.length > 0 ? formatMac(ll) : null, state: h.state, flags: h.flags };
}

export function listNeighbours(ns: Netns, filter: { family?: IpFamily; index?: number } = {}): Neighbour[] {
  const af = filter.family ? afOf(filter.family) : AF_UNSPEC;
  const out: Neighbour[] = [];
  for (const m of ns.dump(RTM.GETNEIGH, encodeNdMsg({ family: af, index: 0, state: 0, flags: 0, type: 0 }), [], 'list neighbours')) {
    if (m.type !== RTM.NEWNEIGH) continue;
    const n = decodeNeighbour(m);
    if (n && (filter.index === undefined || n.index === filter.index)) out.push(n);
  }
  return out;
}

export function encodeNeighbour(spec: { index: number; ip: string; mac?: string; state?: number }): { header: Buffer; attrs: Attr[] } {
  const ip = parseIp(spec.ip);
  const attrs: Attr[] = [nla.bytes(NDA.DST, ip.bytes)];
  if (spec.mac !== undefined) attrs.push(nla.bytes(NDA.LLADDR, parseMac(spec.mac)));
  const header = encodeNdMsg({ family: afOf(ip.family), index: spec.index, state: spec.state ?? NUD.PERMANENT, flags: 0, type: 0 });
  return { header, attrs };
}

export function addNeighbour(ns: Netns, spec: NeighbourSpec): void {
  const { header, attrs } = encodeNeighbour(spec);
  const flags = spec.replace === false ? NLM_F.CREATE | NLM_F.EXCL : NLM_F.CREATE | NLM_F.REPLACE;
  ns.request(RTM.NEWNEIGH, flags, header, attrs, `add neighbour ${spec.ip} lladdr ${spec.mac} on link #${spec.index}`);
}

export function delNeighbour(ns: Netns, index: number, ip: string): void {
  const { header, attrs } = encodeNeighbour({ index, ip, state: 0 });
  ns.request(RTM.DELNEIGH, 0, header, attrs, `delete neighbour ${ip} on link #${index}`);
}
