// whereabouts: the cluster-wide pool IPAM, config- and object-compatible with Whereabouts
// (github.com/k8snetworkplumbingwg/whereabouts v0.6–v0.9), so a node can switch between its
// binary and ours with pods running and nodes of both kinds can share pools. What differs, on
// purpose: no Lease (optimistic per-key patches), gateway/network/broadcast never allocated,
// bigint ranges, requested addresses reserved, DEL fails with 11 when the API is unreachable.
// The object layout is in src/ipam/pool/layout.ts; docs/configuration.md lists every key.
import { existsSync, readFileSync } from 'node:fs';
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniIPConfig, Result } from '../../src/cni/types';
import { isObject, type JsonObject } from '../../src/cni/validate';
import { ipString } from '../../src/ipam/pool/addrs';
import { Allocator, sharedTarget, type Allocated, type Attachment, type Target } from '../../src/ipam/pool/allocate';
import { requireClaim, writeClaimStatus, type Claim } from '../../src/ipam/pool/claims';
import { FLAT_FILE_PATHS, ipamSection, loadPoolConf, mergeFlatFile, parseFlatFile, type PoolConf } from '../../src/ipam/pool/config';
import { DEFAULT_NAMESPACE, isOwn } from '../../src/ipam/pool/layout';
import { claimedIn, claimOf, placeRequests, podOf, requestedIPs } from '../../src/ipam/pool/request';
import { nodeName, Slices } from '../../src/ipam/pool/slices';
import { PoolApi, processViews } from '../../src/ipam/pool/store';

interface Loaded {
  conf: PoolConf;
  net: JsonObject;
}

function readFlatFile(path: string | undefined): { text: string; path: string } | undefined {
  for (const p of [...(path ? [path] : []), ...FLAT_FILE_PATHS]) {
    if (!existsSync(p)) continue;
    try {
      return { text: readFileSync(p, 'utf8'), path: p };
    } catch (err) {
      throw new CniError(Code.IOFailure, `error opening flat configuration file @ ${p} with: ${(err as Error).message}`);
    }
  }
  return undefined;
}

function loadConf(stdin: string): Loaded {
  const { net, ipam } = ipamSection(stdin);
  const flat = readFlatFile(typeof ipam.configuration_path === 'string' ? ipam.configuration_path : undefined);
  return { conf: loadPoolConf(net, mergeFlatFile(ipam, flat ? parseFlatFile(flat.text, flat.path) : undefined)), net };
}

/** ADD may wait for a busy API server (Whereabouts allows 2 minutes); DEL fails soon with 11 instead. */
const ADD_BUDGET_MS = 30_000;
const OTHER_BUDGET_MS = 5_000;

async function connect(conf: PoolConf, budgetMs = OTHER_BUDGET_MS): Promise<PoolApi> {
  const [{ loadClusterAccess }, { KubeClient }] = await Promise.all([import('../../src/k8s/kubeconfig'), import('../../src/k8s/client')]);
  const access = loadClusterAccess(conf.kubeconfig);
  // processViews: in the agent, a burst of this node's ADDs reads each pool once (store.ts).
  return new PoolApi(new KubeClient(access, { userAgent: 'plexus-whereabouts', timeoutMs: Math.min(budgetMs, 10_000) }), access.namespace ?? DEFAULT_NAMESPACE, budgetMs, processViews);
}

function softNodeName(conf: PoolConf): string | undefined {
  try {
    return nodeName(conf);
  } catch {
    return undefined;
  }
}

/** The targets of every range on this node; a node-sliced range without a slice here is left out unless `assign`. */
async function targets(api: PoolApi, conf: PoolConf, assign: boolean): Promise<Target[]> {
  const out: Target[] = [];
  for (const [i, range] of conf.ranges.entries()) {
    if (i === 0 && conf.nodeSliceSize !== undefined) {
      const t = await new Slices(api, conf).target(range, nodeName(conf), assign);
      if (t) out.push(t);
    } else out.push(sharedTarget(conf, range));
  }
  return out;
}

