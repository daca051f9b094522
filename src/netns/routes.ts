// Routes (RTM_*ROUTE): list, add, replace, delete; IPv4 and IPv6; any table.
import { AF_INET, AF_INET6, AF_UNSPEC, NLM_F, RTA, RTAX, RouteProtocol, RouteTable, RouteType, RTM, RTNH_F_ONLINK, Scope } from './consts';
import { afOf, familyOfAf, formatIp, formatPrefix, type IpFamily, networkOf, parseIp, parsePrefix } from './ipaddr';
import type { Netns } from './netns';
import { type Attr, type AttrTable, nla, parseAttrs } from './nlattr';
import { decodeRtMsg, encodeRtMsg, messageAttrs, type NlMessage } from './rtnl';

export interface Nexthop {
  gateway: string | null;
  oif: number;
  weight: number;
  onlink: boolean;
}

export interface Route {
  family: IpFamily;
  /** Destination prefix; "0.0.0.0/0" or "::/0" for a default route. */
  dst: string;
  gateway: string | null;
  /** Output ifindex, 0 when the route has none (blackhole, multipath). */
  oif: number;
  /** Preferred source address (RTA_PREFSRC). */
  src: string | null;
  table: number;
  scope: number;
  protocol: number;
  type: number;
  /** Metric; null when the kernel reported none (IPv4 metric 0). */
  priority: number | null;
  mtu: number | null;
  advmss: number | null;
  onlink: boolean;
  /** Set for multipath (ECMP) routes; gateway and oif are then empty. */
  nexthops: Nexthop[] | null;
}

export interface RouteSpec {
  /** Destination prefix; host bits are cleared ("10.0.0.7/24" means 10.0.0.0/24). */
  dst: string;
  gateway?: string;
  oif?: number;
  /** Preferred source address. */
  src?: string;
  /** Default: main (254). */
  table?: number;
  /** Default: host for local routes, link for IPv4 routes without a gateway, else universe. */
  scope?: number;
  /** Default: boot (3), as `ip route add` uses. */
  protocol?: number;
  /** RouteType.*; default unicast. */
  type?: number;
  priority?: number;
  mtu?: number;
  advmss?: number;
  /** Trust that the gateway is on the link even if no address says so. */
  onlink?: boolean;
}

function addressOf(b: Buffer | undefined): string | null {
  return b && (b.length === 4 || b.length === 16) ? formatIp(b) : null;
}

/** RTA_VIA: an address of possibly another family (IPv4 route via an IPv6 gateway). */
function viaOf(b: Buffer | undefined): string | null {
  return b && b.length >= 2 ? addressOf(b.subarray(2)) : null;
}

function decodeNexthops(b: Buffer): Nexthop[] {
  const out: Nexthop[] = [];
  for (let off = 0; off + 8 <= b.length; ) {
    const len = b.readUInt16LE(off);
    if (len < 8 || off + len > b.length) break;
    const attrs: AttrTable = parseAttrs(b, off + 8, off + len);
    out.push({
      gateway: addressOf(attrs.get(RTA.GATEWAY)) ?? viaOf(attrs.get(RTA.VIA)),
      oif: b.readInt32LE(off + 4),
      weight: b.readUInt8(off + 3) + 1,
      onlink: (b.readUInt8(off + 2) & RTNH_F_ONLINK) !== 0,
    });
    off += (len + 3) & ~3;
  }
  return out;
}

export function decodeRoute(msg: NlMessage): Route | null {
  const h = decodeRtMsg(msg.payload);
  const family = familyOfAf(h.family);
  if (!family) return null;
  const a = messageAttrs(msg, 12);
  const dst = a.get(RTA.DST) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const metrics = a.nested(RTA.METRICS);
  const multipath = a.get(RTA.MULTIPATH);
  return {
    family,
    dst: formatPrefix(dst, h.dstLen),
    gateway: addressOf(a.get(RTA.GATEWAY)) ?? viaOf(a.get(RTA.VIA)),
    oif: a.u32(RTA.OIF) ?? 0,
    src: addressOf(a.get(RTA.PREFSRC)),
    table: a.u32(RTA.TABLE) ?? h.table,
    scope: h.scope,
    protocol: h.protocol,
    type: h.type,
    priority: a.u32(RTA.PRIORITY) ?? null,
    mtu: metrics?.u32(RTAX.MTU) ?? null,
    advmss: metrics?.u32(RTAX.ADVMSS) ?? null,
    onlink: (h.flags & RTNH_F_ONLINK) !== 0,
    nexthops: multipath ? decodeNexthops(multipath) : null,
  };
}

