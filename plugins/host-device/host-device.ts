// host-device: hands an existing host network device to the container and takes it back on DEL,
// config-compatible with the reference plugin (containernetworking/plugins, host-device).
//
// No temporary namespace. Upstream (PR #1073) moves the device through one so that udev and
// NetworkManager on the host never see it under a transient name. That holds here without one:
//  - in: one RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME; the kernel moves, then renames,
//    under one rtnl lock and inside the container (so its host name being taken there is no
//    obstacle); the host only sees the device leave;
//  - out: renamed to its original name inside the container, where the host's udev and
//    NetworkManager cannot see it, then moved: the host sees it arrive once, under its final name.
//    The one-request form would show the host the container name first (the kernel moves before it
//    renames); the test "the host never sees the device under a transient name" watches for that.
// A temporary namespace needs unshare and a bind mount (the netns addon has neither) and dies with
// the process: a crash half-way destroys a virtual device and hands a physical one to the initial
// namespace under whatever name it had then.
//
// Better than the reference on DEL: a device whose namespace is gone is found on the host (the
// kernel hands physical devices back under their container name, or "dev<ifindex>" when that is
// taken) by the alias holding its original name, and renamed back; IPAM is released with the netns
// gone or CNI_NETNS empty; a repeated DEL succeeds.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { normalizeHwAddr } from '../../src/cni/addr';
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code, errnoOf } from '../../src/cni/errors';
import { attachIpamResult, formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniInterface, Result } from '../../src/cni/types';
import { Fields } from '../../src/cni/validate';
import { hasCode, linkByName, listAddrs, listLinks, listRoutes, moveToNetns, Netns, rename, setAlias, setDown, setUp, type Link } from '../../src/netns';
import { formatPrefix, networkOf, parsePrefix } from '../../src/netns/ipaddr';
import { loadNetConf, type NetConf } from '../common/conf';
import { configureInterface } from '../common/ifconfig';
import { forwardGc, forwardStatus, ipamAdd, ipamCheck, ipamDel } from '../common/ipam';
import { ipamNeedsLink } from '../common/ipam-link';
import { type BusDevice, busNetdevs, checkDeviceAddress, hasDpdkDriver, kernelPathNetdevs, resolveDeviceId, SYSFS } from './sysfs';

export type Selector =
  | { by: 'device'; name: string }
  | { by: 'hwaddr'; mac: string }
  | { by: 'kernelpath'; path: string }
  | { by: 'pciBusID'; id: string }
  /** runtimeConfig.deviceID (a device plugin's allocation): a PCI or an auxiliary device. */
  | { by: 'deviceID'; id: string };

export interface HostDeviceConf {
  net: NetConf;
  selector: Selector;
  /** runtimeConfig.CNIDeviceInfoFile: where to report the PCI function handed over (DIS §4.2). */
  deviceInfoFile?: string;
}

// The reference returns plain errors, which libcni's skel reports as 999; kept for compatibility.
function fail(msg: string): never {
  throw new CniError(Code.Internal, msg);
}

const SELECTOR_KEYS = ['device', 'hwaddr', 'kernelpath', 'pciBusID'] as const;