function ipConfig(conf: PoolConf, a: Allocated): CniIPConfig {
  const family = a.target.net.family;
  const c: CniIPConfig = { address: `${ipString(a.ip, family)}/${a.target.range.net.prefix}` };
  if (a.target.range.gateway !== undefined) c.gateway = ipString(a.target.range.gateway, family);
  return c;
}

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  const { conf, net } = loadConf(stdin);
  const placed = placeRequests(conf, requestedIPs(net, env.args));
  const claimName = claimOf(net);
  const pod = podOf(env.args);
  const api = await connect(conf, ADD_BUDGET_MS);
  const node = softNodeName(conf);
  const att: Attachment = {
    containerId: env.containerId,
    ifname: env.ifname,
    podref: `${pod.namespace}/${pod.name}`,
    ...(pod.uid ? { podUid: pod.uid } : {}),
    ...(claimName ? { claim: `${pod.namespace}/${claimName}` } : {}),
    ...(node ? { node } : {}),
  };
  let claim: Claim | undefined;
  if (claimName) claim = await requireClaim(api.client, pod.namespace, claimName);
  const allocator = new Allocator(api, conf);
  const done: Allocated[] = [];
  try {
    const all = await targets(api, conf, true);
    for (const t of all) {
      const i = conf.ranges.indexOf(t.range);
      done.push(await allocator.allocate(t, att, placed.inRange.get(i), claim ? claimedIn(conf, i, claim.ips) : undefined));
    }
    if (claim) await writeClaimStatus(api.client, claim, done.map((a) => ipConfig(conf, a).address), pod.name);
  } catch (err) {
    // No partial state: what this call wrote is taken back before the error goes out.
    for (const a of done.filter((d) => d.fresh)) await allocator.release(a.target, att, true).catch(() => undefined);
    throw err;
  }
  const ips = done.map((a) => ipConfig(conf, a));
  for (const s of placed.outside) ips.push(s.gateway ? { address: s.address, gateway: s.gateway } : { address: s.address });
  const result: Result = { cniVersion: conf.cniVersion, ips, routes: conf.routes, ...(conf.dns ? { dns: conf.dns } : {}) };
  return JSON.stringify(formatResult(result, conf.cniVersion));
}

async function cmdDel(env: CniEnv, stdin: string): Promise<void> {
  const { conf } = loadConf(stdin);
  const api = await connect(conf);
  const allocator = new Allocator(api, conf);
  // A claim-bound address outlives the pod: only the claim's deletion frees it (plexus ipam gc).
  for (const t of await targets(api, conf, false)) await allocator.release(t, { containerId: env.containerId, ifname: env.ifname });
}

async function cmdCheck(env: CniEnv, stdin: string): Promise<void> {
  const { conf } = loadConf(stdin);
  const api = await connect(conf);
  for (const t of await targets(api, conf, false)) {
    const pool = await api.getPool(t.pool);
    const own = pool && [...pool.allocations.ofContainer(env.containerId)].some((a) => isOwn(a, env.containerId, env.ifname));
    if (!own) throw new CniError(Code.Internal, `no IP allocation for container ${env.containerId} interface ${env.ifname} in IPPool ${api.namespace}/${t.pool}`);
  }
}

/** STATUS: the pool objects are reachable (Whereabouts' Status() lists the pools). */
async function cmdStatus(env: CniEnv, stdin: string): Promise<void> {
  const { conf } = loadConf(stdin);
  const api = await connect(conf);
  try {
    await api.list('ippools');
  } catch (err) {
    throw new CniError(Code.NotAvailable, `cannot list IPPools in ${api.namespace}: ${(err as Error).message}`);
  }
}

/** GC: frees this node's allocations of attachments the runtime no longer has. */
async function cmdGc(env: CniEnv, stdin: string): Promise<void> {
  const { conf, net } = loadConf(stdin);
  const valid = net['cni.dev/valid-attachments'] ?? net['cni.dev/attachments'];
  if (!Array.isArray(valid)) throw new CniError(Code.InvalidConfig, 'cni.dev/valid-attachments: must be a list');
  const keep = new Set(valid.filter(isObject).map((a) => `${String(a.containerID)}|${String(a.ifname)}`));
  const api = await connect(conf);
  const { gcNode } = await import('../../src/ipam/pool/gc');
  await gcNode(new Allocator(api, conf), await targets(api, conf, false), keep, softNodeName(conf));
}

export const plugin: PluginHandlers = { add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus, gc: cmdGc };
