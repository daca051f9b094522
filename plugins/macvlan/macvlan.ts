// macvlan: a macvlan link on a master interface, moved into the pod as CNI_IFNAME and configured
// from IPAM. Config-compatible with the reference plugin (containernetworking/plugins
// plugins/main/macvlan): master, mode, mtu, mac (+ CNI_ARGS MAC, args.cni.mac, runtimeConfig.mac),
// linkInContainer, bcqueuelen, ipam; plus plexus's opt-in policyRouting. Config errors carry the
// reference's code, 999: its skel wraps every plain Go error that way, and runtimes see the same.
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { attachIpamResult, formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { Result } from '../../src/cni/types';
import { Fields } from '../../src/cni/validate';
import { createMacvlan, linkByName, type MacvlanMode, type Netns, setUp } from '../../src/netns';
import { checkAddresses, checkLink, checkPolicyRoutes, podInterface } from '../common/check';
import { loadNetConf, requestedMac, type NetConf } from '../common/conf';
import { configureInterface, parsePolicyRouting, type PolicyRouting } from '../common/ifconfig';
import { forwardGc, forwardStatus, ipamAdd, ipamCheck } from '../common/ipam';
import { createPodLink, defaultRouteInterface, delPodLink, masterLink, undoPodLink, withPodNetns } from '../common/link';

const MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

interface MacvlanConf {
  net: NetConf;
  master: string;
  masterIndex: number;
  mode: MacvlanMode;
  /** 0: inherit the master's. */
  mtu: number;
  mac?: string;
  linkInContainer: boolean;
  bcQueueLen?: number;
  policy?: PolicyRouting;
}

function modeFromString(s: string | undefined): MacvlanMode {
  if (s === undefined || s === '') return 'bridge';
  if ((MODES as readonly string[]).includes(s)) return s as MacvlanMode;
  throw new CniError(Code.Internal, `unknown macvlan mode: ${JSON.stringify(s)}`);
}

/** The whole config, master resolved and checked where it lives (host, or pod with linkInContainer). */
function loadConf(stdin: string, env: CniEnv, host: Netns, pod: Netns): MacvlanConf {
  const net = loadNetConf(stdin);
  const f = new Fields(net.raw, '', Code.Internal);
  const linkInContainer = f.bool('linkInContainer', false);
  const where = linkInContainer ? pod : host;
  const master = f.optStr('master') || defaultRouteInterface(where);
  const m = masterLink(where, master, linkInContainer);
  const mtu = f.optInt('mtu', -0x80000000, 0x7fffffff) ?? 0;
  if (mtu < 0 || mtu > m.mtu) throw new CniError(Code.Internal, `invalid MTU ${mtu}, must be [0, master MTU(${m.mtu})]`);
  const bc = f.optInt('bcqueuelen', 0, 0xffffffff);
  return {
    net,
    master,
    masterIndex: m.index,
    mode: modeFromString(f.optStr('mode')),
    mtu,
    mac: requestedMac(net, env.args, Code.Internal),
    linkInContainer,
    // 0 leaves the kernel's default (1000), as an unset key does.
    bcQueueLen: bc ? bc : undefined,
    policy: parsePolicyRouting(net.raw),
  };
}

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  return withPodNetns(env.netns, async (host, pod) => {
    const conf = loadConf(stdin, env, host, pod);
    const link = createPodLink(pod, env.ifname, 'macvlan', (name) =>
      createMacvlan(conf.linkInContainer ? pod : host, name, conf.masterIndex, {
        mode: conf.mode,
        mtu: conf.mtu || undefined,
        mac: conf.mac,
        bcQueueLen: conf.bcQueueLen,
        netnsFd: conf.linkInContainer ? undefined : pod.nsFd(),
      }),
    );
    const iface = { name: env.ifname, mac: link.mac ?? undefined, sandbox: env.netns };
    let ipamDone = false;
    let addresses: string[] = [];
    try {
      let result: Result = { cniVersion: conf.net.cniVersion, interfaces: [iface] };
      if (conf.net.ipamType) {
        const ipam = await ipamAdd(conf.net.ipamType, env, stdin, conf.net.cniVersion);
        ipamDone = true;
        if (!ipam.ips?.length) throw new CniError(Code.Internal, 'IPAM plugin returned missing IP config');
        result = attachIpamResult(ipam, [iface], 0);
        addresses = (result.ips ?? []).map((ip) => ip.address);
        configureInterface(pod, link.index, result, { resultIndex: 0, policy: conf.policy });
      } else {
        // L2 only: the link just comes up, as the reference does.
        setUp(pod, link.index);
      }
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
    const conf = loadConf(stdin, env, host, pod);
    if (conf.net.ipamType) await ipamCheck(conf.net.ipamType, env, stdin);
    const { prev, index, intf } = podInterface(conf.net.prevResult, env.ifname, env.netns);
    const link = checkLink(linkByName(pod, env.ifname), intf, 'macvlan');
    const mode = link.info?.kind === 'macvlan' ? link.info.mode : null;
    if (mode !== conf.mode) throw new CniError(Code.Internal, `Container macvlan mode ${mode ?? 'unknown'} does not match expected value: ${conf.mode}`);
    checkAddresses(pod, link, prev.ips, index);
    checkPolicyRoutes(pod, env.ifname, conf.policy, prev);
  });
}

export const plugin: PluginHandlers = { add: cmdAdd, del: delPodLink('macvlan'), check: cmdCheck, status: forwardStatus, gc: forwardGc };
