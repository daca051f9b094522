// Plugin results: parsed from any version plexus speaks into the internal 1.x shape, and printed
// in any of those versions the way libcni converts them (pkg/types/040, pkg/types/100):
//  - 0.3.x/0.4.0 carry ips[].version ("4"/"6"), recomputed from the address on output;
//  - interfaces[].mtu/socketPath/pciID exist only in 1.x and are dropped for 0.x (the 0.4.0 Go type
//    has no such fields); 1.1.0 → 1.0.0 keeps them (one Go type serves both);
//  - route mtu/advmss/priority/table/scope are kept in every version: libcni's Route type is
//    shared by 0.4.0 and 1.x, so it keeps them too;
//  - 0.x results always print "dns" (libcni's 0.4.0 type cannot omit the empty struct), 1.x omit
//    it when empty.
// One deliberate difference: top-level fields a plugin added are kept in `extra` and printed again
// (libcni drops them), so a chained result loses nothing passing through plexus.
import { CniError, Code } from './errors';
import { describe, Fields, isObject, parseObject, type Json, type JsonObject } from './validate';
import { canonicalCidr, canonicalIP, parseCidr, parseHwAddr, resultFamily } from './addr';
import type { CniDNS, CniIPConfig, CniInterface, CniRoute, Result } from './types';
import { compareVersions, isSupported, requireSupported, SUPPORTED_VERSIONS } from './version';

export interface ParseResultOptions {
  /**
   * The request config's version. libcni reads a result without cniVersion (or with "") as
   * being of the config's version (invoke.fixupResultVersion); without this such a result fails.
   */
  configVersion?: string;
  /**
   * An IPAM plugin's (abbreviated) result. Its interfaces and ips[].interface are checked for type
   * and then dropped: the calling plugin sets its own (the reference plugins overwrite them too).
   */
  ipam?: boolean;
  /** Names the source in error messages; default "result". */
  what?: string;
}

const KNOWN_KEYS = new Set(['cniVersion', 'interfaces', 'ips', 'routes', 'dns']);
const U32 = 4294967295;

function fail(path: string, msg: string): never {
  throw new CniError(Code.DecodeFailure, `${path}: ${msg}`);
}

/** Objects in a list field, each with its own Fields scoped to "key[i]". */
function listOf(f: Fields, key: string): Fields[] {
  const arr = f.optArr(key) ?? [];
  return arr.map((v, i) => {
    const at = `${f.at(key)}[${i}]`;
    if (!isObject(v)) fail(at, 'must be an object');
    return new Fields(v, at, Code.DecodeFailure);
  });
}

/** Go's `omitempty` string: absent, null and "" are all "not set". */
function optNonEmpty(f: Fields, key: string): string | undefined {
  const v = f.optStr(key);
  return v === '' ? undefined : v;
}

/** Go's `omitempty` int: 0 means "not set". */
function optPositive(f: Fields, key: string, max: number): number | undefined {
  const v = f.optInt(key, 0, max);
  return v === 0 ? undefined : v;
}

function cidrField(f: Fields, key: string): string {
  const s = f.str(key);
  const c = canonicalCidr(s);
  if (c === undefined) fail(f.at(key), `${JSON.stringify(s)} is not an address with prefix length (such as 10.1.2.3/24)`);
  return c;
}

function optIPField(f: Fields, key: string): string | undefined {
  const s = optNonEmpty(f, key);
  if (s === undefined) return undefined;
  const ip = canonicalIP(s);
  if (ip === undefined) fail(f.at(key), `${JSON.stringify(s)} is not an IP address`);
  return ip;
}

function parseInterface(f: Fields, legacy: boolean): CniInterface {
  const out: CniInterface = { name: f.nonEmpty('name') };
  const mac = optNonEmpty(f, 'mac');
  if (mac !== undefined) {
    // Kept verbatim: it is passed on to the runtime, only checked to be a hardware address.
    if (!parseHwAddr(mac)) fail(f.at('mac'), `${JSON.stringify(mac)} is not a hardware address`);
    out.mac = mac;
  }
  if (!legacy) {
    const mtu = optPositive(f, 'mtu', U32);
    if (mtu !== undefined) out.mtu = mtu;
  }
  const sandbox = optNonEmpty(f, 'sandbox');
  if (sandbox !== undefined) out.sandbox = sandbox;
  if (!legacy) {
    const socketPath = optNonEmpty(f, 'socketPath');
    if (socketPath !== undefined) out.socketPath = socketPath;
    const pciID = optNonEmpty(f, 'pciID');
    if (pciID !== undefined) out.pciID = pciID;
  }
  return out;
}

