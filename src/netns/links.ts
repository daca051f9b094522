// Link operations on a namespace handle. Creation returns nothing: a link created with netnsFd
// lands in another namespace where this handle cannot see it, and looking it up afterwards by name
// (linkByName) is one cheap request on whichever handle the caller holds.
import { AF_UNSPEC, IFLA, NLM_F, RTEXT_FILTER, RTM, RTMGRP_LINK } from './consts';
import { hasCode } from './errors';
import type { BridgeOptions, IpvlanFlag, IpvlanMode, MacvlanMode, VlanProtocol } from './linkinfo';
import { decodeLink, encodeDelLink, encodeGetLink, encodeLinkChange, encodeNewLink, type Link, type LinkChange, type NewLinkSpec } from './linkmsg';
import type { Netns } from './netns';
import { nla } from './nlattr';
import { decodeIfInfoMsg, encodeIfInfoMsg } from './rtnl';

export function listLinks(ns: Netns): Link[] {
  const msgs = ns.dump(RTM.GETLINK, encodeIfInfoMsg({ family: AF_UNSPEC }), [nla.u32(IFLA.EXT_MASK, RTEXT_FILTER.SKIP_STATS)], 'list links');
  return msgs.filter((m) => m.type === RTM.NEWLINK).map(decodeLink);
}

function getLink(ns: Netns, by: { index: number } | { name: string }, what: string): Link | null {
  const req = encodeGetLink(by);
  try {
    const [msg] = ns.request(RTM.GETLINK, 0, req.header, req.attrs, `get link ${what}`);
    return msg ? decodeLink(msg) : null;
  } catch (err) {
    if (hasCode(err, 'ENODEV')) return null;
    throw err;
  }
}

/** The link named name, or null when this namespace has none. */
export function linkByName(ns: Netns, name: string): Link | null {
  return getLink(ns, { name }, name);
}

export function linkByIndex(ns: Netns, index: number): Link | null {
  return getLink(ns, { index }, `#${index}`);
}

export function createLink(ns: Netns, spec: NewLinkSpec): void {
  const req = encodeNewLink(spec);
  ns.request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, req.header, req.attrs, `create ${spec.info.kind} ${spec.name}`);
}

interface CommonOptions {
  mtu?: number;
  mac?: string;
  group?: number;
  up?: boolean;
}

export interface VethOptions extends CommonOptions {
  peerMtu?: number;
  peerMac?: string;
  /** Creates the peer directly inside the namespace of this fd (see Netns.nsFd). */
  peerNetnsFd?: number;
}

export function createVeth(ns: Netns, name: string, peerName: string, o: VethOptions = {}): void {
  const { mtu, mac, group, up } = o;
  createLink(ns, {
    name,
    mtu,
    mac,
    group,
    up,
    info: { kind: 'veth', peer: { name: peerName, mtu: o.peerMtu ?? o.mtu, mac: o.peerMac, netnsFd: o.peerNetnsFd } },
  });
}

export function createBridge(ns: Netns, name: string, o: CommonOptions & BridgeOptions = {}): void {
  const { mtu, mac, group, up, ...bridge } = o;
  createLink(ns, { name, mtu, mac, group, up, info: { kind: 'bridge', ...bridge } });
}

/** dummy is missing from some kernels (this dev machine's among them): expect EOPNOTSUPP there. */
export function createDummy(ns: Netns, name: string, o: CommonOptions = {}): void {
  const { mtu, mac, group, up } = o;
  createLink(ns, { name, mtu, mac, group, up, info: { kind: 'dummy' } });
}

export interface MacvlanOptions extends CommonOptions {
  mode: MacvlanMode;
  bcQueueLen?: number;
  noPromisc?: boolean;
  /** Creates the macvlan directly inside the namespace of this fd. */
  netnsFd?: number;
}

export function createMacvlan(ns: Netns, name: string, parentIndex: number, o: MacvlanOptions): void {
  const { mtu, mac, group, up, netnsFd } = o;
  createLink(ns, { name, parentIndex, mtu, mac, group, up, netnsFd, info: { kind: 'macvlan', mode: o.mode, bcQueueLen: o.bcQueueLen, noPromisc: o.noPromisc } });
}

export interface IpvlanOptions {
  mode: IpvlanMode;
  /** bridge (default), private or vepa. */
  flag?: IpvlanFlag;
  mtu?: number;
  netnsFd?: number;
  up?: boolean;
}

export function createIpvlan(ns: Netns, name: string, parentIndex: number, o: IpvlanOptions): void {
  const { mtu, netnsFd, up } = o;
  createLink(ns, { name, parentIndex, mtu, netnsFd, up, info: { kind: 'ipvlan', mode: o.mode, flag: o.flag } });
}

export interface VlanOptions extends CommonOptions {
  id: number;
  protocol?: VlanProtocol;
  netnsFd?: number;
}

export function createVlan(ns: Netns, name: string, parentIndex: number, o: VlanOptions): void {
  const { mtu, mac, group, up, netnsFd } = o;
  createLink(ns, { name, parentIndex, mtu, mac, group, up, netnsFd, info: { kind: 'vlan', id: o.id, protocol: o.protocol } });
}

export interface VxlanOptions extends CommonOptions {
  vni: number;
  /** Lower device for the underlay. */
  parentIndex?: number;
  /** UDP destination port (4789 is IANA's; the kernel's default is 8472). */
  port?: number;
  /** Underlay multicast group (or unicast remote); not the netdev `group` of CommonOptions. */
  multicastGroup?: string;
  local?: string;
  ttl?: number;
  learning?: boolean;
}

