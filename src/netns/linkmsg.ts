// RTM_*LINK messages: the Link record decoded from the kernel's answer, and the pure encoders
// for creating, changing and deleting links.
import { AF_UNSPEC, IFF, IFLA, IFLA_INFO, OPER_STATES, RTEXT_FILTER } from './consts';
import { type BridgePortInfo, decodeBridgePort, decodeKindInfo, type LinkKindInfo, type LinkKindSpec, linkInfoAttr } from './linkinfo';
import { formatMac, parseMac } from './ipaddr';
import { type Attr, nla } from './nlattr';
import { decodeIfInfoMsg, encodeIfInfoMsg, messageAttrs, type NlMessage } from './rtnl';

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'veth', 'bridge', 'macvlan', ...; null for physical devices and loopback. */
  kind: string | null;
  /** IFF_* flags as the kernel reports them. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  operState: string;
  mtu: number;
  /** Hardware address, lower case with colons; null when the device has none. */
  mac: string | null;
  permanentMac: string | null;
  /** ifindex of the master (bridge, bond, vrf), 0 for none. */
  masterIndex: number;
  /** IFLA_LINK: the parent (macvlan, vlan) or peer (veth) ifindex, 0 for none. */
  parentIndex: number;
  /** Set when parentIndex lives in another namespace: that namespace's id as seen from here. */
  parentNetnsId: number | null;
  group: number;
  alias: string | null;
  txQueueLen: number | null;
  /** ARPHRD_* hardware type. */
  hwType: number;
  info: LinkKindInfo | null;
  /** Kind of the master this link is a port of ('bridge', 'bond'), from IFLA_INFO_SLAVE_KIND. */
  portKind: string | null;
  bridgePort: BridgePortInfo | null;
}

export function decodeLink(msg: NlMessage): Link {
  const h = decodeIfInfoMsg(msg.payload);
  const a = messageAttrs(msg, 16);
  const linkinfo = a.nested(IFLA.LINKINFO);
  const kind = linkinfo?.str(IFLA_INFO.KIND) ?? null;
  const portKind = linkinfo?.str(IFLA_INFO.SLAVE_KIND) ?? null;
  const portData = linkinfo?.nested(IFLA_INFO.SLAVE_DATA);
  const mac = a.get(IFLA.ADDRESS);
  const perm = a.get(IFLA.PERM_ADDRESS);
  const oper = a.u8(IFLA.OPERSTATE);
  return {
    index: h.index,
    name: a.str(IFLA.IFNAME) ?? '',
    kind,
    flags: h.flags,
    up: (h.flags & IFF.UP) !== 0,
    operState: oper === undefined ? 'unknown' : (OPER_STATES[oper] ?? 'unknown'),
    mtu: a.u32(IFLA.MTU) ?? 0,
    mac: mac && mac.length > 0 ? formatMac(mac) : null,
    permanentMac: perm && perm.length > 0 ? formatMac(perm) : null,
    masterIndex: a.u32(IFLA.MASTER) ?? 0,
    parentIndex: a.u32(IFLA.LINK) ?? 0,
    parentNetnsId: a.s32(IFLA.LINK_NETNSID) ?? null,
    group: a.u32(IFLA.GROUP) ?? 0,
    alias: a.str(IFLA.IFALIAS) ?? null,
    txQueueLen: a.u32(IFLA.TXQLEN) ?? null,
    hwType: h.type,
    info: kind ? decodeKindInfo(kind, linkinfo?.nested(IFLA_INFO.DATA)) : null,
    portKind,
    bridgePort: portKind === 'bridge' && portData ? decodeBridgePort(portData) : null,
  };
}

export interface LinkRequest {
  header: Buffer;
  attrs: Attr[];
}

