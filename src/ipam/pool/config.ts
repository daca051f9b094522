// The pool IPAM's configuration: Whereabouts' IPAM keys (pkg/config/config.go, pkg/types), its
// flat file, and the seed documents' range syntaxes. Data in, data out; the flat file is read by
// the caller and passed in. Every check names the field, and errors are code 7 (InvalidConfig).
import { CniError, Code } from '../../cni/errors';
import { parseCidr } from '../../cni/addr';
import { Fields, isObject, parseObject, type JsonObject } from '../../cni/validate';
import type { CniDNS, CniRoute } from '../../cni/types';
import { addr, contains, enclosing, last, netString, normalize, parseNet, parseSpan, subtract, type Net, type Span } from './addrs';

/** Where Whereabouts looks for its flat file after `configuration_path` (config.GetFlatIPAM). */
export const FLAT_FILE_PATHS = [
  '/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf',
  '/etc/cni/net.d/whereabouts.d/whereabouts.conf',
  '/host/etc/cni/net.d/whereabouts.d/whereabouts.conf',
];

export interface PoolRange {
  /** The range's network: names the IPPool, is its spec.range and the base of its offsets. */
  net: Net;
  /** What the allocator may hand out: start..end minus network/broadcast, gateway, exclusions. */
  free: Span[];
  /** As written, for messages. */
  text: string;
  gateway?: bigint;
}

export interface StaticAddress {
  address: string;
  gateway?: string;
}

export interface PoolConf {
  cniVersion: string;
  /** The network's `name` (names the NodeSlicePool when network_name is unset). */
  name: string;
  ranges: PoolRange[];
  networkName: string;
  overlapping: boolean;
  nodeSliceSize?: number;
  gateway?: string;
  routes: CniRoute[];
  dns?: CniDNS;
  addresses: StaticAddress[];
  kubeconfig?: string;
  configurationPath?: string;
  avoidBuggyIPs: boolean;
}

const at = (k: string) => `ipam.${k}`;

function bad(field: string, why: string): never {
  throw new CniError(Code.InvalidConfig, `${field}: ${why}`);
}

function empty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
}

/**
 * The flat file fills what the NAD's ipam section leaves empty (Whereabouts' mergo.Merge), except
 * enable_overlapping_ranges, which only the NAD sets. Unlike Whereabouts ≥ 0.6.2, a missing flat
 * file is not an error when the NAD carries a complete section.
 */
export function mergeFlatFile(ipam: JsonObject, flat: JsonObject | undefined): JsonObject {
  if (!flat) return ipam;
  const out: JsonObject = { ...ipam };
  for (const [k, v] of Object.entries(flat)) {
    if (k === 'enable_overlapping_ranges') continue;
    if (k === 'kubernetes' && isObject(v) && isObject(out.kubernetes)) {
      const merged: JsonObject = { ...out.kubernetes };
      for (const [kk, vv] of Object.entries(v)) if (empty(merged[kk])) merged[kk] = vv;
      out.kubernetes = merged;
      continue;
    }
    if (empty(out[k])) out[k] = v;
  }
  return out;
}

export function parseFlatFile(text: string, path: string): JsonObject {
  return parseObject(text, `flat configuration file ${path}`, Code.InvalidConfig);
}

function ipIn(field: string, s: string, n: Net): bigint {
  const a = addr(s);
  if (!a || a.family !== n.family) bad(field, `${JSON.stringify(s)} is not an IPv${n.family} address`);
  if (!contains(n, a.v)) bad(field, `${s} is outside the range ${netString(n)}`);
  return a.v;
}

interface RangeInput {
  range: string;
  start?: string;
  end?: string;
  exclude: string[];
}

