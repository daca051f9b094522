// host-local's configuration, read as the reference plugin's allocator.LoadIPAMConfig reads it
// (containernetworking/plugins v1.1.1, backend/allocator/{config,range,range_set}.go): the same
// keys, defaults, precedence of requested IPs and the same error messages, all code 999 as skel
// reports a plain Go error. Pure: text in, configuration out.
import { formatCidr, formatIP, parseCidr, parseIP, type Cidr, type IPAddr } from '../../src/cni/addr';
import { CniError, Code } from '../../src/cni/errors';
import type { CniRoute } from '../../src/cni/types';
import { atLeast, isSupported } from '../../src/cni/version';
import { Fields, isObject, parseObject, type Json, type JsonObject } from '../../src/cni/validate';
import { cidrFirst, cidrLast, ipToBigInt, bigIntToIP } from '../../src/ipam/ip';
import { loadGoArgs } from '../common/goargs';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

/** One canonicalised range: every address number from start to end, gateway skipped. */
export interface HLRange {
  subnet: Cidr;
  start: bigint;
  end: bigint;
  gateway: IPAddr;
}

export interface HostLocalConf {
  name: string;
  cniVersion: string;
  dataDir: string;
  resolvConf: string;
  routes: CniRoute[];
  rangeSets: HLRange[][];
  /** Requested addresses: CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips. */
  requested: IPAddr[];
}

const fail = (msg: string): never => {
  throw new CniError(Code.Internal, msg);
};

/** Go's canonicalizeIP: an IPv4-mapped IPv6 address is IPv4. */
export function canonical(ip: IPAddr): IPAddr {
  const b = ip.bytes;
  if (ip.family === 6 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 4, bytes: b.slice(12) };
  }
  return ip;
}

/** net.IP's UnmarshalText: "" is no address. */
function optIP(f: Fields, key: string): IPAddr | undefined {
  const s = f.optStr(key);
  if (s === undefined || s === '') return undefined;
  const ip = parseIP(s);
  return ip ? canonical(ip) : fail(`invalid IP address: ${s}`);
}

/** types.IPNet's UnmarshalJSON: the address keeps its host bits. */
function cidrValue(s: string): Cidr {
  const c = parseCidr(s);
  return c ?? fail(`invalid CIDR address: ${s}`);
}

/** pkg/ip.IP's UnmarshalText: "ip" or "ip/prefix"; "" is no address. */
export function requestedIP(s: string): IPAddr | undefined {
  if (s === '') return undefined;
  const v = s.includes('/') ? parseCidr(s)?.ip : parseIP(s);
  return v ? canonical(v) : fail(`invalid IP address ${s}`);
}

function ipList(v: Json | undefined, where: string): IPAddr[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(`${where}: must be a list, got ${typeof v}`);
  return v.map((x, i) => {
    if (typeof x !== 'string') return fail(`${where}[${i}]: must be a string`);
    return requestedIP(x) ?? fail('cannot understand ip: IP <nil> not v4 nor v6');
  });
}

export function parseRoutes(f: Fields | undefined): CniRoute[] {
  const list = f?.optArr('routes') ?? [];
  return list.map((v, i) => {
    if (!isObject(v)) return fail(`${f?.at('routes')}[${i}]: must be an object`);
    const r = new Fields(v, `${f?.at('routes')}[${i}]`, Code.Internal);
    const out: CniRoute = { dst: formatCidr(cidrValue(r.str('dst'))) };
    const gw = optIP(r, 'gw');
    if (gw) out.gw = formatIP(gw);
    // CNI 1.1 route attributes: passed on as newer reference plugins do (1.1.1 drops them)
    const mtu = r.optInt('mtu', 0, 2 ** 32 - 1);
    if (mtu) out.mtu = mtu;
    const advmss = r.optInt('advmss', 0, 2 ** 32 - 1);
    if (advmss) out.advmss = advmss;
    const priority = r.optInt('priority', 0, 2 ** 32 - 1);
    if (priority) out.priority = priority;
    const table = r.optInt('table', 0, 2 ** 32 - 1);
    if (table !== undefined) out.table = table;
    const scope = r.optInt('scope', 0, 255);
    if (scope !== undefined) out.scope = scope;
    return out;
  });
}

