// Whereabouts' object layout, so Whereabouts and plexus nodes share one cluster's pools
// (whereabouts pkg/storage/kubernetes/ipam.go, pkg/api/whereabouts.cni.cncf.io/v1alpha1):
//
// - IPPool `[<network_name>-][<node>-]<range with ':' and '/' as '-'>`, spec.range the network's
//   CIDR, spec.allocations keyed by the decimal offset from the range's first address, each
//   {id: container ID, podref: "ns/name", ifname}.
// - OverlappingRangeIPReservation `[<network_name>-]<ip with ':' as '-'>`, spec {containerid,
//   podref, ifname}.
// - NodeSlicePool `<network_name or the network's name>`, status.allocations [{nodeName, sliceRange}].
// - All in the kubeconfig context's namespace, else kube-system.
//
// The CRDs are structural, so the apiserver prunes any field they do not declare: what plexus
// records beyond id/podref/ifname (pod UID, the IPAMClaim, the interface on v0.6 CRDs that lack
// `ifname`) goes into the pool's metadata.annotations, one key per offset (see `Extra`). Whereabouts
// never reads or writes those, and its whole-map patches leave them alone.
import { isObject, type Json, type JsonObject } from '../../cni/validate';
import { parseCidr } from '../../cni/addr';
import { ipString, toBig, type Net } from './addrs';

export const GROUP_PATH = '/apis/whereabouts.cni.cncf.io/v1alpha1';
export const CLAIMS_PATH = '/apis/k8s.cni.cncf.io/v1alpha1';
export const DEFAULT_NAMESPACE = 'kube-system';
/** Annotation key prefix on an IPPool; the name part is the allocation's offset. */
export const EXTRA_PREFIX = 'ipam.plexus.io/';

export interface Allocation {
  offset: bigint;
  id: string;
  podref: string;
  ifname?: string;
  extra?: Extra;
}

/** What plexus adds to an allocation (in the pool's annotations). */
export interface Extra {
  /** First 12 characters of the container ID: the annotation is honoured only while they match. */
  cid: string;
  if?: string;
  uid?: string;
  /** `ns/name` of the IPAMClaim the address is bound to. */
  claim?: string;
  /** The node that allocated it: CNI GC on a node frees only its own. */
  node?: string;
}

export interface PoolObject {
  name: string;
  namespace: string;
  resourceVersion: string;
  range: string;
  /** First address of spec.range as written: offsets count from it (net.ParseCIDR's IP). */
  base: bigint;
  allocations: Allocations;
  hasAnnotations: boolean;
  /** Total size of the annotations (keys + values): the apiserver caps it at 256 KiB. */
  annotationBytes: number;
  /** Serialized size as read: what the apiserver's ~1.5 MiB object limit is measured against. */
  bytes: number;
}

function normalizeRange(r: string): string {
  const s = r.endsWith(':') ? r + '0' : r;
  return s.replaceAll(':', '-').replaceAll('/', '-');
}

/** IPPoolName(PoolIdentifier{IpRange, NetworkName, NodeName}). */
export function poolName(range: string, networkName: string, nodeName?: string): string {
  const parts = [networkName, nodeName ?? '', normalizeRange(range)].filter((p) => p !== '');
  return parts.join('-');
}

/** NormalizeIP(ip, networkName). */
export function reservationName(ip: bigint, net: Net, networkName: string): string {
  let s = ipString(ip, net.family);
  if (s.endsWith(':')) s += '0';
  s = s.replaceAll(':', '-');
  return networkName ? `${networkName}-${s}` : s;
}

export function extraKey(offset: bigint): string {
  return EXTRA_PREFIX + offset.toString();
}

/** JSON pointer token (RFC 6901) of an annotation key. */
export function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function encodeExtra(e: Extra): string {
  return JSON.stringify(e);
}

function decodeExtra(v: Json | undefined, id: string): Extra | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    const o: unknown = JSON.parse(v);
    if (!isObject(o) || typeof o.cid !== 'string' || !id.startsWith(o.cid) || o.cid === '') return undefined;
    const e: Extra = { cid: o.cid };
    if (typeof o.if === 'string') e.if = o.if;
    if (typeof o.uid === 'string') e.uid = o.uid;
    if (typeof o.claim === 'string') e.claim = o.claim;
    if (typeof o.node === 'string') e.node = o.node;
    return e;
  } catch {
    return undefined;
  }
}

