// The bridge plugin, config-compatible with containernetworking/plugins' bridge: a veth pair
// between the pod and a Linux bridge on the host, addresses from IPAM, optionally the gateway on
// the bridge, masquerading and a MAC spoof check. Kernel objects: netdev.ts; IPAM's result made
// into the plugin's: result.ts; firewall: masq.ts (ipMasq, with masq-iptables.ts /
// masq-nftables.ts), spoofcheck.ts, on firewall.ts's plumbing.
//
// Where it does better than the reference: DEL removes the masquerade and spoof-check rules even
// when the netns is already gone (they are found by container ID and interface, masq.ts); a
// failed ADD removes the veth it made; GC removes stale rules.
//
// Errors in the config carry the reference's code, 999 (its skel wraps every plain Go error that
// way), like the other built-in plugins: runtimes and users see what they saw before.
import { getArg, parseCniArgs } from '../../src/cni/args';
import { interfaceNameProblem, normalizeHwAddr } from '../../src/cni/addr';
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { attachIpamResult, formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniInterface, Result } from '../../src/cni/types';
import { Fields, isObject } from '../../src/cni/validate';
import { bridgeMacFollowsPorts, hasCode, IFF, type Link, linkByIndex, linkByName, listAddrs, listLinks, Netns, setUp, sysctlKey, writeSysctl } from '../../src/netns';
import { checkAddresses, checkLink, checkRoutes, podInterface } from '../common/check';
import { loadNetConf, type NetConf } from '../common/conf';
import { configureInterface, parsePolicyRouting, policyTableOf, removePolicyRouting, type PolicyRouting } from '../common/ifconfig';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../common/ipam';
import { ipamNeedsLink } from '../common/ipam-link';
import { deleteQuietly, withPodNetns } from '../common/link';
import { createVethToHost, enableForwarding, ensureBridge, ensureGatewayAddr, ensureVlanGateway, setupPort, waitDad, waitOperUp } from './netdev';
import { type Attachment, findTool } from './firewall';
import { gcMasq, type MasqBackend, masqBackend, missingMasq, setupMasq, teardownMasq } from './masq';
import { calcGateways, dnsSet, familyOf, withoutDuplicateRoutes } from './result';
import { gcSpoofChecks, setupSpoofCheck, spoofCheckPresent, teardownSpoofCheck } from './spoofcheck';

export interface BridgeConf {
  net: NetConf;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  ipMasqBackend?: MasqBackend;
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  vlan: number;
  vlanTrunk: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** From CNI_ARGS MAC=, args.cni.mac, runtimeConfig.mac (increasing precedence). */
  mac?: string;
  policy?: PolicyRouting;
}

// Config errors carry the reference's code (see the file comment).
const configError = (msg: string): CniError => new CniError(Code.Internal, msg);

/** vlanTrunk entries ({id} or {minID, maxID}) as a sorted list of VLAN IDs. */
function parseVlanTrunk(f: Fields): number[] {
  const list = f.optArr('vlanTrunk');
  if (list === undefined) return [];
  const ids = new Set<number>();
  list.forEach((item, i) => {
    if (!isObject(item)) throw configError(`vlanTrunk[${i}]: must be an object, such as {"id": 100} or {"minID": 100, "maxID": 200}`);
    const t = new Fields(item, `vlanTrunk[${i}]`, Code.Internal);
    const min = t.optInt('minID', 1, 4094);
    const max = t.optInt('maxID', 1, 4094);
    if ((min === undefined) !== (max === undefined)) throw configError(`vlanTrunk[${i}]: minID and maxID must be given together`);
    if (min !== undefined && max !== undefined) {
      if (max < min) throw configError(`vlanTrunk[${i}]: minID ${min} is greater than maxID ${max}`);
      for (let v = min; v <= max; v++) ids.add(v);
    }
    const id = t.optInt('id', 1, 4094);
    if (id !== undefined) ids.add(id);
  });
  return [...ids].sort((a, b) => a - b);
}

