// What one CNI call asks the pool IPAM for, beyond the config: the pod (CNI_ARGS), requested
// addresses (runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=, static `addresses`) placed in the
// ranges that hold them, and the IPAMClaim reference. Pure.
import { parseCniArgs, getArg, k8sArgs } from '../../cni/args';
import { CniError, Code } from '../../cni/errors';
import { isObject, type JsonObject } from '../../cni/validate';
import { addr, contains, ipString } from './addrs';
import type { PoolConf, StaticAddress } from './config';

export interface PodRef {
  namespace: string;
  name: string;
  uid?: string;
}

export interface Placed {
  /** Per range index: the requested address there. */
  inRange: Map<number, bigint>;
  /** Static addresses outside every range: returned as given, not reserved (as Whereabouts does). */
  outside: StaticAddress[];
}

export function podOf(cniArgs: string): PodRef {
  const k = k8sArgs(parseCniArgs(cniArgs));
  // Whereabouts refuses to run without a pod: its allocations are keyed by "ns/name".
  if (!k.podName) throw new CniError(Code.InvalidConfig, 'IPAM client initialization error: no pod name (CNI_ARGS K8S_POD_NAME)');
  return { namespace: k.podNamespace ?? '', name: k.podName, ...(k.podUid ? { uid: k.podUid } : {}) };
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new CniError(Code.InvalidConfig, `${field}: must be a list of strings`);
  return v as string[];
}

/** Requested addresses of this call, in the order the sources are listed above. */
export function requestedIPs(net: JsonObject, cniArgs: string): Array<{ text: string; field: string }> {
  const out: Array<{ text: string; field: string }> = [];
  const rc = isObject(net.runtimeConfig) ? net.runtimeConfig : {};
  for (const s of stringList(rc.ips, 'runtimeConfig.ips')) out.push({ text: s, field: 'runtimeConfig.ips' });
  const args = isObject(net.args) && isObject(net.args.cni) ? net.args.cni : {};
  for (const s of stringList(args.ips, 'args.cni.ips')) out.push({ text: s, field: 'args.cni.ips' });
  const ip = getArg(parseCniArgs(cniArgs), 'IP');
  if (ip) for (const s of ip.split(',')) if (s.trim()) out.push({ text: s.trim(), field: 'CNI_ARGS IP' });
  return out;
}

/** The IPAMClaim named by the selection element (plexus passes it in args.cni or runtimeConfig). */
export function claimOf(net: JsonObject): string | undefined {
  const key = 'ipam-claim-reference';
  const args = isObject(net.args) && isObject(net.args.cni) ? net.args.cni : {};
  const rc = isObject(net.runtimeConfig) ? net.runtimeConfig : {};
  const v = args[key] ?? rc[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v)) throw new CniError(Code.InvalidConfig, `args.cni.${key}: must be an object name, got ${JSON.stringify(v)}`);
  return v;
}

/** The claim's address in range `i` (its status.ips are "ip/prefix"), if it has one there. */
export function claimedIn(conf: PoolConf, i: number, ips: readonly string[]): bigint | undefined {
  const r = conf.ranges[i];
  for (const s of ips) {
    const a = addr(s.split('/')[0] ?? '');
    if (r && a && a.family === r.net.family && contains(r.net, a.v)) return a.v;
  }
  return undefined;
}

/** Puts each requested address into the range that holds it; one per range. */
export function placeRequests(conf: PoolConf, requested: Array<{ text: string; field: string }>): Placed {
  const inRange = new Map<number, bigint>();
  const outside: StaticAddress[] = [];
  const put = (text: string, field: string, stat?: StaticAddress) => {
    const a = addr(text.split('/')[0] ?? '');
    if (!a) throw new CniError(Code.InvalidConfig, `${field}: ${JSON.stringify(text)} is not an IP address`);
    const i = conf.ranges.findIndex((r) => r.net.family === a.family && contains(r.net, a.v));
    if (i < 0) {
      if (stat) return void outside.push(stat);
      throw new CniError(Code.InvalidConfig, `${field}: requested IP address ${text} is not in any configured range`);
    }
    const prev = inRange.get(i);
    if (prev !== undefined && prev !== a.v) {
      throw new CniError(Code.InvalidConfig, `${field}: ${text} and ${ipString(prev, a.family)} are both requested from range ${conf.ranges[i]?.text}; one address per range`);
    }
    inRange.set(i, a.v);
  };
  for (const r of requested) put(r.text, r.field);
  conf.addresses.forEach((s, i) => put(s.address, `ipam.addresses[${i}].address`, s));
  return { inRange, outside };
}
