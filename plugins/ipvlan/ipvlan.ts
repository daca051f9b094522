// ipvlan: an ipvlan link on a master interface, moved into the pod as CNI_IFNAME and configured
// from IPAM or, chained, from prevResult. Config-compatible with the reference plugin
// (containernetworking/plugins plugins/main/ipvlan): master (default: the default-route interface,
// or prevResult's single interface in a chain), mode l2|l3|l3s, mtu, linkInContainer, ipam; plus
// plexus's opt-in policyRouting. An ipvlan has its master's MAC, so there is no `mac` key. Config
// errors carry the reference's code, 999 (its skel wraps every plain Go error that way).
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { attachIpamResult, formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { Result } from '../../src/cni/types';
import { Fields } from '../../src/cni/validate';
import { createLink, hasCode, type IpvlanMode, linkByName, type Netns } from '../../src/netns';
import { checkAddresses, checkLink, checkPolicyRoutes, podInterface } from '../common/check';
import { loadNetConf, type NetConf } from '../common/conf';
import { configureInterface, parsePolicyRouting, type PolicyRouting } from '../common/ifconfig';
import { forwardGc, forwardStatus, ipamAdd, ipamCheck } from '../common/ipam';
import { createPodLink, defaultRouteInterface, delPodLink, masterLink, undoPodLink, withPodNetns } from '../common/link';

const MODES: readonly IpvlanMode[] = ['l2', 'l3', 'l3s'];

interface IpvlanConf {
  net: NetConf;
  master: string;
  masterIndex: number;
  mode: IpvlanMode;
  /** 0: inherit the master's. */
  mtu: number;
  linkInContainer: boolean;
  policy?: PolicyRouting;
}

function modeFromString(s: string | undefined): IpvlanMode {
  if (s === undefined || s === '') return 'l2';
  if ((MODES as readonly string[]).includes(s)) return s as IpvlanMode;
  throw new CniError(Code.Internal, `unknown ipvlan mode: ${JSON.stringify(s)}`);
}

/**
 * The master's name: the config's; else, chained after a plugin that made one interface, that
 * interface; else the default-route interface (of the pod with linkInContainer).
 */
function masterName(f: Fields, net: NetConf, where: Netns): string {
  const master = f.optStr('master');
  if (master) return master;
  if (!net.prevResult) return defaultRouteInterface(where);
  const ifs = net.prevResult.interfaces ?? [];
  if (ifs.length === 1 && ifs[0]?.name) return ifs[0].name;
  throw new CniError(Code.Internal, 'chained master failure. PrevResult lacks a single named interface');
}

function loadConf(stdin: string, host: Netns, pod: Netns): IpvlanConf {
  const net = loadNetConf(stdin);
  const f = new Fields(net.raw, '', Code.Internal);
  const linkInContainer = f.bool('linkInContainer', false);
  const mode = modeFromString(f.optStr('mode'));
  const where = linkInContainer ? pod : host;
  const master = masterName(f, net, where);
  const m = masterLink(where, master, linkInContainer);
  // Unlike macvlan's, the reference checks no range: the kernel takes up to the master's max_mtu
  // (an ipvlan may be larger than its master), and a value <= 0 means "inherit" (never sent).
  const mtu = Math.max(0, f.optInt('mtu', -0x80000000, 0x7fffffff) ?? 0);
  return { net, master, masterIndex: m.index, mode, mtu, linkInContainer, policy: parsePolicyRouting(net.raw) };
}

/** A kernel built without ipvlan answers EOPNOTSUPP: say what is missing, not just the errno. */
function explain(err: unknown): never {
  if (hasCode(err, 'EOPNOTSUPP')) {
    throw new CniError(Code.Internal, `failed to create ipvlan: this kernel has no ipvlan support (${(err as Error).message}); load the ipvlan module (modprobe ipvlan) or use macvlan`);
  }
  throw err;
}

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  return withPodNetns(env.netns, async (host, pod) => {
    const conf = loadConf(stdin, host, pod);
    // The master is looked up in the host netns unless linkInContainer (as the reference does).
    const link = createPodLink(pod, env.ifname, 'ipvlan', (name) => {
      try {
        createLink(conf.linkInContainer ? pod : host, {
          name,
          parentIndex: conf.masterIndex,
          mtu: conf.mtu || undefined,
          netnsFd: conf.linkInContainer ? undefined : pod.nsFd(),
          info: { kind: 'ipvlan', mode: conf.mode },
        });
      } catch (err) {
        explain(err);
      }
    });
    const iface = { name: env.ifname, mac: link.mac ?? undefined, sandbox: env.netns };
    let ipamDone = false;
    let addresses: string[] = [];
    try {
      let result: Result;
      const prevIps = conf.net.prevResult?.ips ?? [];
      if (!conf.net.ipamType && prevIps.length > 0) {
        // Chained without IPAM: the addresses a previous plugin got move onto this interface.
        result = { ...attachIpamResult(conf.net.prevResult ?? { cniVersion: conf.net.cniVersion }, [iface], 0), cniVersion: conf.net.cniVersion };
      } else {
        if (!conf.net.ipamType) throw new CniError(Code.Internal, 'ipam: an IPAM plugin is required unless prevResult carries IPs (set ipam.type)');
        const ipam = await ipamAdd(conf.net.ipamType, env, stdin, conf.net.cniVersion);
        ipamDone = true;
        if (!ipam.ips?.length) throw new CniError(Code.Internal, 'IPAM plugin returned missing IP config');
        result = attachIpamResult(ipam, [iface], 0);
      }
      addresses = (result.ips ?? []).map((ip) => ip.address);
      configureInterface(pod, link.index, result, { resultIndex: 0, policy: conf.policy });
      // The config's dns replaces IPAM's, as in the reference (result.DNS = n.DNS).
      result.dns = conf.net.dns;
      return JSON.stringify(formatResult(result, conf.net.cniVersion));
    } catch (err) {
      await undoPodLink(pod, link.index, { env, stdin, allocatedBy: ipamDone ? conf.net.ipamType : undefined, policy: conf.policy, addresses });
      throw err;
    }
  });
}

async function cmdCheck(env: CniEnv, stdin: string): Promise<void> {
  await withPodNetns(env.netns, async (host, pod) => {
    const net = loadNetConf(stdin);
    const f = new Fields(net.raw, '', Code.Internal);
    const mode = modeFromString(f.optStr('mode'));
    if (net.ipamType) await ipamCheck(net.ipamType, env, stdin);
    const { prev, index, intf } = podInterface(net.prevResult, env.ifname, env.netns);
    // prevResult is this plugin's own result now, so the chained-master rule cannot apply: the
    // master is checked only when named (the reference fails CHECK whenever it is unset).
    const master = f.optStr('master');
    const linkInContainer = f.bool('linkInContainer', false);
    if (master) masterLink(linkInContainer ? pod : host, master, linkInContainer);
    const link = checkLink(linkByName(pod, env.ifname), intf, 'ipvlan');
    const have = link.info?.kind === 'ipvlan' ? link.info.mode : null;
    if (have !== mode) throw new CniError(Code.Internal, `Container IPVlan mode ${have ?? 'unknown'} does not match expected value: ${mode}`);
    checkAddresses(pod, link, prev.ips, index);
    checkPolicyRoutes(pod, env.ifname, parsePolicyRouting(net.raw), prev);
  });
}

export const plugin: PluginHandlers = { add: cmdAdd, del: delPodLink('ipvlan'), check: cmdCheck, status: forwardStatus, gc: forwardGc };