function requestedMac(net: NetConf, cniArgs: string): string | undefined {
  // The reference's bridge reads no top-level `mac` (unlike macvlan): only these three.
  let mac = getArg(parseCniArgs(cniArgs), 'MAC');
  if (typeof net.argsCni.mac === 'string' && net.argsCni.mac !== '') mac = net.argsCni.mac;
  if (typeof net.runtimeConfig.mac === 'string' && net.runtimeConfig.mac !== '') mac = net.runtimeConfig.mac;
  if (mac === undefined || mac === '') return undefined;
  const norm = normalizeHwAddr(mac);
  if (!norm) throw configError(`mac: ${JSON.stringify(mac)} is not an Ethernet MAC address`);
  return norm;
}

export function loadConf(stdin: string, cniArgs: string): BridgeConf {
  const net = loadNetConf(stdin);
  const f = new Fields(net.raw, '', Code.Internal);
  const bridge = f.optStr('bridge') || 'cni0';
  const problem = interfaceNameProblem(bridge);
  if (problem) throw configError(`bridge: ${JSON.stringify(bridge)} ${problem}`);
  const backend = f.optStr('ipMasqBackend');
  if (backend !== undefined && backend !== 'iptables' && backend !== 'nftables') throw configError(`ipMasqBackend: must be "iptables" or "nftables", got ${JSON.stringify(backend)}`);
  const isDefaultGateway = f.bool('isDefaultGateway', false);
  return {
    net,
    bridge,
    isDefaultGateway,
    // A default gateway must be a gateway: the reference forces this too.
    isGateway: isDefaultGateway || f.bool('isGateway', false),
    forceAddress: f.bool('forceAddress', false),
    ipMasq: f.bool('ipMasq', false),
    ipMasqBackend: backend as MasqBackend | undefined,
    mtu: f.optInt('mtu', 0, 65535) ?? 0,
    hairpinMode: f.bool('hairpinMode', false),
    promiscMode: f.bool('promiscMode', false),
    vlan: f.optInt('vlan', 0, 4094) ?? 0,
    vlanTrunk: parseVlanTrunk(f),
    // The reference defaults this to true "to maintain existing behavior".
    preserveDefaultVlan: f.bool('preserveDefaultVlan', true),
    macspoofchk: f.bool('macspoofchk', false),
    enabledad: f.bool('enabledad', false),
    disableContainerInterface: f.bool('disableContainerInterface', false),
    portIsolation: f.bool('portIsolation', false),
    mac: requestedMac(net, cniArgs),
    policy: parsePolicyRouting(net.raw),
  };
}

function trySysctl(ns: Netns, key: string, value: number): void {
  try {
    writeSysctl(ns, key, value);
  } catch {
    // best effort, as the reference: a kernel without IPv6 has no accept_dad
  }
}

/** DAD off unless enabledad: hairpin echoes a pod's own neighbour solicitations back to it. */
function setDad(cont: Netns, ifname: string, enabled: boolean): void {
  if (enabled) {
    trySysctl(cont, sysctlKey('net', 'ipv6', 'conf', ifname, 'enhanced_dad'), 1);
    trySysctl(cont, sysctlKey('net', 'ipv6', 'conf', ifname, 'accept_dad'), 1);
  } else {
    trySysctl(cont, sysctlKey('net', 'ipv6', 'conf', ifname, 'accept_dad'), 0);
  }
}

function configureContainer(cont: Netns, link: Link, result: Result, c: BridgeConf): void {
  setDad(cont, link.name, c.enabledad);
  configureInterface(cont, link.index, withoutDuplicateRoutes(result), { resultIndex: 2, policy: c.policy, dad: c.enabledad });
}

function attachment(c: BridgeConf, env: CniEnv): Attachment {
  return { network: c.net.name, containerId: env.containerId, ifname: env.ifname };
}

type Undo = () => unknown;

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  const c = loadConf(stdin, env.args);
  const ipamType = c.net.ipamType;
  if (ipamType && c.disableContainerInterface) throw configError('cannot use IPAM when disableContainerInterface is set');
  if (c.hairpinMode && c.promiscMode) throw configError('cannot set hairpinMode and promiscMode at the same time');
  const backend = c.ipMasq && ipamType ? masqBackend(c.ipMasqBackend) : undefined;
  const a = attachment(c, env);
  return withPodNetns(env.netns, (host, cont) => addIn(host, cont, c, env, stdin, a, backend));
}

