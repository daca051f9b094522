// The bridge plugin's kernel objects: the bridge, the veth pair and its bridge port settings
// (hairpin, isolation, VLANs), the gateway addresses on the bridge (or on its VLAN gateway
// interface). All through in-process rtnetlink; behaviour follows the reference's bridge.go.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CniError, Code } from '../../src/cni/errors';
import {
  addAddr,
  addBridgeVlan,
  changeLink,
  createBridge,
  createVeth,
  delAddr,
  delBridgeVlan,
  hasCode,
  IFF,
  type Link,
  linkByIndex,
  linkByName,
  listAddrs,
  listBridgeVlans,
  type Netns,
  readSysctl,
  setBridgePort,
  sysctlKey,
  writeSysctl,
} from '../../src/netns';
import { networkOf, parsePrefix } from '../../src/netns/ipaddr';
import { encodeIfInfoMsg } from '../../src/netns/rtnl';
import { IFA_F, RTM } from '../../src/netns/consts';

export interface BridgeSpec {
  name: string;
  mtu: number;
  promisc: boolean;
  vlanFiltering: boolean;
}

/** Sets IFF_PROMISC (what `ip link set promisc on` sends); LinkChange has no field for it. */
function setPromiscOn(ns: Netns, index: number): void {
  ns.request(RTM.NEWLINK, 0, encodeIfInfoMsg({ index, flags: IFF.PROMISC, change: IFF.PROMISC }), [], `set promisc on link #${index}`);
}

/** Sysctls the reference writes and ignores failures of (a missing IPv6 stack, for one). */
function trySysctl(ns: Netns, key: string, value: string | number): void {
  try {
    writeSysctl(ns, key, value);
  } catch {
    // best effort, as in the reference: `_, _ = sysctl.Sysctl(...)`
  }
}

/**
 * The MAC a bridge plexus creates is born with: locally administered, unicast, derived from the
 * machine ID and the bridge's name (as systemd-networkd does for the bridges it makes), so it is
 * the same after a reboot and differs between nodes. An address given at creation is "set"
 * (NET_ADDR_SET) and the kernel never replaces it with the lowest MAC of the ports, which is what
 * made CHECK of an earlier attachment fail when a port with a lower MAC joined (decisions.md).
 * Random when the machine has no ID.
 */
export function bridgeMac(name: string, machineId = readMachineId()): string {
  const b = machineId ? createHash('sha256').update(`plexus-bridge\0${machineId}\0${name}`).digest() : randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function readMachineId(): string {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(f, 'utf8').trim();
      if (id) return id;
    } catch {
      // next
    }
  }
  return '';
}

/**
 * The bridge, created when missing, with its MAC pinned (bridgeMac). An existing one is used as
 * it is (MTU, VLAN filtering and the MAC are only set at creation, like the reference: a bridge
 * plexus did not make is not plexus's to change), except that promisc and up are applied.
 */
export function ensureBridge(host: Netns, b: BridgeSpec): Link {
  try {
    createBridge(host, b.name, { mtu: b.mtu || undefined, mac: bridgeMac(b.name), vlanFiltering: b.vlanFiltering || undefined });
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw new CniError(Code.Internal, `failed to create bridge ${JSON.stringify(b.name)}: ${(err as Error).message}`);
  }
  const br = linkByName(host, b.name);
  if (!br) throw new CniError(Code.Internal, `bridge ${JSON.stringify(b.name)} vanished right after creation`);
  if (br.kind !== 'bridge') throw new CniError(Code.Internal, `${JSON.stringify(b.name)} already exists but is not a bridge`);
  if (b.promisc) setPromiscOn(host, br.index);
  // The plugin owns the bridge's routes: no router advertisements may add any.
  trySysctl(host, sysctlKey('net', 'ipv6', 'conf', b.name, 'accept_ra'), 0);
  if (!br.up) changeLink(host, br.index, { up: true }, `set bridge ${b.name} up`);
  return br;
}