interface RawRange {
  subnet?: Cidr;
  rangeStart?: IPAddr;
  rangeEnd?: IPAddr;
  gateway?: IPAddr;
}

function rawRange(v: Json, where: string): RawRange {
  if (!isObject(v)) return fail(`${where}: must be an object`);
  const f = new Fields(v, where, Code.Internal);
  const s = f.optStr('subnet');
  return { subnet: s === undefined ? undefined : cidrValue(s), rangeStart: optIP(f, 'rangeStart'), rangeEnd: optIP(f, 'rangeEnd'), gateway: optIP(f, 'gateway') };
}

function rawRangeSets(v: Json | undefined, where: string): RawRange[][] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(`${where}: must be a list of range sets`);
  return v.map((set, i) => {
    if (set === null) return [];
    if (!Array.isArray(set)) return fail(`${where}[${i}]: must be a list of ranges`);
    return set.map((r, j) => rawRange(r, `${where}[${i}][${j}]`));
  });
}

const inRange = (r: { subnet: Cidr; start?: bigint; end?: bigint }, ip: IPAddr): boolean => {
  if (ip.family !== r.subnet.ip.family) return false;
  const n = ipToBigInt(ip);
  if (n < cidrFirst(r.subnet) || n > cidrLast(r.subnet)) return false;
  if (r.start !== undefined && n < r.start) return false;
  return r.end === undefined || n <= r.end;
};

/** Range.Contains: in the subnet and between start and end. */
export function rangeContains(r: HLRange, ip: IPAddr): boolean {
  return inRange(r, ip);
}

export function rangeString(r: HLRange): string {
  const fam = r.subnet.ip.family;
  return `${formatIP(bigIntToIP(r.start, fam))}-${formatIP(bigIntToIP(r.end, fam))}`;
}

export function rangeSetString(set: readonly HLRange[]): string {
  return set.map(rangeString).join(',');
}

/** Range.Canonicalize: defaults filled in, sanity checked, with the reference's messages. */
function canonicalize(raw: RawRange): HLRange {
  const subnet = raw.subnet ?? fail('IP <nil> not v4 nor v6');
  const fam = subnet.ip.family;
  const bits = fam === 4 ? 32 : 128;
  if (subnet.prefix > bits - 2) fail(`Network ${formatCidr(subnet)} too small to allocate from`);
  const network = cidrFirst(subnet);
  if (ipToBigInt(subnet.ip) !== network) {
    fail(`Network has host bits set. For a subnet mask of length ${subnet.prefix} the network address is ${formatIP(bigIntToIP(network, fam))}`);
  }
  const gateway = raw.gateway ?? bigIntToIP(network + 1n, fam);
  // as in the reference, the bounds given are in force while each is checked (Range.Contains)
  const r: { subnet: Cidr; start?: bigint; end?: bigint } = { subnet };
  if (raw.rangeStart) r.start = ipToBigInt(raw.rangeStart);
  if (raw.rangeEnd) r.end = ipToBigInt(raw.rangeEnd);
  if (raw.rangeStart) {
    if (!inRange(r, raw.rangeStart)) fail(`RangeStart ${formatIP(raw.rangeStart)} not in network ${formatCidr(subnet)}`);
    r.start = ipToBigInt(raw.rangeStart);
  } else {
    r.start = network + 1n;
  }
  if (raw.rangeEnd) {
    if (!inRange(r, raw.rangeEnd)) fail(`RangeEnd ${formatIP(raw.rangeEnd)} not in network ${formatCidr(subnet)}`);
    r.end = ipToBigInt(raw.rangeEnd);
  } else {
    // the last address, but not the IPv4 broadcast (the reference decrements the last byte)
    r.end = fam === 4 ? cidrLast(subnet) - 1n : cidrLast(subnet);
  }
  return { subnet, start: r.start, end: r.end, gateway };
}