export function loadConf(stdin: string): HostDeviceConf {
  const net = loadNetConf(stdin);
  const given = SELECTOR_KEYS.filter((k) => (net.f.optStr(k) ?? '') !== '');
  const rc = new Fields(net.runtimeConfig, 'runtimeConfig');
  const infoFile = rc.optStr('CNIDeviceInfoFile') ?? '';
  if (infoFile !== '' && !posix.isAbsolute(infoFile)) throw new CniError(Code.InvalidConfig, `runtimeConfig.CNIDeviceInfoFile: ${JSON.stringify(infoFile)} must be an absolute path`);
  const deviceInfoFile = infoFile === '' ? undefined : infoFile;
  // A device plugin's device arrives as runtimeConfig.deviceID (the capability) and, from Multus
  // and plexus, as deviceID and pciBusID in the config itself; the reference reads only the first two.
  const confDeviceID = net.f.optStr('deviceID') ?? '';
  const rcDeviceID = rc.optStr('deviceID') ?? '';
  const [field, deviceID] = rcDeviceID !== '' ? ['runtimeConfig.deviceID', rcDeviceID] : ['deviceID', confDeviceID];
  const value = (k: (typeof SELECTOR_KEYS)[number]): string => net.f.str(k);
  if (deviceID !== '') {
    // runtimeConfig.deviceID overrides pciBusID, as in the reference; next to another selector it
    // is ambiguous, where the reference silently used the other one and ignored the device it was
    // allocated. The config's own deviceID and pciBusID must agree: nothing says which one wins.
    const other = given.filter((k) => k !== 'pciBusID' || (field === 'deviceID' && value('pciBusID') !== deviceID));
    if (other.length) throw new CniError(Code.InvalidConfig, `${field} ${JSON.stringify(deviceID)} conflicts with ${other.join(', ')}: specify one device`);
    checkDeviceAddress(field, deviceID);
    return { net, selector: { by: 'deviceID', id: deviceID }, deviceInfoFile };
  }
  if (given.length === 0) fail('specify either "device", "hwaddr", "kernelpath" or "pciBusID"');
  if (given.length > 1) throw new CniError(Code.InvalidConfig, `specify only one of "device", "hwaddr", "kernelpath" or "pciBusID", not ${given.join(' and ')}`);
  const key = given[0]!;
  if (key === 'device') return { net, selector: { by: 'device', name: value(key) }, deviceInfoFile };
  if (key === 'hwaddr') return { net, selector: { by: 'hwaddr', mac: value(key) }, deviceInfoFile };
  if (key === 'kernelpath') return { net, selector: { by: 'kernelpath', path: value(key) }, deviceInfoFile };
  checkDeviceAddress('pciBusID', value(key));
  return { net, selector: { by: 'pciBusID', id: value(key) }, deviceInfoFile };
}

/**
 * DIS §3.1.3: the PCI function handed over, written to CNIDeviceInfoFile for network-status. A
 * file already there was copied from the device plugin, which knows more (rdma-device, the PF),
 * and is left as it is. Only PCI selections are reported: the address is what was asked for.
 */
function writeDeviceInfo(conf: HostDeviceConf, sys: string): void {
  if (!conf.deviceInfoFile) return;
  const bus = busOf(conf.selector, sys);
  if (bus?.bus !== 'pci') return;
  const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': bus.id } };
  try {
    mkdirSync(posix.dirname(conf.deviceInfoFile), { recursive: true, mode: 0o755 });
    writeFileSync(conf.deviceInfoFile, JSON.stringify(info), { flag: 'wx', mode: 0o444 });
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return;
    throw new CniError(Code.IOFailure, `failed to write device-info file ${conf.deviceInfoFile}: ${(err as Error).message}`);
  }
}

/** The bus device a selector names, if any (deviceID is resolved against sysfs here). */
function busOf(sel: Selector, sys: string): BusDevice | null {
  if (sel.by === 'pciBusID') return { bus: 'pci', id: sel.id };
  if (sel.by === 'deviceID') return resolveDeviceId(sys, sel.id);
  return null;
}

export function dpdkMode(sel: Selector, sys: string): boolean {
  const bus = busOf(sel, sys);
  return bus?.bus === 'pci' && hasDpdkDriver(sys, bus.id);
}

function parseMac(mac: string): string {
  return normalizeHwAddr(mac) ?? fail(`failed to parse MAC address ${JSON.stringify(mac)}`);
}

/** Netdev names the selector's sysfs entry lists (kernelpath, PCI, auxiliary). */
function sysfsNames(sel: Selector, sys: string): string[] {
  if (sel.by === 'kernelpath') return kernelPathNetdevs(sys, sel.path);
  const bus = busOf(sel, sys);
  return bus ? busNetdevs(sys, bus) : [];
}

