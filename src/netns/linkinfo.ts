// IFLA_LINKINFO for the link kinds plexus creates: what to send to create one, and what the
// kernel reports back about an existing one. Pure: data in, attributes/objects out.
import {
  ETH_P_8021AD,
  ETH_P_8021Q,
  IFLA,
  IFLA_BR,
  IFLA_BRPORT,
  IFLA_INFO,
  IFLA_IPVLAN,
  IFLA_MACVLAN,
  IFLA_VLAN,
  IFLA_VXLAN,
  IPVLAN_F,
  IPVLAN_MODE,
  MACVLAN_MODE,
  VETH_INFO_PEER,
} from './consts';
import { formatIp, parseIp, parseMac } from './ipaddr';
import { type Attr, type AttrTable, encodeAttrs, nla } from './nlattr';
import { encodeIfInfoMsg } from './rtnl';

export type MacvlanMode = keyof typeof MACVLAN_MODE;
export type IpvlanMode = keyof typeof IPVLAN_MODE;
export type IpvlanFlag = keyof typeof IPVLAN_F;
export type VlanProtocol = '802.1Q' | '802.1ad';

export interface VethPeerSpec {
  name: string;
  mtu?: number;
  mac?: string;
  /** Creates the peer directly in another namespace (an fd of its ns file). */
  netnsFd?: number;
}

export interface BridgeOptions {
  vlanFiltering?: boolean;
  vlanDefaultPvid?: number;
  /** 0 off, 1 kernel STP. */
  stpState?: number;
  multicastSnooping?: boolean;
}

/** The kind-specific half of a new link. */
export type LinkKindSpec =
  | { kind: 'veth'; peer: VethPeerSpec }
  | { kind: 'dummy' }
  | ({ kind: 'bridge' } & BridgeOptions)
  | { kind: 'macvlan'; mode: MacvlanMode; noPromisc?: boolean; bcQueueLen?: number }
  | { kind: 'ipvlan'; mode: IpvlanMode; flag?: IpvlanFlag }
  | { kind: 'vlan'; id: number; protocol?: VlanProtocol }
  | { kind: 'vxlan'; vni: number; parentIndex?: number; port?: number; group?: string; local?: string; ttl?: number; learning?: boolean };

/** What the kernel reports for a link of a kind plexus knows; other kinds decode to null. */
export type LinkKindInfo =
  | { kind: 'veth' }
  | { kind: 'dummy' }
  | { kind: 'bridge'; vlanFiltering: boolean; vlanDefaultPvid: number | null; stpState: number; multicastSnooping: boolean | null }
  | { kind: 'macvlan'; mode: MacvlanMode | null; flags: number; bcQueueLen: number | null }
  | { kind: 'ipvlan'; mode: IpvlanMode | null; flag: IpvlanFlag | null }
  | { kind: 'vlan'; id: number; protocol: VlanProtocol | null }
  | { kind: 'vxlan'; vni: number; parentIndex: number | null; port: number | null; group: string | null; local: string | null; learning: boolean | null };

/** Bridge port settings as reported in IFLA_INFO_SLAVE_DATA of a bridge port. */
export interface BridgePortInfo {
  state: number | null;
  hairpin: boolean;
  isolated: boolean;
  learning: boolean | null;
  unicastFlood: boolean | null;
  neighSuppress: boolean | null;
  cost: number | null;
  priority: number | null;
}

function bridgeDataAttrs(o: BridgeOptions): Attr[] {
  const data: Attr[] = [];
  if (o.vlanFiltering !== undefined) data.push(nla.u8(IFLA_BR.VLAN_FILTERING, o.vlanFiltering ? 1 : 0));
  if (o.vlanDefaultPvid !== undefined) data.push(nla.u16(IFLA_BR.VLAN_DEFAULT_PVID, o.vlanDefaultPvid));
  if (o.stpState !== undefined) data.push(nla.u32(IFLA_BR.STP_STATE, o.stpState));
  if (o.multicastSnooping !== undefined) data.push(nla.u8(IFLA_BR.MCAST_SNOOPING, o.multicastSnooping ? 1 : 0));
  return data;
}