const overlaps = (a: HLRange, b: HLRange): boolean => {
  if (a.subnet.ip.family !== b.subnet.ip.family) return false;
  const fam = a.subnet.ip.family;
  const ip = (n: bigint) => bigIntToIP(n, fam);
  return rangeContains(a, ip(b.start)) || rangeContains(a, ip(b.end)) || rangeContains(b, ip(a.start)) || rangeContains(b, ip(a.end));
};

/** RangeSet.Canonicalize. */
function canonicalizeSet(raw: RawRange[]): HLRange[] {
  if (raw.length === 0) fail('empty range set');
  const set = raw.map(canonicalize);
  const fam = set[0]?.subnet.ip.family;
  if (set.some((r) => r.subnet.ip.family !== fam)) fail('mixed address families');
  for (let i = 0; i < set.length - 1; i++) {
    for (let j = i + 1; j < set.length; j++) {
      const a = set[i] as HLRange;
      const b = set[j] as HLRange;
      if (overlaps(a, b)) fail(`subnets ${rangeString(a)} and ${rangeString(b)} overlap`);
    }
  }
  return set;
}

export function setsOverlap(a: readonly HLRange[], b: readonly HLRange[]): boolean {
  return a.some((x) => b.some((y) => overlaps(x, y)));
}

/** LoadIPAMConfig(stdin, CNI_ARGS). */
export function loadHostLocalConf(stdin: string, cniArgs: string): HostLocalConf {
  const raw: JsonObject = parseObject(stdin, 'network configuration', Code.DecodeFailure);
  const f = new Fields(raw, '', Code.Internal);
  const ipamV = raw.ipam;
  if (ipamV === undefined || ipamV === null) fail("IPAM config missing 'ipam' key");
  const ipam = f.obj_('ipam');
  const rc = f.optObj('runtimeConfig');
  const cniArgsObj = f.optObj('args')?.optObj('cni');

  const requested: IPAddr[] = [];
  loadGoArgs(cniArgs, {
    IP: (v) => {
      requested.length = 0;
      const ip = requestedIP(v);
      if (ip) requested.push(ip);
    },
  });
  requested.push(...ipList(cniArgsObj?.obj.ips, 'args.cni.ips'), ...ipList(rc?.obj.ips, 'runtimeConfig.ips'));

  let sets = rawRangeSets(ipam.obj.ranges, 'ipam.ranges');
  const legacy = rawRange(ipam.obj, 'ipam');
  if (legacy.subnet) sets = [[legacy], ...sets];
  const rcRanges = rawRangeSets(rc?.obj.ipRanges, 'runtimeConfig.ipRanges');
  if (rcRanges.length > 0) sets = [...rcRanges, ...sets];
  if (sets.length === 0) fail('no IP ranges specified');

  const rangeSets = sets.map((s, i) => {
    try {
      return canonicalizeSet(s);
    } catch (err) {
      return fail(`invalid range set ${i}: ${(err as Error).message}`);
    }
  });
  const cniVersion = f.optStr('cniVersion') ?? '';
  const v4 = rangeSets.filter((s) => s[0]?.subnet.ip.family === 4).length;
  if ((v4 > 1 || rangeSets.length - v4 > 1) && !(isSupported(cniVersion) && atLeast(cniVersion, '0.3.0'))) {
    fail(`CNI version ${cniVersion} does not support more than 1 address per family`);
  }
  for (let i = 0; i < rangeSets.length - 1; i++) {
    for (let j = i + 1; j < rangeSets.length; j++) {
      if (setsOverlap(rangeSets[i] as HLRange[], rangeSets[j] as HLRange[])) fail(`range set ${i} overlaps with ${j}`);
    }
  }
  return {
    name: f.optStr('name') ?? '',
    cniVersion,
    dataDir: ipam.optStr('dataDir') ?? '',
    resolvConf: ipam.optStr('resolvConf') ?? '',
    routes: parseRoutes(ipam),
    rangeSets,
    requested,
  };
}