export function listRoutes(ns: Netns, filter: { family?: IpFamily; table?: number; oif?: number } = {}): Route[] {
  const af = filter.family ? afOf(filter.family) : AF_UNSPEC;
  const header = encodeRtMsg({ family: af, dstLen: 0, srcLen: 0, tos: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 });
  const out: Route[] = [];
  for (const m of ns.dump(RTM.GETROUTE, header, [], 'list routes')) {
    if (m.type !== RTM.NEWROUTE) continue;
    const r = decodeRoute(m);
    if (!r) continue;
    if (filter.table !== undefined && r.table !== filter.table) continue;
    if (filter.oif !== undefined && r.oif !== filter.oif) continue;
    out.push(r);
  }
  return out;
}

/**
 * The request for one route. A delete leaves unset fields as wildcards (scope nowhere, protocol
 * and type unspec), as `ip route del` does, so it matches the route however it was added.
 */
export function encodeRoute(spec: RouteSpec, forDelete = false): { header: Buffer; attrs: Attr[] } {
  const p = parsePrefix(spec.dst);
  const dst = networkOf(p);
  const gw = spec.gateway !== undefined ? parseIp(spec.gateway) : null;
  const type = spec.type ?? (forDelete ? RouteType.unspec : RouteType.unicast);
  const table = spec.table ?? RouteTable.main;
  let scope = spec.scope;
  if (scope === undefined) {
    if (forDelete) scope = Scope.nowhere;
    else if (type === RouteType.local) scope = Scope.host;
    else if (!gw && p.family === 4 && type === RouteType.unicast) scope = Scope.link;
    else scope = Scope.universe;
  }
  const header = encodeRtMsg({
    family: afOf(p.family),
    dstLen: p.prefixLen,
    srcLen: 0,
    tos: 0,
    // rtm_table has 8 bits; RTA_TABLE carries the real id either way.
    table: table < 256 ? table : RouteTable.unspec,
    protocol: spec.protocol ?? (forDelete ? RouteProtocol.unspec : RouteProtocol.boot),
    scope,
    type,
    flags: spec.onlink ? RTNH_F_ONLINK : 0,
  });
  const attrs: Attr[] = [nla.u32(RTA.TABLE, table)];
  if (p.prefixLen > 0) attrs.push(nla.bytes(RTA.DST, dst));
  if (gw && gw.family === p.family) attrs.push(nla.bytes(RTA.GATEWAY, gw.bytes));
  if (gw && gw.family !== p.family) {
    const via = Buffer.alloc(2 + gw.bytes.length);
    via.writeUInt16LE(gw.family === 4 ? AF_INET : AF_INET6, 0);
    gw.bytes.copy(via, 2);
    attrs.push(nla.bytes(RTA.VIA, via));
  }
  if (spec.oif !== undefined) attrs.push(nla.u32(RTA.OIF, spec.oif));
  if (spec.src !== undefined) attrs.push(nla.bytes(RTA.PREFSRC, parseIp(spec.src).bytes));
  if (spec.priority !== undefined) attrs.push(nla.u32(RTA.PRIORITY, spec.priority));
  const metrics: Attr[] = [];
  if (spec.mtu !== undefined) metrics.push(nla.u32(RTAX.MTU, spec.mtu));
  if (spec.advmss !== undefined) metrics.push(nla.u32(RTAX.ADVMSS, spec.advmss));
  if (metrics.length > 0) attrs.push(nla.nest(RTA.METRICS, metrics));
  return { header, attrs };
}

const describe = (r: RouteSpec): string =>
  `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.oif ? ` dev #${r.oif}` : ''}${r.table && r.table !== RouteTable.main ? ` table ${r.table}` : ''}`;

/** Adds a route; EEXIST when an equal one is there (use replaceRoute to overwrite). */
export function addRoute(ns: Netns, spec: RouteSpec): void {
  const { header, attrs } = encodeRoute(spec);
  ns.request(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, header, attrs, `add route ${describe(spec)}`);
}

/** Adds the route or replaces the one with the same destination, table, tos and metric. */
export function replaceRoute(ns: Netns, spec: RouteSpec): void {
  const { header, attrs } = encodeRoute(spec);
  ns.request(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.REPLACE, header, attrs, `replace route ${describe(spec)}`);
}

/** Deletes the first route matching every field given; ESRCH when none matches. */
export function delRoute(ns: Netns, spec: RouteSpec): void {
  const { header, attrs } = encodeRoute(spec, true);
  ns.request(RTM.DELROUTE, 0, header, attrs, `delete route ${describe(spec)}`);
}