/** The host link the selector names, as the reference's getLink picks it. */
export function findHostDevice(host: Netns, sel: Selector, sys: string): Link {
  try {
    let found: Link | null | undefined;
    if (sel.by === 'device') found = linkByName(host, sel.name);
    else if (sel.by === 'hwaddr') {
      const mac = parseMac(sel.mac);
      found = listLinks(host).find((l) => l.mac === mac);
    } else {
      const links = listLinks(host);
      found = sysfsNames(sel, sys)
        .map((n) => links.find((l) => l.name === n))
        .find((l) => l !== undefined);
    }
    return found ?? fail(sel.by === 'hwaddr' ? 'failed to find physical interface' : 'Link not found');
  } catch (err) {
    throw new CniError(Code.Internal, `failed to find host device: ${(err as Error).message}`);
  }
}

/** Whether a link the kernel handed back to the host is the one this config selects. */
function selects(l: Link, sel: Selector, sys: string): boolean {
  if (sel.by === 'device') return l.alias === sel.name;
  if (sel.by === 'hwaddr') return l.mac === normalizeHwAddr(sel.mac);
  try {
    return sysfsNames(sel, sys).includes(l.name) || (sel.by === 'kernelpath' && l.alias === posix.basename(sel.path));
  } catch {
    return false;
  }
}