export function bridgeLinkInfo(o: BridgeOptions): Attr {
  const data = bridgeDataAttrs(o);
  return nla.nest(IFLA.LINKINFO, [nla.str(IFLA_INFO.KIND, 'bridge'), ...(data.length ? [nla.nest(IFLA_INFO.DATA, data)] : [])]);
}

function kindData(spec: LinkKindSpec): Attr[] {
  switch (spec.kind) {
    case 'veth': {
      const p = spec.peer;
      // The peer is a whole ifinfomsg plus link attributes, nested inside VETH_INFO_PEER.
      const peerAttrs: Attr[] = [nla.str(IFLA.IFNAME, p.name)];
      if (p.mtu !== undefined) peerAttrs.push(nla.u32(IFLA.MTU, p.mtu));
      if (p.mac !== undefined) peerAttrs.push(nla.bytes(IFLA.ADDRESS, parseMac(p.mac)));
      if (p.netnsFd !== undefined) peerAttrs.push(nla.u32(IFLA.NET_NS_FD, p.netnsFd));
      return [nla.bytes(VETH_INFO_PEER, Buffer.concat([encodeIfInfoMsg({}), encodeAttrs(peerAttrs)]))];
    }
    case 'dummy':
      return [];
    case 'bridge':
      return bridgeDataAttrs(spec);
    case 'macvlan': {
      const data = [nla.u32(IFLA_MACVLAN.MODE, MACVLAN_MODE[spec.mode])];
      if (spec.noPromisc) data.push(nla.u16(IFLA_MACVLAN.FLAGS, 1));
      if (spec.bcQueueLen !== undefined) data.push(nla.u32(IFLA_MACVLAN.BC_QUEUE_LEN, spec.bcQueueLen));
      return data;
    }
    case 'ipvlan':
      return [nla.u16(IFLA_IPVLAN.MODE, IPVLAN_MODE[spec.mode]), nla.u16(IFLA_IPVLAN.FLAGS, IPVLAN_F[spec.flag ?? 'bridge'])];
    case 'vlan':
      return [nla.u16(IFLA_VLAN.ID, spec.id), nla.be16(IFLA_VLAN.PROTOCOL, spec.protocol === '802.1ad' ? ETH_P_8021AD : ETH_P_8021Q)];
    case 'vxlan': {
      const data = [nla.u32(IFLA_VXLAN.ID, spec.vni)];
      if (spec.parentIndex !== undefined) data.push(nla.u32(IFLA_VXLAN.LINK, spec.parentIndex));
      if (spec.port !== undefined) data.push(nla.be16(IFLA_VXLAN.PORT, spec.port));
      if (spec.ttl !== undefined) data.push(nla.u8(IFLA_VXLAN.TTL, spec.ttl));
      if (spec.learning !== undefined) data.push(nla.u8(IFLA_VXLAN.LEARNING, spec.learning ? 1 : 0));
      for (const [addr, v4, v6] of [
        [spec.group, IFLA_VXLAN.GROUP, IFLA_VXLAN.GROUP6],
        [spec.local, IFLA_VXLAN.LOCAL, IFLA_VXLAN.LOCAL6],
      ] as const) {
        if (addr === undefined) continue;
        const ip = parseIp(addr);
        data.push(nla.bytes(ip.family === 4 ? v4 : v6, ip.bytes));
      }
      return data;
    }
    default: {
      const unknown: never = spec;
      throw new TypeError(`no encoder for link kind ${JSON.stringify((unknown as { kind: unknown }).kind)}`);
    }
  }
}