function parseIPConfig(f: Fields, legacy: boolean, ifCount: number, ipam: boolean): CniIPConfig {
  const address = cidrField(f, 'address');
  const out: CniIPConfig = { address };
  // 0.x only; libcni ignores the value, but one that contradicts the address means a broken
  // plugin, and the version is recomputed from the address on output anyway.
  if (legacy && f.has('version')) {
    const v = f.str('version');
    if (v !== '4' && v !== '6') fail(f.at('version'), `must be "4" or "6", got ${JSON.stringify(v)}`);
    const fam = familyOf(address);
    if (v !== fam) fail(f.at('version'), `is "${v}" but address ${address} is IPv${fam}`);
  }
  const gw = optIPField(f, 'gateway');
  if (gw !== undefined) out.gateway = gw;
  if (f.has('interface')) {
    const idx = f.int('interface', 0, Number.MAX_SAFE_INTEGER);
    if (!ipam) {
      if (idx >= ifCount) {
        fail(f.at('interface'), `index ${idx} is out of range: the result lists ${ifCount} interface${ifCount === 1 ? '' : 's'}`);
      }
      out.interface = idx;
    }
  }
  return out;
}

function parseRoute(f: Fields): CniRoute {
  const out: CniRoute = { dst: cidrField(f, 'dst') };
  const gw = optIPField(f, 'gw');
  if (gw !== undefined) out.gw = gw;
  const mtu = optPositive(f, 'mtu', U32);
  if (mtu !== undefined) out.mtu = mtu;
  const advmss = optPositive(f, 'advmss', U32);
  if (advmss !== undefined) out.advmss = advmss;
  const priority = optPositive(f, 'priority', U32);
  if (priority !== undefined) out.priority = priority;
  // table and scope are pointers in Go: 0 is a value (scope 0 = universe), so it is kept.
  const table = f.optInt('table', 0, U32);
  if (table !== undefined) out.table = table;
  const scope = f.optInt('scope', 0, 255);
  if (scope !== undefined) out.scope = scope;
  return out;
}

function parseDNS(f: Fields): CniDNS | undefined {
  const out: CniDNS = {};
  const nameservers = f.optStrList('nameservers');
  if (nameservers?.length) out.nameservers = nameservers;
  const domain = optNonEmpty(f, 'domain');
  if (domain !== undefined) out.domain = domain;
  const search = f.optStrList('search');
  if (search?.length) out.search = search;
  const options = f.optStrList('options');
  if (options?.length) out.options = options;
  return Object.keys(out).length ? out : undefined;
}

/**
 * Parses and validates a plugin's result (stdout text or parsed JSON); a string option is `what`.
 * Errors: code 6 naming the field, or code 1 for a version plexus does not read.
 */
export function parseResult(input: unknown, options: ParseResultOptions | string = {}): Result {
  const opts: ParseResultOptions = typeof options === 'string' ? { what: options } : options;
  const what = opts.what ?? 'result';
  const obj = typeof input === 'string' ? parseObject(input, what, Code.DecodeFailure) : input;
  if (!isObject(obj)) fail(what, `must be a JSON object, got ${describe(obj)}`);
  const f = new Fields(obj, what, Code.DecodeFailure);

  let version = f.optStr('cniVersion') ?? '';
  if (version === '' && opts.configVersion !== undefined) version = opts.configVersion;
  if (!isSupported(version)) {
    const shown = version === '' ? 'missing' : JSON.stringify(version);
    throw new CniError(
      Code.IncompatibleVersion,
      `${what}.cniVersion: ${shown} is not a result version plexus reads (${SUPPORTED_VERSIONS.join(', ')})`,
    );
  }
  const legacy = compareVersions(version, '1.0.0') < 0;

  const interfaces = listOf(f, 'interfaces').map((x) => parseInterface(x, legacy));
  const ifCount = opts.ipam ? 0 : interfaces.length;
  const ips = listOf(f, 'ips').map((x) => parseIPConfig(x, legacy, ifCount, opts.ipam === true));
  const routes = listOf(f, 'routes').map(parseRoute);
  const dnsF = f.optObj('dns');
  const dns = dnsF ? parseDNS(dnsF) : undefined;

  const out: Result = { cniVersion: version };
  if (interfaces.length && !opts.ipam) out.interfaces = interfaces;
  if (ips.length) out.ips = ips;
  if (routes.length) out.routes = routes;
  if (dns) out.dns = dns;
  const extra: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) if (!KNOWN_KEYS.has(k)) extra[k] = v;
  if (Object.keys(extra).length) out.extra = extra;
  return out;
}

