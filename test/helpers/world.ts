// A pod's world for the meta-plugin's end-to-end tests with the Kubernetes API: the test API
// server over TLS with a bearer token, a pod network namespace, temp dirs (cniDir, confDir,
// host-local dataDir, a bin dir), host bridges, and oracles for what is left behind. Everything
// is removed in t.after, pass or fail.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startApiServer, type FakeApi } from '../apiserver/server';
import type { JsonObject } from '../../src/cni/validate';
import { ip, linksIn, netns, restoreHostSysctlsAfter, tempDir, tryIp, uniq } from './host';
import { delegateBin, runPlugin, type Outcome } from './plexus';

type Cleanup = Pick<TestContext, 'after'>;

export const TOKEN = 'plexus-e2e-token';
export const TOKEN_USER = 'system:serviceaccount:kube-system:multus';
export const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
export const STATUS = 'k8s.v1.cni.cncf.io/network-status';
export const DEFAULT_NETWORK = 'v1.multus-cni.io/default-network';
export const POD_ANNOTATIONS = 'io.kubernetes.cri.pod-annotations';

export async function apiServer(t: Cleanup, token: string | undefined = TOKEN): Promise<FakeApi> {
  const api = await startApiServer({ tls: true, token });
  t.after(() => api.close());
  return api;
}

/**
 * A Linux bridge made by the test (so the bridge plugin finds it, and it is not "new"). Its MAC
 * is set explicitly: a bridge otherwise takes its lowest port's MAC, which changes as pods come
 * and go, and the reference bridge plugin's CHECK compares it with the one in the ADD result.
 */
export function hostBridge(t: Cleanup): string {
  const name = uniq('pxb');
  ip('link', 'add', name, 'type', 'bridge');
  t.after(() => tryIp('link', 'del', name));
  const mac = ['02', ...randomBytes(5).toString('hex').match(/../g)!].join(':');
  ip('link', 'set', name, 'address', mac, 'up');
  return name;
}

/** Links enslaved to a host bridge: a leaked bridge attachment shows up here. */
export function bridgePorts(bridge: string): string[] {
  return (JSON.parse(ip('-j', 'link', 'show', 'master', bridge)) as { ifname: string }[]).map((l) => l.ifname).sort();
}

export function hostLocal(dataDir: string, subnet: string, extra: JsonObject = {}): JsonObject {
  return { type: 'host-local', dataDir, ranges: [[{ subnet }]], ...extra };
}

export function bridgeConf(name: string, bridge: string, ipam: JsonObject, extra: JsonObject = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name, type: 'bridge', bridge, ipam, ...extra });
}

export function macvlanConf(name: string, master: string, ipam: JsonObject, extra: JsonObject = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name, type: 'macvlan', master, mode: 'bridge', ipam, ...extra });
}

/**
 * A plugin that keeps each request's stdin in `spyDir/<VERB>-<ifname>.json`, then runs `real` of
 * the delegate set under test (exec'd: the spy stands between plexus and the plugin).
 */
export function spyPlugin(binDir: string, spyDir: string, name: string, real: string): string {
  const path = join(binDir, name);
  writeFileSync(
    path,
    `#!/bin/sh\nf="${spyDir}/$CNI_COMMAND-$CNI_IFNAME.json"\ncat > "$f"\nexec ${delegateBin(real)} < "$f"\n`,
  );
  chmodSync(path, 0o755);
  return name;
}

export function spied(spyDir: string, verb: string, ifname: string): JsonObject {
  return JSON.parse(readFileSync(join(spyDir, `${verb}-${ifname}.json`), 'utf8')) as JsonObject;
}

