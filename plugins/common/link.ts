// Putting a new link into a pod's namespace, the way the reference macvlan/ipvlan do it, plus the
// lookups their configs need (master by name, the default-route interface).
import { randomBytes } from 'node:crypto';
import { CniError, Code } from '../../src/cni/errors';
import { changeLink, deleteLink, hasCode, linkByIndex, linkByName, listRoutes, Netns, type Link } from '../../src/netns';
import type { CniEnv } from '../../src/cni/env';
import { loadNetConf, type NetConf } from './conf';
import { parsePolicyRouting, removePolicyRouting, type PolicyRouting } from './ifconfig';
import { ipamDel } from './ipam';

/** Opens the pod's namespace and a handle on ours; both are closed when fn settles. */
export async function withPodNetns<T>(path: string, fn: (host: Netns, pod: Netns) => Promise<T>): Promise<T> {
  const host = Netns.current();
  try {
    let pod: Netns;
    try {
      pod = Netns.open(path);
    } catch (err) {
      throw new CniError(Code.Internal, `failed to open netns ${JSON.stringify(path)}: ${(err as Error).message}`);
    }
    try {
      return await fn(host, pod);
    } finally {
      pod.close();
    }
  } finally {
    host.close();
  }
}

/** "pxtmp" + 8 hex digits: 13 bytes, and recognisable if one is ever left behind. */
export function tempLinkName(): string {
  return `pxtmp${randomBytes(4).toString('hex')}`;
}

/**
 * Makes a link in `pod` named ifname: `create(name)` must create it there (directly, or from the
 * host with IFLA_NET_NS_FD) under the name it is given.
 *
 * Why a temporary name, then a rename inside the pod: old kernels registered a link created with
 * IFLA_NET_NS_FD in the caller's namespace first, so a pod name the host also uses (eth0) failed
 * with EEXIST: the reference plugins' "kernel bug" workaround. The link is created directly in
 * the pod, never in the host, so host udev/NetworkManager never see it (udev's MACAddressPolicy
 * would race us for its MAC) and a plugin killed halfway leaves nothing behind in the host: a
 * stray temp link dies with the pod's namespace.
 */
export function createPodLink(pod: Netns, ifname: string, kind: string, create: (name: string) => void): Link {
  const tmp = tempLinkName();
  create(tmp);
  const made = linkByName(pod, tmp);
  if (!made) throw new CniError(Code.Internal, `failed to create ${kind}: ${tmp} did not appear in the pod's namespace`);
  try {
    changeLink(pod, made.index, { name: ifname }, `rename ${kind} ${tmp} to ${ifname}`);
  } catch (err) {
    deleteQuietly(pod, made.index);
    throw new CniError(Code.Internal, `failed to rename ${kind} to ${JSON.stringify(ifname)}: ${(err as Error).message}`);
  }
  const link = linkByIndex(pod, made.index);
  if (!link) throw new CniError(Code.Internal, `${kind} ${ifname} vanished right after it was created`);
  return link;
}

/** Runs one rollback step, swallowing its failure: the error being rolled back is what counts. */
export function attempt(step: () => unknown): void {
  try {
    step();
  } catch {
    // best effort: the caller is already failing with the original error
  }
}

/** Deletes a link, tolerating that it is already gone (DEL and rollbacks run more than once). */
export function deleteQuietly(ns: Netns, index: number): void {
  try {
    deleteLink(ns, index);
  } catch (err) {
    if (!hasCode(err, 'ENODEV')) throw err;
  }
}

/** The interface of the first default route in the main table (the reference's default master). */
export function defaultRouteInterface(ns: Netns): string {
  for (const fam of [4, 6] as const) {
    for (const r of listRoutes(ns, { family: fam, table: 254 })) {
      if (r.dst !== '0.0.0.0/0' && r.dst !== '::/0') continue;
      const oif = r.oif || r.nexthops?.find((n) => n.oif)?.oif;
      const link = oif ? linkByIndex(ns, oif) : null;
      if (link) return link.name;
    }
  }
  throw new CniError(Code.Internal, 'no default route interface found (set "master")');
}

/** The master link by name, or a CNI error naming where it was looked for. */
export function masterLink(ns: Netns, name: string, inPod: boolean): Link {
  const link = linkByName(ns, name);
  if (!link) throw new CniError(Code.Internal, `failed to lookup master ${JSON.stringify(name)}: no such link in the ${inPod ? "pod's" : 'host'} network namespace`);
  return link;
}

/**
 * The pod half of a macvlan/ipvlan DEL, after IPAM: the link named ifname if it is of `kind` (never
 * another plugin's link that happens to have the name) and its policy-routing rules. A namespace
 * that is gone (ENOENT) or no longer one (EINVAL: an unmounted bind file) has nothing left to do.
 */
export function removePodLink(netnsPath: string, ifname: string, kind: string, net: NetConf): void {
  let pod: Netns;
  try {
    pod = Netns.open(netnsPath);
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'EINVAL')) return;
    throw err;
  }
  try {
    let policy: PolicyRouting | undefined;
    try {
      policy = parsePolicyRouting(net.raw);
    } catch {
      policy = { table: 100, priority: 1000, auto: true }; // a broken key still gets its rules removed
    }
    if (policy) removePolicyRouting(pod, ifname, policy, net.prevResult?.ips?.map((ip) => ip.address));
    const link = linkByName(pod, ifname);
    if (link?.kind === kind) deleteQuietly(pod, link.index);
  } finally {
    pod.close();
  }
}

/**
 * Undoes a failed ADD of a pod link (macvlan, ipvlan), so a retry starts clean and nothing leaks:
 * IPAM (when it had allocated), policy rules, the link. Each step is best effort: the error the
 * runtime sees is the one that failed the ADD.
 */
export async function undoPodLink(
  pod: Netns,
  linkIndex: number,
  o: { env: CniEnv; stdin: string; allocatedBy?: string; policy?: PolicyRouting; addresses: string[] },
): Promise<void> {
  if (o.allocatedBy) await ipamDel(o.allocatedBy, o.env, o.stdin).catch(() => undefined);
  const { policy } = o;
  attempt(() => policy && removePolicyRouting(pod, o.env.ifname, policy, o.addresses));
  attempt(() => deleteQuietly(pod, linkIndex));
}

/**
 * DEL of a pod link plugin. No master lookup: DEL must work when the master or the default route
 * is gone. IPAM first, like the reference: the address is released even when the netns is gone.
 */
export function delPodLink(kind: string): (env: CniEnv, stdin: string) => Promise<void> {
  return async (env, stdin) => {
    const net = loadNetConf(stdin);
    if (net.ipamType) await ipamDel(net.ipamType, env, stdin);
    if (env.netns !== '') removePodLink(env.netns, env.ifname, kind, net);
  };
}