/** One range: its network and what may be allocated from it. */
export function buildRange(field: string, r: RangeInput, gateway: string | undefined, avoidBuggyIPs: boolean): PoolRange {
  let net: Net | undefined;
  let lo: bigint | undefined;
  let hi: bigint | undefined;
  const text = r.range.trim();
  const dash = text.indexOf('-');
  if (text.includes('/') && dash > 0 && !text.includes('..')) {
    // Whereabouts' `start-end/prefix`: the network comes from the end address.
    const end = text.slice(dash + 1);
    net = parseNet(end);
    if (!net) bad(`${field}.range`, `${JSON.stringify(text)}: invalid CIDR ${JSON.stringify(end)}`);
    lo = ipIn(`${field}.range`, text.slice(0, dash), net);
    hi = ipIn(`${field}.range`, end.slice(0, end.indexOf('/')), net);
  } else if (text.includes('/')) {
    net = parseNet(text);
    if (!net) bad(`${field}.range`, `invalid CIDR ${JSON.stringify(text)}`);
  } else {
    // MetalLB `a-b` (or Kube-OVN `a..b`): the subnet is the smallest network holding both ends.
    const s = parseSpan(text);
    if (!s || s.span.lo === s.span.hi) bad(`${field}.range`, `${JSON.stringify(text)} is neither a CIDR, start-end/prefix, nor an a-b address range`);
    net = enclosing(s.span.lo, s.span.hi, s.family);
    lo = s.span.lo;
    hi = s.span.hi;
  }
  if (r.start !== undefined) lo = ipIn(`${field}.range_start`, r.start, net);
  if (r.end !== undefined) hi = ipIn(`${field}.range_end`, r.end, net);
  // Network and broadcast (the all-ones address in IPv6 too, as Whereabouts skips it) are never
  // handed out, except in point-to-point /31, /127 and host routes.
  const hostBits = (net.family === 4 ? 32 : 128) - net.prefix;
  const first = hostBits > 1 ? net.base + 1n : net.base;
  const lastUsable = hostBits > 1 ? last(net) - 1n : last(net);
  lo = lo === undefined || lo < first ? first : lo;
  hi = hi === undefined || hi > lastUsable ? lastUsable : hi;
  if (lo > hi) bad(`${field}.range_start`, `the range ${text} has no usable address (start after end)`);
  const holes: Span[] = r.exclude.map((e, i) => {
    const s = parseSpan(e);
    const f = `${field}.exclude[${i}]`;
    if (!s) bad(f, `${JSON.stringify(e)} is neither an address, a CIDR, a-b nor a..b`);
    if (s.family !== net.family) bad(f, `${e} is not an IPv${net.family} range`);
    // Whereabouts ignores an exclusion outside the range; that is almost always a typo.
    if (s.span.lo < net.base || s.span.hi > last(net)) bad(f, `${e} is outside the range ${netString(net)}`);
    return s.span;
  });
  let gw: bigint | undefined;
  if (gateway !== undefined) {
    const g = addr(gateway);
    if (g && g.family === net.family && contains(net, g.v)) {
      gw = g.v;
      holes.push({ lo: gw, hi: gw });
    }
  }
  if (avoidBuggyIPs && net.family === 4) {
    // MetalLB's avoidBuggyIPs: no address ending in .0 or .255 (old equipment drops them).
    for (let b = (lo >> 8n) << 8n; b <= hi; b += 256n) holes.push({ lo: b, hi: b }, { lo: b + 255n, hi: b + 255n });
  }
  const free = subtract({ lo, hi }, normalize(holes));
  return { net, free, text, ...(gw !== undefined ? { gateway: gw } : {}) };
}

function routesOf(f: Fields): CniRoute[] {
  return (f.optArr('routes') ?? []).map((v, i) => {
    if (!isObject(v)) bad(`${at('routes')}[${i}]`, 'must be an object');
    const r = new Fields(v, `${at('routes')}[${i}]`);
    const dst = r.str('dst');
    if (!parseCidr(dst)) bad(`${at('routes')}[${i}].dst`, `invalid CIDR ${JSON.stringify(dst)}`);
    const gw = r.optStr('gw');
    if (gw !== undefined && gw !== '' && !addr(gw)) bad(`${at('routes')}[${i}].gw`, `invalid address ${JSON.stringify(gw)}`);
    return gw ? { dst, gw } : { dst };
  });
}

function dnsOf(f: Fields): CniDNS | undefined {
  const d = f.optObj('dns');
  if (!d) return undefined;
  const out: CniDNS = {};
  const ns = d.optStrList('nameservers');
  if (ns?.length) out.nameservers = ns;
  const domain = d.optStr('domain');
  if (domain) out.domain = domain;
  const search = d.optStrList('search');
  if (search?.length) out.search = search;
  const options = d.optStrList('options');
  if (options?.length) out.options = options;
  return Object.keys(out).length ? out : undefined;
}