export function createVxlan(ns: Netns, name: string, o: VxlanOptions): void {
  const { mtu, mac, group, up } = o;
  createLink(ns, {
    name,
    mtu,
    mac,
    group,
    up,
    info: { kind: 'vxlan', vni: o.vni, parentIndex: o.parentIndex, port: o.port, group: o.multicastGroup, local: o.local, ttl: o.ttl, learning: o.learning },
  });
}

/** Changes several attributes of one link in a single request. */
export function changeLink(ns: Netns, index: number, change: LinkChange, operation = `change link #${index}`): void {
  const req = encodeLinkChange(index, change);
  ns.request(RTM.NEWLINK, 0, req.header, req.attrs, operation);
}

export const setUp = (ns: Netns, index: number): void => changeLink(ns, index, { up: true }, `set link #${index} up`);
export const setDown = (ns: Netns, index: number): void => changeLink(ns, index, { up: false }, `set link #${index} down`);
export const setMtu = (ns: Netns, index: number, mtu: number): void => changeLink(ns, index, { mtu }, `set mtu ${mtu} on link #${index}`);
export const setMac = (ns: Netns, index: number, mac: string): void => changeLink(ns, index, { mac }, `set mac ${mac} on link #${index}`);
/** masterIndex 0 detaches the link from its master. */
export const setMaster = (ns: Netns, index: number, masterIndex: number): void =>
  changeLink(ns, index, { masterIndex }, masterIndex ? `attach link #${index} to #${masterIndex}` : `detach link #${index} from its master`);
export const setAlias = (ns: Netns, index: number, alias: string): void => changeLink(ns, index, { alias }, `set alias on link #${index}`);
export const rename = (ns: Netns, index: number, name: string): void => changeLink(ns, index, { name }, `rename link #${index} to ${name}`);
/** Netdev groups let one request delete many links (deleteLinksInGroup); 0 is the default group. */
export const setGroup = (ns: Netns, index: number, group: number): void => changeLink(ns, index, { group }, `set group ${group} on link #${index}`);

/** Moves a link into the namespace of targetNsFd (see Netns.nsFd), renaming it on the way. */
export function moveToNetns(ns: Netns, index: number, targetNsFd: number, newName?: string): void {
  const what = newName ? `move link #${index} to another namespace as ${newName}` : `move link #${index} to another namespace`;
  changeLink(ns, index, { netnsFd: targetNsFd, name: newName }, what);
}

/** Deletes one link (a veth takes its peer with it, wherever the peer is). */
export function deleteLink(ns: Netns, index: number): void {
  const req = encodeDelLink({ index });
  ns.request(RTM.DELLINK, 0, req.header, req.attrs, `delete link #${index}`);
}

/**
 * Deletes every link of a netdev group in one request, paying the kernel's per-request teardown
 * (an RCU grace period) once instead of per link. The kernel refuses group 0 (EPERM), returns
 * ENODEV when no link is in the group, and deletes nothing (EOPNOTSUPP) when one of them is a
 * device that cannot be deleted.
 */
export function deleteLinksInGroup(ns: Netns, group: number): void {
  const req = encodeDelLink({ group });
  ns.request(RTM.DELLINK, 0, req.header, req.attrs, `delete links in group ${group}`);
}

export interface GroupDeletion {
  /**
   * Settles once the kernel has announced every link's removal (RTM_DELLINK): they are gone from
   * the namespace, names and indexes free. Rejects if the request fails.
   */
  gone: Promise<void>;
  /** Settles on the kernel's answer, after its per-device teardown. */
  finished: Promise<void>;
}

// How long one wait for notifications lasts before it looks again at whether the request ended.
const WATCH_SLICE_MS = 20;

/**
 * deleteLinksInGroup without waiting out the kernel's teardown. The kernel unlists the links and
 * announces it within a few ms, then blocks the request in an RCU barrier and on the devices' last
 * references (~20 ms of the ~25 ms measured for four links, docs/decisions.md) before it ACKs:
 * `gone` is the moment the links no longer exist for anyone, `finished` the ACK. The request runs
 * on libuv's threadpool, so the caller can go on after `gone`. `indexes` are the links in the
 * group, the ones whose RTM_DELLINK `gone` waits for.
 */
export function deleteLinksInGroupEarly(ns: Netns, group: number, indexes: readonly number[]): GroupDeletion {
  // Subscribed before the request is sent, so no announcement can be missed.
  const watch = ns.subscribe(RTMGRP_LINK);
  const req = encodeDelLink({ group });
  let ended = false;
  const finished = ns
    .requestOffThread(RTM.DELLINK, 0, req.header, req.attrs, `delete links in group ${group}`)
    .then(() => undefined)
    .finally(() => (ended = true));
  // true when every link was announced gone, false when the request ended first.
  const announced = (async () => {
    const waiting = new Set(indexes);
    try {
      while (waiting.size > 0 && !ended) {
        for (const m of await watch.next(WATCH_SLICE_MS)) {
          if (m.type === RTM.DELLINK) waiting.delete(decodeIfInfoMsg(m.payload).index);
        }
      }
      return waiting.size === 0;
    } finally {
      watch.close();
    }
  })();
  // A watch that fails (its socket overran, say) only means waiting for the ACK instead.
  const gone = announced.then(
    (all) => (all ? undefined : finished),
    () => finished,
  );
  return { gone, finished };
}