async function addIn(host: Netns, cont: Netns, c: BridgeConf, env: CniEnv, stdin: string, a: Attachment, backend: MasqBackend | undefined): Promise<string> {
  const ipamType = c.net.ipamType;
  const undo: Undo[] = [];
  try {
    let br = ensureBridge(host, { name: c.bridge, mtu: c.mtu, promisc: c.promiscMode, vlanFiltering: c.vlan !== 0 || c.vlanTrunk.length > 0 });
    const hostName = createVethToHost(cont, host, { name: env.ifname, mtu: c.mtu, mac: c.mac });
    const contLink = linkByName(cont, env.ifname);
    if (contLink) undo.push(() => deleteQuietly(cont, contLink.index));
    let hostVeth = linkByName(host, hostName);
    if (!contLink?.mac || !hostVeth) throw new CniError(Code.Internal, `veth pair ${env.ifname}/${hostName} vanished right after creation`);
    setupPort(host, hostVeth, br, { hairpin: c.hairpinMode, isolated: c.portIsolation, vlan: c.vlan, trunk: c.vlanTrunk, preserveDefaultVlan: c.preserveDefaultVlan });

    if (c.macspoofchk) {
      undo.push(() => teardownSpoofCheck(a));
      await setupSpoofCheck(a, hostName, contLink.mac);
    }
    const brIf: CniInterface = { name: br.name };
    const hostIf: CniInterface = { name: hostName };
    const extra: CniInterface[] = [];
    let result: Result = { cniVersion: c.net.cniVersion };
    if (ipamType) {
      const ipam = await ipamAdd(ipamType, env, stdin, c.net.cniVersion);
      undo.push(() => ipamDel(ipamType, env, stdin));
      if (!ipam.ips?.length) throw new CniError(Code.Internal, 'IPAM plugin returned missing IP config');
      result = attachIpamResult(ipam, [brIf, hostIf, { name: env.ifname }], 2);
      const gateways = calcGateways(result, c);
      const cidrs = (result.ips ?? []).map((ip) => ip.address);
      const policy = c.policy;
      // Policy rules outlive the veth: a failure after this point must remove them too.
      if (policy) undo.push(() => removePolicyRouting(cont, env.ifname, policy, cidrs));
      configureContainer(cont, contLink, result, c);
      if (c.enabledad && cidrs.some((x) => familyOf(x) === 6)) await waitDad(cont, contLink.index, env.ifname);
      let vlanGateway: Link | undefined;
      for (const gw of gateways) {
        if (c.vlan !== 0 && !vlanGateway) {
          vlanGateway = ensureVlanGateway(host, br, c.vlan, c.preserveDefaultVlan);
          extra.push({ name: vlanGateway.name, mac: vlanGateway.mac ?? undefined });
        }
        ensureGatewayAddr(host, vlanGateway ?? br, gw, c.forceAddress);
      }
      for (const fam of new Set(gateways.map(familyOf))) enableForwarding(host, fam);
      if (backend) {
        undo.push(() => teardownMasq(backend, a, cidrs));
        await setupMasq(backend, a, cidrs);
      }
    } else if (!c.disableContainerInterface) {
      setDad(cont, env.ifname, c.enabledad);
      setUp(cont, contLink.index);
    }

    // The pod is only reachable once the port forwards; a down container side never gets there.
    hostVeth = c.disableContainerInterface ? linkByIndex(host, hostVeth.index) : await waitOperUp(host, hostVeth.index, hostName);
    br = linkByIndex(host, br.index) ?? br;
    // Read last: the bridge takes a port's MAC until it has an address, a veth may change its own.
    brIf.mac = br.mac ?? undefined;
    hostIf.mac = hostVeth?.mac ?? undefined;
    result.interfaces = [brIf, hostIf, { name: env.ifname, mac: contLink.mac, sandbox: env.netns }, ...extra];
    if (dnsSet(c.net.dns)) result.dns = c.net.dns;
    return JSON.stringify(formatResult(result, c.net.cniVersion));
  } catch (err) {
    // Undo in reverse, every step even if one fails: the ADD's own error is the one to report.
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // keep undoing
      }
    }
    throw err;
  }
}