/** IFLA_LINKINFO { IFLA_INFO_KIND, IFLA_INFO_DATA } for a new link. */
export function linkInfoAttr(spec: LinkKindSpec): Attr {
  const data = kindData(spec);
  const children: Attr[] = [nla.str(IFLA_INFO.KIND, spec.kind)];
  if (data.length > 0) children.push(nla.nest(IFLA_INFO.DATA, data));
  return nla.nest(IFLA.LINKINFO, children);
}

const keyOf = <T extends Record<string, number>>(table: T, value: number | undefined): keyof T | null => {
  if (value === undefined) return null;
  const hit = Object.entries(table).find(([, v]) => v === value);
  return hit ? (hit[0] as keyof T) : null;
};

const bool = (v: number | undefined): boolean | null => (v === undefined ? null : v !== 0);

/** Decodes IFLA_INFO_DATA for the kinds above; null for kinds plexus does not model. */
export function decodeKindInfo(kind: string, data: AttrTable | undefined): LinkKindInfo | null {
  const d = data;
  switch (kind) {
    case 'veth':
    case 'dummy':
      return { kind };
    case 'bridge':
      return {
        kind,
        vlanFiltering: d?.u8(IFLA_BR.VLAN_FILTERING) === 1,
        vlanDefaultPvid: d?.u16(IFLA_BR.VLAN_DEFAULT_PVID) ?? null,
        stpState: d?.u32(IFLA_BR.STP_STATE) ?? 0,
        multicastSnooping: bool(d?.u8(IFLA_BR.MCAST_SNOOPING)),
      };
    case 'macvlan':
      return {
        kind,
        mode: keyOf(MACVLAN_MODE, d?.u32(IFLA_MACVLAN.MODE)),
        flags: d?.u16(IFLA_MACVLAN.FLAGS) ?? 0,
        bcQueueLen: d?.u32(IFLA_MACVLAN.BC_QUEUE_LEN) ?? null,
      };
    case 'ipvlan':
      return { kind, mode: keyOf(IPVLAN_MODE, d?.u16(IFLA_IPVLAN.MODE)), flag: keyOf(IPVLAN_F, d?.u16(IFLA_IPVLAN.FLAGS)) };
    case 'vlan': {
      const proto = d?.be16(IFLA_VLAN.PROTOCOL);
      return { kind, id: d?.u16(IFLA_VLAN.ID) ?? 0, protocol: proto === ETH_P_8021Q ? '802.1Q' : proto === ETH_P_8021AD ? '802.1ad' : null };
    }
    case 'vxlan': {
      const addr = (v4: number, v6: number): string | null => {
        const b = d?.get(v4) ?? d?.get(v6);
        return b && (b.length === 4 || b.length === 16) ? formatIp(b) : null;
      };
      return {
        kind,
        vni: d?.u32(IFLA_VXLAN.ID) ?? 0,
        parentIndex: d?.u32(IFLA_VXLAN.LINK) ?? null,
        port: d?.be16(IFLA_VXLAN.PORT) ?? null,
        group: addr(IFLA_VXLAN.GROUP, IFLA_VXLAN.GROUP6),
        local: addr(IFLA_VXLAN.LOCAL, IFLA_VXLAN.LOCAL6),
        learning: bool(d?.u8(IFLA_VXLAN.LEARNING)),
      };
    }
    default:
      return null;
  }
}

export function decodeBridgePort(d: AttrTable): BridgePortInfo {
  return {
    state: d.u8(IFLA_BRPORT.STATE) ?? null,
    hairpin: d.u8(IFLA_BRPORT.MODE) === 1,
    isolated: d.u8(IFLA_BRPORT.ISOLATED) === 1,
    learning: bool(d.u8(IFLA_BRPORT.LEARNING)),
    unicastFlood: bool(d.u8(IFLA_BRPORT.UNICAST_FLOOD)),
    neighSuppress: bool(d.u8(IFLA_BRPORT.NEIGH_SUPPRESS)),
    cost: d.u32(IFLA_BRPORT.COST) ?? null,
    priority: d.u16(IFLA_BRPORT.PRIORITY) ?? null,
  };
}
