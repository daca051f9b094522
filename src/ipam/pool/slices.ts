// Whereabouts' node slices ("fast IPAM", v0.7+): a NodeSlicePool named after the network divides
// the range into `node_slice_size` subnets, each assigned to one node, and every node allocates
// from its own IPPool `[<network>-]<node>-<slice>`. Nodes never contend on one object, and no
// object grows past a slice. Whereabouts needs its controller to assign slices; plexus assigns a
// slice to its node itself when the node has none, with a JSON patch guarded by `test`, so two
// nodes racing for one slice cannot both win.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, Code } from '../../cni/errors';
import { isObject, type Json, type JsonObject } from '../../cni/validate';
import { JSON_PATCH, KubeApiError } from '../../k8s/client';
import { last, netString, parseNet, size, type Net, type Span } from './addrs';
import type { Target } from './allocate';
import type { PoolConf, PoolRange } from './config';
import { GROUP_PATH, poolName } from './layout';
import type { PoolApi } from './store';

/** More slices than this is a NodeSlicePool too large to write in one object. */
const MAX_SLICES = 8192;

/** getNodeName: $NODENAME, else <configuration_path>/nodename, else /etc/hostname. */
export function nodeName(conf: PoolConf, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.NODENAME?.trim();
  if (fromEnv) return fromEnv;
  for (const p of [conf.configurationPath ? join(conf.configurationPath, 'nodename') : undefined, '/etc/hostname']) {
    if (!p) continue;
    try {
      const s = readFileSync(p, 'utf8').trim();
      if (s) return s;
    } catch {
      // next source
    }
  }
  throw new CniError(Code.InvalidConfig, 'node_slice_size: cannot tell which node this is: set NODENAME, or write <configuration_path>/nodename');
}

export function sliceListName(conf: PoolConf): string {
  return conf.networkName || conf.name;
}

function slicesOf(range: Net, prefix: number): string[] {
  const n = 1n << BigInt(prefix - range.prefix);
  if (n > BigInt(MAX_SLICES)) {
    throw new CniError(Code.InvalidConfig, `node_slice_size: /${prefix} cuts ${netString(range)} into ${n} slices; at most ${MAX_SLICES} fit in one NodeSlicePool`);
  }
  const step = size({ family: range.family, base: 0n, prefix });
  const out: string[] = [];
  for (let i = 0n; i < n; i++) out.push(netString({ family: range.family, base: range.base + i * step, prefix }));
  return out;
}

interface SliceEntry {
  nodeName: string;
  sliceRange: string;
}

function entries(obj: JsonObject): SliceEntry[] {
  const status = isObject(obj.status) ? obj.status : {};
  const list = Array.isArray(status.allocations) ? status.allocations : [];
  return list.map((e) => (isObject(e) ? { nodeName: typeof e.nodeName === 'string' ? e.nodeName : '', sliceRange: typeof e.sliceRange === 'string' ? e.sliceRange : '' } : { nodeName: '', sliceRange: '' }));
}

export class Slices {
  constructor(
    readonly api: PoolApi,
    readonly conf: PoolConf,
  ) {}

  private path(name?: string): string {
    const base = `${GROUP_PATH}/namespaces/${encodeURIComponent(this.api.namespace)}/nodeslicepools`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  private async get(name: string): Promise<JsonObject | undefined> {
    try {
      this.api.counters.requests += 1;
      return await this.api.client.get(this.path(name), { budgetMs: this.api.budgetMs });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  private async create(name: string, range: PoolRange): Promise<JsonObject> {
    const prefix = this.conf.nodeSliceSize as number;
    const body: JsonObject = {
      apiVersion: 'whereabouts.cni.cncf.io/v1alpha1',
      kind: 'NodeSlicePool',
      metadata: { name, namespace: this.api.namespace },
      spec: { range: netString(range.net), sliceSize: `/${prefix}` },
      status: { allocations: slicesOf(range.net, prefix).map((s) => ({ nodeName: '', sliceRange: s })) as Json[] },
    };
    try {
      this.api.counters.requests += 1;
      return await this.api.client.post(this.path(), body, { budgetMs: this.api.budgetMs });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      const again = await this.get(name);
      if (!again) throw err;
      return again;
    }
  }

  /** This node's slice, or undefined when it has none and `assign` is false. */
  async sliceOf(range: PoolRange, node: string, assign: boolean): Promise<Net | undefined> {
    const name = sliceListName(this.conf);
    let obj = await this.get(name);
    if (!obj) {
      if (!assign) return undefined;
      obj = await this.create(name, range);
    }
    for (let attempt = 1; attempt <= 32; attempt++) {
      const list = entries(obj);
      const mine = list.find((e) => e.nodeName === node);
      if (mine) {
        const net = parseNet(mine.sliceRange);
        if (!net) throw new CniError(Code.DecodeFailure, `NodeSlicePool ${name}: slice ${JSON.stringify(mine.sliceRange)} of node ${node} is not a CIDR`);
        return net;
      }
      if (!assign) return undefined;
      // A random free slot, not the first: nodes joining at once would all race for the same one.
      const slots = list.flatMap((e, i) => (e.nodeName === '' && e.sliceRange !== '' ? [i] : []));
      const free = slots.length ? (slots[Math.floor(Math.random() * Math.min(slots.length, 64))] as number) : -1;
      if (free < 0) throw new CniError(Code.Internal, `NodeSlicePool ${this.api.namespace}/${name}: no free slice for node ${node} (all ${list.length} slices are assigned)`);
      const ops = [
        { op: 'test', path: `/status/allocations/${free}/nodeName`, value: '' },
        { op: 'replace', path: `/status/allocations/${free}/nodeName`, value: node },
      ];
      try {
        this.api.counters.requests += 1;
        obj = await this.api.client.patch(this.path(name), ops, JSON_PATCH, { budgetMs: this.api.budgetMs });
      } catch (err) {
        if (!(err instanceof KubeApiError && (err.status === 422 || err.status === 409))) throw err;
        this.api.counters.conflicts += 1;
        obj = (await this.get(name)) ?? obj;
      }
    }
    throw new CniError(Code.TryAgainLater, `NodeSlicePool ${name}: could not assign a slice to node ${node}; try again`);
  }

  /** The target of range 0 on this node: its slice's pool, between the slice's first and last usable addresses. */
  async target(range: PoolRange, node: string, assign: boolean): Promise<Target | undefined> {
    const slice = await this.sliceOf(range, node, assign);
    if (!slice) return undefined;
    const lo = slice.base + 1n;
    const hi = last(slice) - 1n;
    const free: Span[] = range.free.flatMap((s) => (s.hi < lo || s.lo > hi ? [] : [{ lo: s.lo > lo ? s.lo : lo, hi: s.hi < hi ? s.hi : hi }]));
    return { range, net: slice, pool: poolName(netString(slice), this.conf.networkName, node), free };
  }
}