/**
 * The pod's netns, or null when it is gone (or its file no longer is a netns): the veth went with
 * it, while IPAM and the host's rules remain to be cleaned up.
 */
function openIfPresent(path: string): Netns | null {
  try {
    return Netns.open(path);
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'EINVAL')) return null;
    throw new CniError(Code.Internal, `failed to open netns ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}

/** The masquerading backend ADD used; undefined when the host has none, so nothing was set up. */
function usableBackend(c: BridgeConf): MasqBackend | undefined {
  try {
    return masqBackend(c.ipMasqBackend);
  } catch {
    return undefined;
  }
}

/** Addresses the attachment had, for finding masquerade rules the reference plugin made. */
function previousIps(c: BridgeConf): string[] {
  return (c.net.prevResult?.ips ?? []).map((ip) => ip.address);
}

async function cmdDel(env: CniEnv, stdin: string): Promise<void> {
  const c = loadConf(stdin, env.args);
  const ipamType = c.net.ipamType;
  const known = previousIps(c);
  // Every step runs even when an earlier one failed, and the first failure is reported so the
  // runtime retries: a DEL never turns a failure into a silent leak.
  const failures: unknown[] = [];
  // IPAM after the veth is gone (the address is free only once nothing holds it), unless the IPAM
  // needs the pod's interface for its DEL (dhcp's release), as upstream's bridge does again.
  const ipamFirst = ipamNeedsLink(ipamType);
  if (ipamType && ipamFirst) await ipamDel(ipamType, env, stdin).catch((e: unknown) => failures.push(e));
  const cont = env.netns === '' ? null : openIfPresent(env.netns);
  if (cont) {
    try {
      const link = linkByName(cont, env.ifname);
      if (link) {
        for (const addr of listAddrs(cont, { index: link.index })) if (addr.scope === 0) known.push(addr.cidr);
        deleteQuietly(cont, link.index); // takes the host end with it
      }
      // Rules outlive their interface (and the meta-plugin may have deleted it already).
      if (c.policy) removePolicyRouting(cont, env.ifname, c.policy, known);
    } finally {
      cont.close();
    }
  }
  if (ipamType && !ipamFirst) await ipamDel(ipamType, env, stdin).catch((e: unknown) => failures.push(e));
  const a = attachment(c, env);
  if (c.macspoofchk) await teardownSpoofCheck(a).catch((e: unknown) => failures.push(e));
  const backend = c.ipMasq && ipamType ? usableBackend(c) : undefined;
  if (backend) {
    const families = known.length ? [...new Set(known.map(familyOf))] : ([4, 6] as const);
    await teardownMasq(backend, a, known, families).catch((e: unknown) => failures.push(e));
  }
  if (failures.length) throw failures[0];
}

function fail(msg: string): never {
  throw new CniError(Code.Internal, msg);
}

async function cmdCheck(env: CniEnv, stdin: string): Promise<void> {
  const c = loadConf(stdin, env.args);
  const ipamType = c.net.ipamType;
  if (ipamType) await ipamCheck(ipamType, env, stdin);
  const { prev, index, intf } = podInterface(c.net.prevResult, env.ifname, env.netns);
  const ifs = prev.interfaces ?? [];
  const brIf = ifs.find((i) => i.name === c.bridge && !i.sandbox);
  if (!brIf) fail(`CNI created bridge ${c.bridge} is not in prevResult`);
  const a = attachment(c, env);
  await withPodNetns(env.netns, async (host, cont) => {
    const br = linkByName(host, c.bridge);
    if (!br) fail(`CNI created bridge ${c.bridge} in host namespace was not found`);
    if (br.kind !== 'bridge') fail(`Interface ${c.bridge} does not have link type of bridge`);
    // The kernel moves an unpinned bridge's MAC as ports come and go (a bridge plexus did not
    // make, or the reference's without isGateway): only a MAC someone set is compared.
    if (brIf.mac && normalizeHwAddr(brIf.mac) !== br.mac && !bridgeMacFollowsPorts(listLinks(host), br)) fail(`Bridge interface ${c.bridge} Mac doesn't match: ${brIf.mac}`);
    const promisc = (br.flags & IFF.PROMISC) !== 0;
    if (promisc !== c.promiscMode) fail(`Bridge interface ${c.bridge} configured Promisc Mode ${c.promiscMode} doesn't match current state: ${promisc}`);

    const link = checkLink(linkByName(cont, env.ifname), intf, 'veth');
    // The host end: a veth of prevResult whose peer is the pod's interface, a port of the bridge.
    const hostIf = ifs.find((i) => {
      if (i === brIf || i === intf || i.sandbox) return false;
      const l = linkByName(host, i.name);
      return l !== null && l.kind === 'veth' && l.index === link.parentIndex && l.parentIndex === link.index && l.masterIndex === br.index;
    });
    if (!hostIf) fail(`CNI veth created for bridge ${c.bridge} was not found`);
    const hostLink = linkByName(host, hostIf.name);
    if (hostIf.mac && hostIf.mac !== hostLink?.mac) fail(`Interface ${hostIf.name} Mac doesn't match: ${hostIf.mac} not found`);

    checkAddresses(cont, link, prev.ips, index);
    const table = c.policy ? policyTableOf(cont, env.ifname, c.policy) : undefined;
    if (c.policy && table === undefined && prev.ips?.length) fail(`policy routing rules for ${env.ifname} are missing`);
    checkRoutes(cont, prev.routes, table);

    if (c.macspoofchk && !(await spoofCheckPresent(a, hostIf.name, intf.mac ?? link.mac ?? ''))) fail(`MAC spoof check rules for ${env.containerId}/${env.ifname} are missing`);
    if (c.ipMasq && ipamType) {
      const missing = await missingMasq(masqBackend(c.ipMasqBackend), a, (prev.ips ?? []).map((ip) => ip.address));
      if (missing.length) fail(`masquerade rules for ${missing.join(', ')} are missing`);
    }
  });
}