/** CNI_ARGS as containerd sends them. */
export function podArgs(pod: PodRef, containerId: string, uid = pod.uid): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${uid}`;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export function putPod(api: FakeApi, namespace: string, name: string, annotations: Record<string, string>): PodRef {
  const stored = api.putPod({ metadata: { name, namespace, annotations } });
  return { namespace, name, uid: String((stored.metadata as JsonObject).uid) };
}

export function podAnnotations(api: FakeApi, pod: PodRef): Record<string, string> {
  const p = api.getPod(pod.namespace, pod.name);
  return ((p?.metadata as JsonObject | undefined)?.annotations ?? {}) as Record<string, string>;
}

export interface StatusEntry {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default: boolean;
  gateway?: string[];
  'default-route'?: string[];
  [k: string]: unknown;
}

export function networkStatus(api: FakeApi, pod: PodRef): StatusEntry[] {
  const text = podAnnotations(api, pod)[STATUS];
  if (text === undefined) throw new Error(`pod ${pod.namespace}/${pod.name} has no ${STATUS}`);
  return JSON.parse(text) as StatusEntry[];
}

export function podEvents(api: FakeApi, pod: PodRef): JsonObject[] {
  return api.events().filter((e) => {
    const o = e.involvedObject as JsonObject | undefined;
    return o?.namespace === pod.namespace && o?.name === pod.name;
  });
}

/** host-local's reservations: `<dataDir>/<net>/<ip>` holding "<containerID>\r\n<ifname>". */
export function reservations(dataDir: string): { network: string; ip: string; containerId: string; ifname: string }[] {
  const out: { network: string; ip: string; containerId: string; ifname: string }[] = [];
  let nets: string[];
  try {
    nets = readdirSync(dataDir);
  } catch {
    return out;
  }
  for (const network of nets) {
    for (const f of readdirSync(join(dataDir, network))) {
      if (f === 'lock' || f.startsWith('last_reserved_ip')) continue;
      const [containerId = '', ifname = ''] = readFileSync(join(dataDir, network, f), 'utf8').split(/\r?\n/);
      out.push({ network, ip: f, containerId, ifname });
    }
  }
  return out.sort((a, b) => `${a.network}${a.ifname}`.localeCompare(`${b.network}${b.ifname}`));
}

function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export interface Footprint {
  podLinks: string[];
  /** Host links hanging off the given bridges (ports) or uplinks (macvlans left in the host). */
  hostLinks: string[];
  reservations: string[];
  journal: string[];
  cache: string[];
  /** Anything else in cniDir (a Multus-style scratch file, say). */
  cniDir: string[];
}

interface HostLink {
  ifname: string;
  master?: string;
  link?: string;
  linkinfo?: { info_kind?: string };
}

/** Host links attached to `parents` (a bridge's ports, an uplink's macvlans), the uplinks' own veth peers aside. */
export function hostLinksOf(parents: string[]): string[] {
  const all = JSON.parse(ip('-j', '-d', 'link', 'show')) as HostLink[];
  return all
    .filter((l) => (l.master !== undefined && parents.includes(l.master)) || (l.link !== undefined && parents.includes(l.link)))
    .filter((l) => !(l.linkinfo?.info_kind === 'veth' && l.link !== undefined && l.ifname === `${l.link}p`))
    .map((l) => l.ifname)
    .sort();
}

/** What a pod holds anywhere plexus or its delegates could leave something. */
export function footprint(podNs: string, parents: string[], ipamDir: string, cniDir: string): Footprint {
  return {
    podLinks: linksIn(podNs).map((l) => l.ifname).sort(),
    hostLinks: hostLinksOf(parents),
    reservations: reservations(ipamDir).map((r) => `${r.network}/${r.ip}`),
    journal: ls(join(cniDir, '_plexus')),
    cache: ls(join(cniDir, 'results')),
    cniDir: ls(cniDir).filter((f) => f !== '_plexus' && f !== 'results'),
  };
}

export const EMPTY: Footprint = { podLinks: ['lo'], hostLinks: [], reservations: [], journal: [], cache: [], cniDir: [] };

export interface LinkFacts {
  kind: string | undefined;
  mac: string | undefined;
  addrs: string[];
}

/** Every link of a namespace but lo: kind, MAC and IPv4 addresses, from `ip -j`. */
export function podLinks(ns: string): Record<string, LinkFacts> {
  const addrs = JSON.parse(execFileSync('ip', ['-n', ns, '-j', '-4', 'addr', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  const out: Record<string, LinkFacts> = {};
  for (const l of linksIn(ns)) {
    if (l.ifname === 'lo') continue;
    const a = addrs.find((x) => x.ifname === l.ifname);
    out[l.ifname] = { kind: l.linkinfo?.info_kind, mac: l.address, addrs: (a?.addr_info ?? []).map((i) => `${i.local}/${i.prefixlen}`) };
  }
  return out;
}

export interface World {
  dir: string;
  cniDir: string;
  confDir: string;
  ipamDir: string;
  binDir: string;
  spyDir: string;
  kubeconfig: string;
  api: FakeApi;
  /** The pod's network namespace. */
  ns: { name: string; path: string };
  /** The host bridge of the cluster network. */
  clusterBridge: string;
  clusterConf: JsonObject;
  /** The meta-plugin configuration, Multus thin-plugin style. */
  conf(extra?: JsonObject): string;
  run(command: string, containerId: string, args: string, stdin: string, env?: Record<string, string | undefined>): Promise<Outcome>;
  /** `parents`: host bridges and uplinks the pod's networks use, besides the cluster bridge. */
  footprint(parents?: string[]): Footprint;
}

/** `clusterSubnet` is a /24 unique to the test file: host bridges of concurrent files must not share one. */
export async function world(t: Cleanup, clusterSubnet: string, api?: FakeApi): Promise<World> {
  const server = api ?? (await apiServer(t));
  const dir = tempDir(t, 'plexus-e2e-');
  const w = {
    dir,
    cniDir: join(dir, 'cni'),
    confDir: join(dir, 'net.d'),
    ipamDir: join(dir, 'ipam'),
    binDir: join(dir, 'bin'),
    spyDir: join(dir, 'spy'),
    kubeconfig: join(dir, 'kube', 'kubeconfig'),
  };
  for (const d of [w.confDir, w.binDir, w.spyDir]) mkdirSync(d);
  server.writeKubeconfig(w.kubeconfig);
  const ns = netns(t);
  // The cluster network's isGateway bridge turns on the host's forwarding.
  restoreHostSysctlsAfter(t);
  const clusterBridge = hostBridge(t);
  const clusterConf: JsonObject = {
    cniVersion: '1.0.0',
    name: 'cluster',
    type: 'bridge',
    bridge: clusterBridge,
    isGateway: true,
    ipam: hostLocal(w.ipamDir, clusterSubnet, { routes: [{ dst: '0.0.0.0/0' }] }),
  };
  return {
    ...w,
    api: server,
    ns,
    clusterBridge,
    clusterConf,
    conf: (extra = {}) =>
      JSON.stringify({
        cniVersion: '1.1.0',
        name: 'multus-cni-network',
        type: 'plexus',
        kubeconfig: w.kubeconfig,
        cniDir: w.cniDir,
        confDir: w.confDir,
        binDir: w.binDir,
        delegates: [clusterConf],
        ...extra,
      }),
    run: (command, containerId, args, stdin, env) =>
      runPlugin({ command, containerId, netns: ns.path, ifname: 'eth0', args, stdin, env }),
    footprint: (parents = []) => footprint(ns.name, [clusterBridge, ...parents], w.ipamDir, w.cniDir),
  };
}