/** The network config's `ipam` section, before the flat file is merged. */
export function ipamSection(stdin: string): { net: JsonObject; ipam: JsonObject } {
  const net = parseObject(stdin, 'network configuration', Code.DecodeFailure);
  if (!isObject(net.ipam)) throw new CniError(Code.InvalidConfig, "IPAM config missing 'ipam' key");
  if (net.ipam.type !== 'whereabouts') {
    throw new CniError(Code.InvalidConfig, `only interested in networks whose IPAM type is 'whereabouts'. This one was: ${String(net.ipam.type)}`);
  }
  return { net, ipam: net.ipam };
}

/** The whole configuration from the network config and the (already merged) ipam section. */
export function loadPoolConf(net: JsonObject, ipam: JsonObject): PoolConf {
  const top = new Fields(net, '');
  const f = new Fields(ipam, 'ipam');
  const avoidBuggyIPs = f.bool('avoidBuggyIPs', false);
  const gateway = f.optStr('gateway') || undefined;
  if (gateway !== undefined && !addr(gateway)) bad(at('gateway'), `couldn't parse gateway IP: ${gateway}`);
  const inputs: Array<{ field: string; r: RangeInput }> = [];
  const one = (g: Fields, field: string): RangeInput => ({
    range: g.str('range'),
    start: g.optStr('range_start') || undefined,
    end: g.optStr('range_end') || undefined,
    exclude: g.optStrList('exclude') ?? [],
  });
  if (f.optStr('range')) inputs.push({ field: 'ipam', r: one(f, 'ipam') });
  (f.optArr('ipRanges') ?? []).forEach((v, i) => {
    const field = `${at('ipRanges')}[${i}]`;
    if (!isObject(v)) bad(field, 'must be an object');
    inputs.push({ field, r: one(new Fields(v, field), field) });
  });
  const ranges = inputs.map(({ field, r }) => buildRange(field, r, gateway, avoidBuggyIPs));
  const addresses = (f.optArr('addresses') ?? []).map((v, i): StaticAddress => {
    const field = `${at('addresses')}[${i}]`;
    if (!isObject(v)) bad(field, 'must be an object');
    const a = new Fields(v, field);
    const address = a.str('address');
    if (!parseCidr(address)) bad(`${field}.address`, `invalid CIDR in addresses ${address}`);
    const gw = a.optStr('gateway') || undefined;
    if (gw !== undefined && !addr(gw)) bad(`${field}.gateway`, `invalid address ${JSON.stringify(gw)}`);
    return gw ? { address, gateway: gw } : { address };
  });
  if (ranges.length === 0 && addresses.length === 0) bad(at('range'), 'no range: set range or ipRanges');
  const k8s = f.optObj('kubernetes');
  const kubeconfig = k8s?.optStr('kubeconfig') || undefined;
  const slice = f.optStr('node_slice_size') || undefined;
  let nodeSliceSize: number | undefined;
  if (slice !== undefined) {
    const m = /^\/?([0-9]{1,3})$/.exec(slice);
    const r0 = ranges[0];
    if (!m || !r0) bad(at('node_slice_size'), `${JSON.stringify(slice)} must be a prefix length such as "/24" and needs a range`);
    nodeSliceSize = Number(m[1]);
    if (nodeSliceSize < r0.net.prefix || nodeSliceSize > (r0.net.family === 4 ? 30 : 126)) {
      bad(at('node_slice_size'), `/${nodeSliceSize} must be at least the range's /${r0.net.prefix} and leave usable addresses`);
    }
  }
  const networkName = f.optStr('network_name') ?? '';
  if (networkName !== '' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(networkName)) {
    bad(at('network_name'), `${JSON.stringify(networkName)} must be a lower-case DNS name: it becomes part of object names`);
  }
  return {
    cniVersion: top.optStr('cniVersion') ?? '',
    name: top.optStr('name') ?? '',
    ranges,
    networkName,
    overlapping: f.bool('enable_overlapping_ranges', true),
    ...(nodeSliceSize !== undefined ? { nodeSliceSize } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
    routes: routesOf(f),
    ...(dnsOf(f) ? { dns: dnsOf(f) } : {}),
    addresses,
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(f.optStr('configuration_path') ? { configurationPath: f.optStr('configuration_path') } : {}),
    avoidBuggyIPs,
  };
}