async function cmdStatus(env: CniEnv, stdin: string): Promise<void> {
  const c = loadConf(stdin, env.args);
  if (c.ipMasq) {
    try {
      masqBackend(c.ipMasqBackend);
    } catch (err) {
      throw new CniError(Code.NotAvailable, (err as Error).message);
    }
    if (c.ipMasqBackend && !findTool(c.ipMasqBackend === 'iptables' ? 'iptables-restore' : 'nft')) throw new CniError(Code.NotAvailable, `ipMasqBackend ${c.ipMasqBackend} is not installed`);
  }
  if (c.macspoofchk && !findTool('nft')) throw new CniError(Code.NotAvailable, 'macspoofchk needs nft, which is not installed');
  if (c.net.ipamType) await ipamStatus(c.net.ipamType, env, stdin);
}

/** `cni.dev/valid-attachments` (or its older alias) of a GC request; undefined when absent. */
function validAttachments(c: BridgeConf): { containerId: string; ifname: string }[] | undefined {
  const raw = c.net.raw['cni.dev/valid-attachments'] ?? c.net.raw['cni.dev/attachments'];
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw configError('cni.dev/valid-attachments: must be a list');
  return raw.map((v, i) => {
    if (!isObject(v)) throw configError(`cni.dev/valid-attachments[${i}]: must be an object`);
    const f = new Fields(v, `cni.dev/valid-attachments[${i}]`, Code.Internal);
    return { containerId: f.str('containerID'), ifname: f.str('ifname') };
  });
}

async function cmdGc(env: CniEnv, stdin: string): Promise<void> {
  const c = loadConf(stdin, env.args);
  const valid = validAttachments(c);
  const failures: unknown[] = [];
  // Without the list nothing can be told stale; rules are left alone then.
  const backend = c.ipMasq ? usableBackend(c) : undefined;
  if (backend && valid) await gcMasq(backend, c.net.name, valid).catch((e: unknown) => failures.push(e));
  if (c.macspoofchk) {
    const host = Netns.current();
    try {
      await gcSpoofChecks((name) => linkByName(host, name) !== null).catch((e: unknown) => failures.push(e));
    } finally {
      host.close();
    }
  }
  if (c.net.ipamType) await ipamGc(c.net.ipamType, env, stdin).catch((e: unknown) => failures.push(e));
  if (failures.length) throw failures[0];
}

export const plugin: PluginHandlers = { add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus, gc: cmdGc };