export interface PortSpec {
  hairpin: boolean;
  isolated: boolean;
  /** Access VLAN (PVID, untagged); 0 for none. */
  vlan: number;
  /** Tagged VLANs of a trunk port. */
  trunk: readonly number[];
  preserveDefaultVlan: boolean;
}

/**
 * Attaches a host-side veth to the bridge and sets its port up: up, master, hairpin, isolation,
 * VLAN membership. With a trunk and no access VLAN, VLAN 1 is the native (PVID, untagged) VLAN,
 * as in the reference since its trunk ports got a native VLAN.
 */
export function setupPort(host: Netns, port: Link, bridge: Link, p: PortSpec): void {
  changeLink(host, port.index, { masterIndex: bridge.index, up: true }, `attach ${port.name} to bridge ${bridge.name}`);
  trySysctl(host, sysctlKey('net', 'ipv6', 'conf', port.name, 'accept_ra'), 0);
  // isolated only when asked: the attribute is newer (4.18) than hairpin and false is the default.
  setBridgePort(host, port.index, p.isolated ? { hairpin: p.hairpin, isolated: true } : { hairpin: p.hairpin });
  if (p.vlan === 0 && p.trunk.length === 0) return;
  if (!p.preserveDefaultVlan) {
    for (const v of listBridgeVlans(host).get(port.index) ?? []) delBridgeVlan(host, port.index, v.vid);
  }
  const native = p.vlan || (p.trunk.length > 0 ? 1 : 0);
  if (native) addBridgeVlan(host, port.index, { vid: native, pvid: true, untagged: true });
  // The native VLAN stays untagged even if the trunk lists it too.
  for (const vid of p.trunk) if (vid !== native) addBridgeVlan(host, port.index, { vid, pvid: false, untagged: false });
}

/** "veth" + 8 hex digits, the reference's host-side names. */
export const randomVethName = (): string => `veth${randomBytes(4).toString('hex')}`;

export interface VethSpec {
  /** Name of the end that stays in `inNs`. */
  name: string;
  mtu: number;
  mac?: string;
}

/**
 * Creates a veth pair in `inNs` named spec.name whose peer (random name) lands directly in the
 * host namespace. Returns the peer's name. A name clash of the random peer is retried; a clash of
 * spec.name is the caller's error.
 */
export function createVethToHost(inNs: Netns, host: Netns, spec: VethSpec): string {
  if (linkByName(inNs, spec.name)) throw new CniError(Code.Internal, `container veth name provided (${spec.name}) already exists`);
  for (let attempt = 0; ; attempt++) {
    const peer = randomVethName();
    try {
      createVeth(inNs, spec.name, peer, { mtu: spec.mtu || undefined, mac: spec.mac, peerNetnsFd: host.nsFd() });
      return peer;
    } catch (err) {
      // EEXIST here is the random peer name taken in the host (spec.name was checked above).
      if (hasCode(err, 'EEXIST') && attempt < 10 && !linkByName(inNs, spec.name)) continue;
      throw new CniError(Code.Internal, `failed to make veth pair: ${(err as Error).message}`);
    }
  }
}

// The reference waits 0, 50, 500, 1000, 1000 ms for the host veth to be operationally up. The
// same ~2.5 s budget here, polled in short steps first: it is usually up at once.
const OPER_UP_DELAYS = [0, 5, 10, 20, 40, 80, 160, 320, 640, 1280];

// The reference settles IPv6 addresses for up to 10 s (ip.SettleAddresses); DAD itself takes
// about a second (one probe, RetransTimer 1 s) unless the pod's sysctls say otherwise.
const DAD_BUDGET_MS = 10_000;

/**
 * With enabledad: waits until no IPv6 address of the link is tentative, so the pod starts with
 * usable addresses; an address that failed DAD is a duplicate on the bridge and fails the ADD.
 */