function openNetns(path: string): Netns {
  try {
    return Netns.open(path);
  } catch (err) {
    throw new CniError(Code.Internal, `failed to open netns ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}

/** The container's namespace, or null when it is gone (no file, or no longer a namespace). */
function openIfPresent(path: string): Netns | null {
  if (path === '') return null;
  try {
    return Netns.open(path);
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'EINVAL')) return null;
    throw new CniError(Code.Internal, `failed to open netns ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}

function bestEffort(fn: () => void): void {
  try {
    fn();
  } catch {
    // rolling back: the error that started the rollback is the one to report
  }
}

/** Moves dev into ct as ifname (see the header for why in one request). */
function moveIn(host: Netns, ct: Netns, dev: Link, ifname: string): Link {
  // The kernel moves first and renames second: checked here so a taken name cannot strand the
  // device in the container under its host name.
  if (linkByName(ct, ifname)) fail(`the container already has an interface named ${ifname}`);
  try {
    moveToNetns(host, dev.index, ct.nsFd(), ifname);
  } catch (err) {
    const stray = linkByName(ct, dev.name);
    if (stray && stray.mac === dev.mac) bestEffort(() => moveToNetns(ct, stray.index, host.nsFd(), dev.name));
    throw new CniError(Code.Internal, `failed to move link ${dev.name} into the container as ${ifname}: ${(err as Error).message}`);
  }
  return linkByName(ct, ifname) ?? fail(`failed to find ${JSON.stringify(ifname)} in the container after moving ${dev.name}`);
}

/** Gives dev back to the host as orig, left down (its state before ADD is unknown), alias cleared. */
function moveOut(ct: Netns, host: Netns, dev: Link, orig: string): void {
  if (linkByName(host, orig)) fail(`cannot return ${dev.name} to the host as ${orig}: the host already has a link of that name`);
  if (dev.up) setDown(ct, dev.index);
  let renamed = false;
  if (dev.name !== orig) {
    try {
      rename(ct, dev.index, orig);
      renamed = true;
    } catch (err) {
      // Taken in the container (another attachment's name): the kernel renames during the move,
      // and the host sees the container name for that moment; rare enough to accept.
      if (!hasCode(err, 'EEXIST')) {
        if (dev.up) bestEffort(() => setUp(ct, dev.index));
        throw err;
      }
    }
  }
  try {
    moveToNetns(ct, dev.index, host.nsFd(), renamed ? undefined : orig);
  } catch (err) {
    // Leave it as it was found, so a retried DEL finds it by name again.
    if (renamed) bestEffort(() => rename(ct, dev.index, dev.name));
    if (dev.up) bestEffort(() => setUp(ct, dev.index));
    throw new CniError(Code.Internal, `failed to move ${dev.name} to the host as ${orig}: ${(err as Error).message}`);
  }
  const back = linkByName(host, orig);
  if (back?.alias) setAlias(host, back.index, '');
}

function print(result: Result, version: string): string {
  return JSON.stringify(formatResult(result, version));
}

export async function cmdAdd(env: CniEnv, stdin: string, sys = SYSFS): Promise<string> {
  const conf = loadConf(stdin);
  const { net, selector } = conf;
  if (dpdkMode(selector, sys)) {
    // A userspace-bound function has no netdev: IPAM only, its addresses for the application.
    if (!net.ipamType) {
      writeDeviceInfo(conf, sys);
      return print({ cniVersion: net.cniVersion }, net.cniVersion);
    }
    const ipam = await ipamAdd(net.ipamType, env, stdin, net.cniVersion);
    try {
      writeDeviceInfo(conf, sys);
    } catch (err) {
      await ipamDel(net.ipamType, env, stdin).catch(() => undefined);
      throw err;
    }
    return print({ ...ipam, dns: net.dns }, net.cniVersion);
  }
  const ct = openNetns(env.netns);
  const host = Netns.current();
  const undo: (() => Promise<void> | void)[] = [];
  try {
    const dev = findHostDevice(host, selector, sys);
    const moved = moveIn(host, ct, dev, env.ifname);
    undo.push(() => {
      moveOut(ct, host, linkByName(ct, env.ifname) ?? moved, dev.name);
      const back = linkByName(host, dev.name);
      if (dev.up && back) setUp(host, back.index);
    });
    // The alias is the only place on the device itself that survives the netns: DEL reads the
    // original name from it, even when the kernel handed the device back on its own.
    setAlias(ct, moved.index, dev.name);
    setUp(ct, moved.index);
    const iface: CniInterface = { name: env.ifname, sandbox: env.netns };
    if (moved.mac) iface.mac = moved.mac;
    if (!net.ipamType) {
      writeDeviceInfo(conf, sys);
      return print({ cniVersion: net.cniVersion, interfaces: [iface] }, net.cniVersion);
    }

    const ipamType = net.ipamType;
    const ipam = await ipamAdd(ipamType, env, stdin, net.cniVersion);
    undo.push(() => ipamDel(ipamType, env, stdin));
    if (!ipam.ips?.length) fail('IPAM plugin returned missing IP config');
    const result = attachIpamResult(ipam, [iface], 0);
    // As the reference: the result's DNS is the config's, not the IPAM plugin's.
    delete result.dns;
    if (net.dns) result.dns = net.dns;
    configureInterface(ct, moved.index, result, { resultIndex: 0 });
    writeDeviceInfo(conf, sys);
    return print(result, net.cniVersion);
  } catch (err) {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch {
        // best effort; the error that made us roll back is the one to report
      }
    }
    throw err;
  } finally {
    ct.close();
    host.close();
  }
}

/**
 * Our device in the container: by ifname, or renamed back but not yet moved (an interrupted DEL).
 * The second only where the config identifies the device by itself: a device another attachment
 * moved in under its own host name also has alias == name, and must not be taken.
 */
function findInContainer(ct: Netns, ifname: string, sel: Selector): Link | null {
  const byName = linkByName(ct, ifname);
  if (byName || (sel.by !== 'device' && sel.by !== 'hwaddr')) return byName;
  const mine = (l: Link): boolean => (sel.by === 'device' ? l.alias === sel.name : l.mac === normalizeHwAddr(sel.mac));
  return listLinks(ct).find((l) => l.alias !== null && l.alias === l.name && mine(l)) ?? null;
}

/**
 * A device the kernel handed back when its namespace died: down, named like in the container (or
 * "dev<ifindex>" when that name was taken), its alias still holding the original name.
 */
export function findReturned(host: Netns, sel: Selector, ifname: string, sys: string): Link | null {
  const handedBack = (l: Link): boolean => l.name === ifname || /^dev\d+$/.test(l.name);
  return listLinks(host).find((l) => l.alias !== null && l.alias !== '' && l.alias !== l.name && handedBack(l) && selects(l, sel, sys)) ?? null;
}

function restoreName(host: Netns, l: Link, orig: string): void {
  if (linkByName(host, orig)) fail(`cannot rename ${l.name} back to ${orig}: the host already has a link of that name`);
  if (l.up) setDown(host, l.index);
  rename(host, l.index, orig);
  setAlias(host, l.index, '');
}

function returnDevice(env: CniEnv, sel: Selector, sys: string): void {
  const host = Netns.current();
  const ct = openIfPresent(env.netns);
  try {
    const dev = ct ? findInContainer(ct, env.ifname, sel) : null;
    if (ct && dev) {
      if (!dev.alias) fail(`failed to find original ifname for ${JSON.stringify(dev.name)} (alias is not set)`);
      moveOut(ct, host, dev, dev.alias);
      return;
    }
    // Not in the container: already home (a repeated DEL), handed back by the kernel, or gone.
    const back = findReturned(host, sel, env.ifname, sys);
    if (back?.alias) restoreName(host, back, back.alias);
  } finally {
    ct?.close();
    host.close();
  }
}

export async function cmdDel(env: CniEnv, stdin: string, sys = SYSFS): Promise<void> {
  const { net, selector, deviceInfoFile } = loadConf(stdin);
  let dpdk = false;
  try {
    dpdk = dpdkMode(selector, sys);
  } catch {
    // The function vanished or lost its driver: not userspace-bound now, so look for a netdev.
  }
  // Device first, then IPAM: the address is free again only once no interface holds it. Except
  // for an IPAM that needs the device (dhcp releases its lease through it): IPAM first, and the
  // device goes home even if that fails, the first failure reported so the runtime retries.
  if (net.ipamType && ipamNeedsLink(net.ipamType)) {
    const released = await ipamDel(net.ipamType, env, stdin).then(
      () => undefined,
      (e: unknown) => e ?? new Error('IPAM DEL failed'),
    );
    if (!dpdk) returnDevice(env, selector, sys);
    if (released !== undefined) throw released;
    return;
  }
  if (!dpdk) returnDevice(env, selector, sys);
  if (net.ipamType) await ipamDel(net.ipamType, env, stdin);
  // The file names this attachment alone (DIS §4.2), whoever wrote it.
  if (deviceInfoFile) rmSync(deviceInfoFile, { force: true });
}

/** address/prefix as the kernel reports it; with network, the route destination form. */
function prefixKey(cidr: string, network = false): string {
  const p = parsePrefix(cidr);
  return formatPrefix(network ? networkOf(p) : p.bytes, p.prefixLen);
}

export async function cmdCheck(env: CniEnv, stdin: string, sys = SYSFS): Promise<void> {
  const { net, selector } = loadConf(stdin);
  const ct = openNetns(env.netns);
  try {
    if (net.ipamType) await ipamCheck(net.ipamType, env, stdin);
    const prev = net.prevResult ?? fail('Required prevResult missing');
    if (dpdkMode(selector, sys)) return;
    const intf = prev.interfaces?.find((i) => i.name === env.ifname && i.sandbox === env.netns);
    if (!intf) fail(`Sandbox in prevResult doesn't match configured netns: ${env.netns}`);
    const link = linkByName(ct, intf.name) ?? fail(`Container Interface name in prevResult: ${intf.name} not found`);
    if (intf.mac && normalizeHwAddr(intf.mac) !== link.mac) fail(`Interface ${intf.name} Mac ${intf.mac} doesn't match container Mac: ${link.mac ?? ''}`);
    const have = new Set(listAddrs(ct, { index: link.index }).map((a) => prefixKey(a.cidr)));
    for (const ip of prev.ips ?? []) {
      if (!have.has(prefixKey(ip.address))) fail(`${intf.name}: address ${ip.address} from prevResult is not configured`);
    }
    const routes = listRoutes(ct);
    for (const r of prev.routes ?? []) {
      const dst = prefixKey(r.dst, true);
      if (!routes.some((k) => prefixKey(k.dst, true) === dst && (!r.gw || k.gateway === r.gw))) {
        fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} from prevResult not found`);
      }
    }
  } finally {
    ct.close();
  }
}

// STATUS and GC: host-device keeps no state of its own beyond what its IPAM holds.
export const cmdStatus = forwardStatus;
export const cmdGc = forwardGc;

export const plugin: PluginHandlers = {
  add: (env, stdin) => cmdAdd(env, stdin),
  del: (env, stdin) => cmdDel(env, stdin),
  check: (env, stdin) => cmdCheck(env, stdin),
  status: cmdStatus,
  gc: cmdGc,
};
