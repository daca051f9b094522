// Bridge settings beyond creation: options of the bridge itself, per-port flags (hairpin,
// isolated, learning...) and 802.1Q VLAN membership of ports, all through rtnetlink's AF_BRIDGE
// messages the way `bridge link` / `bridge vlan` send them.
import { AF_BRIDGE, BRIDGE_FLAGS, BRIDGE_VLAN_INFO, IFLA, IFLA_BRIDGE, IFLA_BRPORT, RTEXT_FILTER, RTM } from './consts';
import { type BridgeOptions, bridgeLinkInfo } from './linkinfo';
import type { Link } from './linkmsg';
import type { Netns } from './netns';
import { type Attr, nla } from './nlattr';
import { decodeIfInfoMsg, encodeIfInfoMsg, messageAttrs } from './rtnl';

/** Changes options of an existing bridge (e.g. turns VLAN filtering on). */
export function setBridgeOptions(ns: Netns, bridgeIndex: number, o: BridgeOptions): void {
  ns.request(RTM.NEWLINK, 0, encodeIfInfoMsg({ index: bridgeIndex }), [bridgeLinkInfo(o)], `set bridge options on link #${bridgeIndex}`);
}

export interface BridgePortSettings {
  /** Reflect frames back out of the port they came in on (needed for pod-to-self via service IP). */
  hairpin?: boolean;
  /** Isolated ports cannot talk to each other, only to non-isolated ports. */
  isolated?: boolean;
  learning?: boolean;
  unicastFlood?: boolean;
  neighSuppress?: boolean;
  cost?: number;
  priority?: number;
}

export function encodeBridgePortSettings(s: BridgePortSettings): Attr[] {
  const attrs: Attr[] = [];
  const flag = (type: number, v: boolean | undefined): void => {
    if (v !== undefined) attrs.push(nla.u8(type, v ? 1 : 0));
  };
  flag(IFLA_BRPORT.MODE, s.hairpin);
  flag(IFLA_BRPORT.ISOLATED, s.isolated);
  flag(IFLA_BRPORT.LEARNING, s.learning);
  flag(IFLA_BRPORT.UNICAST_FLOOD, s.unicastFlood);
  flag(IFLA_BRPORT.NEIGH_SUPPRESS, s.neighSuppress);
  if (s.cost !== undefined) attrs.push(nla.u32(IFLA_BRPORT.COST, s.cost));
  if (s.priority !== undefined) attrs.push(nla.u16(IFLA_BRPORT.PRIORITY, s.priority));
  // Without NLA_F_NESTED the bridge reads IFLA_PROTINFO as the old one-byte port state.
  return [nla.nest(IFLA.PROTINFO, attrs, true)];
}

/** Sets flags on a port of a bridge (the link must already be attached with setMaster). */
export function setBridgePort(ns: Netns, portIndex: number, s: BridgePortSettings): void {
  ns.request(RTM.SETLINK, 0, encodeIfInfoMsg({ family: AF_BRIDGE, index: portIndex }), encodeBridgePortSettings(s), `set bridge port flags on link #${portIndex}`);
}

export interface BridgeVlan {
  vid: number;
  /** Untagged frames entering the port get this VLAN. */
  pvid: boolean;
  /** Frames of this VLAN leave the port untagged. */
  untagged: boolean;
}

export interface BridgeVlanTarget {
  /** true: the bridge device itself (`bridge vlan ... self`); false (default): a port of it. */
  self?: boolean;
}

export function encodeBridgeVlan(vlan: BridgeVlan, target: BridgeVlanTarget = {}): Attr[] {
  const info = Buffer.alloc(4);
  info.writeUInt16LE((vlan.pvid ? BRIDGE_VLAN_INFO.PVID : 0) | (vlan.untagged ? BRIDGE_VLAN_INFO.UNTAGGED : 0), 0);
  info.writeUInt16LE(vlan.vid, 2);
  const spec: Attr[] = [];
  if (target.self) spec.push(nla.u16(IFLA_BRIDGE.FLAGS, BRIDGE_FLAGS.SELF));
  spec.push(nla.bytes(IFLA_BRIDGE.VLAN_INFO, info));
  return [nla.nest(IFLA.AF_SPEC, spec)];
}

function checkVid(vid: number): void {
  if (!Number.isInteger(vid) || vid < 1 || vid > 4094) throw new RangeError(`VLAN id must be 1..4094, not ${vid}`);
}

/** Adds (or updates the flags of) a VLAN on a bridge port, or on the bridge itself with self. */
export function addBridgeVlan(ns: Netns, index: number, vlan: BridgeVlan, target: BridgeVlanTarget = {}): void {
  checkVid(vlan.vid);
  ns.request(RTM.SETLINK, 0, encodeIfInfoMsg({ family: AF_BRIDGE, index }), encodeBridgeVlan(vlan, target), `add vlan ${vlan.vid} on link #${index}`);
}

export function delBridgeVlan(ns: Netns, index: number, vid: number, target: BridgeVlanTarget = {}): void {
  checkVid(vid);
  const attrs = encodeBridgeVlan({ vid, pvid: false, untagged: false }, target);
  ns.request(RTM.DELLINK, 0, encodeIfInfoMsg({ family: AF_BRIDGE, index }), attrs, `delete vlan ${vid} on link #${index}`);
}

/** VLANs of every bridge and bridge port in the namespace, by ifindex. */
export function listBridgeVlans(ns: Netns): Map<number, BridgeVlan[]> {
  const msgs = ns.dump(RTM.GETLINK, encodeIfInfoMsg({ family: AF_BRIDGE }), [nla.u32(IFLA.EXT_MASK, RTEXT_FILTER.BRVLAN)], 'list bridge vlans');
  const out = new Map<number, BridgeVlan[]>();
  for (const m of msgs) {
    if (m.type !== RTM.NEWLINK) continue;
    const spec = messageAttrs(m, 16).nested(IFLA.AF_SPEC);
    if (!spec) continue;
    const vlans: BridgeVlan[] = [];
    for (const info of spec.all(IFLA_BRIDGE.VLAN_INFO)) {
      if (info.length < 4) continue;
      const flags = info.readUInt16LE(0);
      vlans.push({ vid: info.readUInt16LE(2), pvid: (flags & BRIDGE_VLAN_INFO.PVID) !== 0, untagged: (flags & BRIDGE_VLAN_INFO.UNTAGGED) !== 0 });
    }
    if (vlans.length > 0) out.set(decodeIfInfoMsg(m.payload).index, vlans);
  }
  return out;
}

/**
 * Whether `bridge`'s MAC is the one the kernel picks by itself: a bridge whose address was never
 * set takes the lowest MAC of its ports (br_stp_recalculate_bridge_id, a bytewise compare) and
 * moves whenever a port with a lower one joins or its owner leaves. CHECK must not report that
 * drift as a fault of an attachment. `links`: the namespace's links (listLinks), data in.
 */
export function bridgeMacFollowsPorts(links: readonly Link[], bridge: Link): boolean {
  let lowest: string | null = null;
  for (const l of links) {
    if (l.masterIndex !== bridge.index || !l.mac || l.mac === '00:00:00:00:00:00') continue;
    if (lowest === null || l.mac < lowest) lowest = l.mac; // same width and case: string order is byte order
  }
  return lowest !== null && lowest === bridge.mac;
}