/** A decimal offset as Whereabouts writes them (no sign, no leading zero). */
function isOffset(k: string): boolean {
  if (k.length === 0 || (k.length > 1 && k.charCodeAt(0) === 48)) return false;
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * A pool's entries, keyed by offset, decoded only when asked for: a one-shot ADD into a pool of
 * thousands needs only which offsets are taken and whether one entry is its own, and decoding
 * every entry up front was a third of its extra cost at 99% full. Entries Whereabouts would skip
 * (a bad offset, no id) are skipped here too.
 */
export class Allocations {
  /** This process's writes since the read; null: deleted here. */
  private readonly written = new Map<string, Allocation | null>();
  /** Entries of the read, decoded once asked for. */
  private readonly decoded = new Map<string, Allocation>();
  private count = 0;
  private readonly annotations: JsonObject | undefined;

  constructor(
    private readonly raw: JsonObject = {},
    annotations?: JsonObject,
  ) {
    for (const k in raw) if (this.valid(k)) this.count++;
    // Our annotations are looked up only when the pool has any.
    this.annotations = annotations && Object.keys(annotations).some((k) => k.startsWith(EXTRA_PREFIX)) ? annotations : undefined;
  }

  private valid(k: string): boolean {
    const v = this.raw[k];
    return isObject(v) && typeof v.id === 'string' && isOffset(k);
  }

  private read(k: string): Allocation | undefined {
    const hit = this.decoded.get(k);
    if (hit || !Object.hasOwn(this.raw, k) || !this.valid(k)) return hit;
    const v = this.raw[k] as JsonObject;
    const a: Allocation = { offset: BigInt(k), id: v.id as string, podref: typeof v.podref === 'string' ? v.podref : '' };
    if (typeof v.ifname === 'string' && v.ifname !== '') a.ifname = v.ifname;
    if (this.annotations) {
      const extra = decodeExtra(this.annotations[EXTRA_PREFIX + k], a.id);
      if (extra) a.extra = extra;
    }
    this.decoded.set(k, a);
    return a;
  }

  has(k: string): boolean {
    const w = this.written.get(k);
    if (w !== undefined) return w !== null;
    return Object.hasOwn(this.raw, k) && this.valid(k);
  }

  get(k: string): Allocation | undefined {
    const w = this.written.get(k);
    return w !== undefined ? (w ?? undefined) : this.read(k);
  }

  set(k: string, a: Allocation): void {
    if (!this.has(k)) this.count++;
    this.written.set(k, a);
  }

  delete(k: string): void {
    if (this.has(k)) this.count--;
    this.written.set(k, null);
  }

  get size(): number {
    return this.count;
  }

  /** Every entry, decoded. */
  *values(): IterableIterator<Allocation> {
    for (const k in this.raw) {
      if (this.written.has(k)) continue;
      const a = this.read(k);
      if (a) yield a;
    }
    for (const a of this.written.values()) if (a) yield a;
  }

  /** The entries of container `id`, decoding only those: the own-entry lookup of every ADD and DEL. */
  *ofContainer(id: string): IterableIterator<Allocation> {
    for (const k in this.raw) {
      const v = this.raw[k];
      if (!isObject(v) || v.id !== id || this.written.has(k)) continue;
      const a = this.read(k);
      if (a) yield a;
    }
    for (const a of this.written.values()) if (a && a.id === id) yield a;
  }
}

/** An IPPool as the API returned it. */
export function parsePool(obj: JsonObject, bytes: number): PoolObject {
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const spec = isObject(obj.spec) ? obj.spec : {};
  const range = typeof spec.range === 'string' ? spec.range : '';
  const c = parseCidr(range);
  if (!c) throw new Error(`IPPool ${String(meta.name)}: spec.range ${JSON.stringify(range)} is not a CIDR`);
  const annotations = isObject(meta.annotations) ? meta.annotations : undefined;
  return {
    name: String(meta.name ?? ''),
    namespace: String(meta.namespace ?? ''),
    resourceVersion: String(meta.resourceVersion ?? ''),
    range,
    base: toBig(c.ip),
    allocations: new Allocations(isObject(spec.allocations) ? spec.allocations : {}, annotations),
    hasAnnotations: annotations !== undefined,
    annotationBytes: Object.entries(annotations ?? {}).reduce((n, [k, v]) => n + k.length + (typeof v === 'string' ? v.length : 0), 0),
    bytes,
  };
}

/** The interface an allocation is for: the pool's field, else ours (CRDs before v0.7 prune ifname). */
export function ifnameOf(a: Allocation): string | undefined {
  return a.ifname ?? a.extra?.if;
}

/** Whether an allocation is this container's attachment (Whereabouts' DeallocateIP match). */
export function isOwn(a: Allocation, containerId: string, ifname: string): boolean {
  const i = ifnameOf(a);
  return a.id === containerId && (i === undefined || i === ifname);
}