/** parseResult for an IPAM plugin's output. */
export function parseIpamResult(input: unknown, opts: Omit<ParseResultOptions, 'ipam'> = {}): Result {
  return parseResult(input, { ...opts, ipam: true, what: opts.what ?? 'IPAM result' });
}

/**
 * Makes a plugin result from an IPAM result: the plugin's interfaces, and every IP assigned to
 * the interface at `index` (what the reference plugins do with their IPAM's answer).
 */
export function attachIpamResult(ipam: Result, interfaces: readonly CniInterface[], index: number): Result {
  if (!Number.isInteger(index) || index < 0 || index >= interfaces.length) {
    throw new CniError(Code.Internal, `interface index ${index} is out of range for ${interfaces.length} interfaces`);
  }
  const out: Result = { cniVersion: ipam.cniVersion, interfaces: interfaces.map((i) => ({ ...i })) };
  if (ipam.ips?.length) out.ips = ipam.ips.map((ip) => ({ ...ip, interface: index }));
  if (ipam.routes?.length) out.routes = ipam.routes.map((r) => ({ ...r }));
  if (ipam.dns) out.dns = { ...ipam.dns };
  if (ipam.extra) out.extra = { ...ipam.extra };
  return out;
}

function formatDNS(dns: CniDNS | undefined): JsonObject {
  const out: JsonObject = {};
  if (dns?.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns?.domain) out.domain = dns.domain;
  if (dns?.search?.length) out.search = [...dns.search];
  if (dns?.options?.length) out.options = [...dns.options];
  return out;
}

function familyOf(address: string): string {
  const c = parseCidr(address);
  if (!c) throw new CniError(Code.Internal, `result holds an invalid address ${JSON.stringify(address)}`);
  return String(resultFamily(c.ip));
}

/**
 * The result as JSON of `version` (code 1 if plexus does not speak it). Keys come in libcni's
 * struct order so printed results read like a reference plugin's.
 */
export function formatResult(result: Result, version: string): JsonObject {
  requireSupported(version);
  const legacy = compareVersions(version, '1.0.0') < 0;
  const out: JsonObject = { cniVersion: version };

  if (result.interfaces?.length) {
    out.interfaces = result.interfaces.map((i) => {
      const o: JsonObject = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (!legacy && i.mtu) o.mtu = i.mtu;
      if (i.sandbox) o.sandbox = i.sandbox;
      if (!legacy && i.socketPath) o.socketPath = i.socketPath;
      if (!legacy && i.pciID) o.pciID = i.pciID;
      return o;
    });
  }
  if (result.ips?.length) {
    out.ips = result.ips.map((ip) => {
      const o: JsonObject = {};
      if (legacy) o.version = familyOf(ip.address);
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }
  if (result.routes?.length) {
    out.routes = result.routes.map((r) => {
      const o: JsonObject = { dst: r.dst };
      if (r.gw) o.gw = r.gw;
      if (r.mtu) o.mtu = r.mtu;
      if (r.advmss) o.advmss = r.advmss;
      if (r.priority) o.priority = r.priority;
      if (r.table !== undefined) o.table = r.table;
      if (r.scope !== undefined) o.scope = r.scope;
      return o;
    });
  }
  const dns = formatDNS(result.dns);
  if (legacy || Object.keys(dns).length) out.dns = dns;

  for (const [k, v] of Object.entries(result.extra ?? {})) {
    if (!KNOWN_KEYS.has(k)) out[k] = v as Json;
  }
  return out;
}

/** Converts a result between versions (parse of a format), e.g. a cached 1.x result for a 0.4.0 DEL. */
export function convertResult(result: Result, version: string): Result {
  return parseResult(formatResult(result, version));
}