export async function waitDad(ns: Netns, index: number, name: string): Promise<void> {
  const deadline = Date.now() + DAD_BUDGET_MS;
  for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
    const v6 = listAddrs(ns, { family: 6, index });
    const failed = v6.find((a) => a.flags & IFA_F.DADFAILED);
    if (failed) throw new CniError(Code.Internal, `link ${name} has address ${failed.cidr} in DADFAILED state: another host on the bridge uses it`);
    if (!v6.some((a) => a.flags & IFA_F.TENTATIVE)) return;
    if (Date.now() > deadline) throw new CniError(Code.Internal, `link ${name} still has tentative IPv6 addresses after ${DAD_BUDGET_MS / 1000} s`);
    await sleep(delay);
  }
}

/** Waits until the link is operationally up (both veth ends up and the port forwarding). */
export async function waitOperUp(host: Netns, index: number, name: string): Promise<Link> {
  let last: Link | null = null;
  for (const delay of OPER_UP_DELAYS) {
    if (delay) await sleep(delay);
    last = linkByIndex(host, index);
    if (!last) throw new CniError(Code.Internal, `host veth ${name} disappeared`);
    if (last.operState === 'up') return last;
  }
  throw new CniError(Code.Internal, `bridge port in error state: ${last?.operState ?? 'unknown'}`);
}

const familyOf = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);

function contains(net: string, ip: string): boolean {
  const n = parsePrefix(net);
  const a = parsePrefix(ip);
  if (n.family !== a.family) return false;
  return networkOf({ ...a, prefixLen: n.prefixLen }).equals(networkOf(n));
}

/**
 * Puts gateway address `cidr` on the bridge (or the VLAN gateway interface). Another IPv4
 * address, or an overlapping IPv6 one, is an error unless forceAddress (then it is replaced).
 * Afterwards the MAC is set explicitly, which stops the bridge from taking the lowest MAC of its
 * ports: pass the Link as read before any port joined (ensureBridge's), and the bridge keeps the
 * address it was born with instead of the first pod's, as with the reference.
 */
export function ensureGatewayAddr(host: Netns, link: Link, cidr: string, forceAddress: boolean): void {
  const family = familyOf(cidr);
  const want = parsePrefix(cidr);
  for (const a of listAddrs(host, { family, index: link.index })) {
    if (a.prefixLen === want.prefixLen && parsePrefix(a.address).bytes.equals(want.bytes)) return;
    if (family === 4 || contains(a.cidr, cidr) || contains(cidr, a.cidr)) {
      if (!forceAddress) throw new CniError(Code.Internal, `${JSON.stringify(link.name)} already has an IP address different from ${cidr}`);
      delAddr(host, link.index, a.cidr);
    }
  }
  try {
    addAddr(host, link.index, cidr);
  } catch (err) {
    if (!hasCode(err, 'EEXIST')) throw new CniError(Code.Internal, `could not add IP address to ${JSON.stringify(link.name)}: ${(err as Error).message}`);
  }
  if (link.mac) changeLink(host, link.index, { mac: link.mac }, `pin the MAC of ${link.name}`);
}

/**
 * The VLAN gateway interface `<bridge>.<vlan>` of the reference: one end of a host-side veth pair
 * whose other end is an access port of the bridge in that VLAN. Created on first use.
 */
export function ensureVlanGateway(host: Netns, bridge: Link, vlan: number, preserveDefaultVlan: boolean): Link {
  const name = `${bridge.name}.${vlan}`;
  const existing = linkByName(host, name);
  if (existing) return existing;
  const peer = createVethToHost(host, host, { name, mtu: bridge.mtu });
  const port = linkByName(host, peer);
  if (!port) throw new CniError(Code.Internal, `veth ${peer} vanished right after creation`);
  setupPort(host, port, bridge, { hairpin: false, isolated: false, vlan, trunk: [], preserveDefaultVlan });
  const gw = linkByName(host, name);
  if (!gw) throw new CniError(Code.Internal, `vlan gateway ${name} vanished right after creation`);
  changeLink(host, gw.index, { up: true }, `set ${name} up`);
  return gw;
}

/** Turns on forwarding for the family (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding). */
export function enableForwarding(host: Netns, family: 4 | 6): void {
  const key = family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding';
  if (readSysctl(host, key) !== '1') writeSysctl(host, key, 1);
}