/** Attributes that can be changed on an existing link in one request. */
export interface LinkChange {
  name?: string;
  mtu?: number;
  mac?: string;
  up?: boolean;
  /** 0 detaches from the current master. */
  masterIndex?: number;
  /** "" removes the alias. */
  alias?: string;
  group?: number;
  txQueueLen?: number;
  /** Moves the link into the namespace of this fd (changes of other fields apply too). */
  netnsFd?: number;
}

function changeAttrs(c: LinkChange): Attr[] {
  const attrs: Attr[] = [];
  if (c.name !== undefined) attrs.push(nla.str(IFLA.IFNAME, c.name));
  if (c.mtu !== undefined) attrs.push(nla.u32(IFLA.MTU, c.mtu));
  if (c.mac !== undefined) attrs.push(nla.bytes(IFLA.ADDRESS, parseMac(c.mac)));
  if (c.masterIndex !== undefined) attrs.push(nla.u32(IFLA.MASTER, c.masterIndex));
  // Sent without a NUL, as iproute2 does: a zero-length alias is how the kernel deletes one.
  if (c.alias !== undefined) attrs.push(nla.bytes(IFLA.IFALIAS, Buffer.from(c.alias, 'utf8')));
  if (c.group !== undefined) attrs.push(nla.u32(IFLA.GROUP, c.group));
  if (c.txQueueLen !== undefined) attrs.push(nla.u32(IFLA.TXQLEN, c.txQueueLen));
  if (c.netnsFd !== undefined) attrs.push(nla.u32(IFLA.NET_NS_FD, c.netnsFd));
  return attrs;
}

const upFlags = (up: boolean | undefined): { flags: number; change: number } =>
  up === undefined ? { flags: 0, change: 0 } : { flags: up ? IFF.UP : 0, change: IFF.UP };

/** RTM_NEWLINK without NLM_F_CREATE: change an existing link, addressed by index. */
export function encodeLinkChange(index: number, change: LinkChange): LinkRequest {
  return { header: encodeIfInfoMsg({ family: AF_UNSPEC, index, ...upFlags(change.up) }), attrs: changeAttrs(change) };
}

export interface NewLinkSpec {
  name: string;
  info: LinkKindSpec;
  mtu?: number;
  mac?: string;
  /** IFLA_LINK: the lower device of a macvlan/ipvlan/vlan. */
  parentIndex?: number;
  /** Creates the link directly in the namespace of this fd. */
  netnsFd?: number;
  group?: number;
  txQueueLen?: number;
  up?: boolean;
}

/** RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: the whole new link in one message. */
export function encodeNewLink(spec: NewLinkSpec): LinkRequest {
  const { name, mtu, mac, group, txQueueLen, netnsFd } = spec;
  const attrs = changeAttrs({ name, mtu, mac, group, txQueueLen, netnsFd });
  if (spec.parentIndex !== undefined) attrs.push(nla.u32(IFLA.LINK, spec.parentIndex));
  attrs.push(linkInfoAttr(spec.info));
  return { header: encodeIfInfoMsg({ family: AF_UNSPEC, ...upFlags(spec.up) }), attrs };
}

/** RTM_GETLINK for one link, by index or by name. */
export function encodeGetLink(by: { index: number } | { name: string }): LinkRequest {
  const filter = nla.u32(IFLA.EXT_MASK, RTEXT_FILTER.SKIP_STATS);
  if ('index' in by) return { header: encodeIfInfoMsg({ index: by.index }), attrs: [filter] };
  return { header: encodeIfInfoMsg({}), attrs: [nla.str(IFLA.IFNAME, by.name), filter] };
}

/** RTM_DELLINK of one link, or with index 0 and IFLA_GROUP of every link in a netdev group. */
export function encodeDelLink(by: { index: number } | { group: number }): LinkRequest {
  if ('index' in by) return { header: encodeIfInfoMsg({ index: by.index }), attrs: [] };
  return { header: encodeIfInfoMsg({}), attrs: [nla.u32(IFLA.GROUP, by.group)] };
}
