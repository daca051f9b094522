// Multus's state on disk, read so plexus can DEL pods that Multus attached before a node switched,
// and libcni's per-attachment result cache, read and written in libcni's own format. Pure: text in,
// data out; the caller does the file I/O. Sources (MUL = k8snetworkplumbingwg/multus-cni, CNI =
// containernetworking/cni):
//  - <cniDir>/<containerID> is json.Marshal([]*DelegateNetConf), written before any delegate runs
//    (MUL pkg/multus/multus.go saveDelegates/saveScratchNetConf, 0600). Go marshals the struct
//    without tags for Conf, ConfList, Name, IsFilterV4Gateway, IsFilterV6Gateway, Bytes; Bytes is
//    []byte, so it is base64 (MUL pkg/types/types.go DelegateNetConf).
//  - DEL (MUL CmdDel) unmarshals that list, marks a delegate as a conflist when
//    len(ConfList.Plugins) != 0, makes delegate 0 the master, backfills the Multus cniVersion into
//    conflists without one, then runs delPlugins from the last delegate to the first.
//  - v4.2.1..v4.3.0 (and master again after PR #1536) also write CNINetworkConfigList, a marshalled
//    libcni.NetworkConfigList whose per-plugin Bytes are lossless while Bytes is a lossy re-marshal;
//    master rebuilds the conflist from it (MUL pkg/types/conf.go DelegateNetConf.UnmarshalJSON).
import { join } from 'node:path';
import { CniError, Code } from '../cni/errors';
import { Fields, describe, isObject, parseObject, type Json, type JsonObject } from '../cni/validate';

/** Multus's default cniDir (MUL pkg/types/conf.go defaultCNIDir); libcni's cache lives below it. */
export const MULTUS_CNI_DIR = '/var/lib/cni/multus';
/** Where Multus puts CNIDeviceInfoFile (NAD client pkg/utils GetCNIDeviceInfoPath). */
export const CNI_DEVINFO_DIR = '/var/run/k8s.cni.cncf.io/devinfo/cni';

/** One delegate from a Multus scratch file, in the order Multus attached it. DEL runs them in reverse. */
export interface MultusDelegate {
  /** Position in Multus's list; ifnames `net<index>` derive from it. */
  index: number;
  /** Multus's name: "namespace/nad" for NADs, the CNI name for cluster/default networks. */
  name: string;
  /** The CNI network name inside the config: libcni keys its result cache by it. */
  networkName: string;
  ifname: string;
  /** The exact JSON text of the conf or conflist to run DEL with. */
  configBytes: string;
  isConflist: boolean;
  /** Multus treats delegate 0 as the master (cluster network) on DEL. */
  isMaster: boolean;
  /** libcni CapabilityArgs Multus passes on DEL; libcni filters it by each plugin's capabilities. */
  runtimeConfig: JsonObject;
  /** Which field the config came from: Bytes, or rebuilt losslessly from CNINetworkConfigList. */
  configSource: 'Bytes' | 'CNINetworkConfigList';
}

export interface MultusScratchOptions {
  /** cniVersion of the meta-plugin conf on DEL; Multus backfills it into conflists without one. */
  cniVersion?: string;
  /** runtimeConfig of the meta-plugin conf on DEL (what kubelet/containerd pass for its capabilities). */
  runtimeConfig?: JsonObject;
  /** Names the file in errors; defaults to "multus cache <containerID>". */
  source?: string;
}

const DECODE = Code.DecodeFailure;

function fail(where: string, msg: string): never {
  throw new CniError(DECODE, `${where}: ${msg}`);
}

/** Go's encoding/json matches object keys exactly first, then case-insensitively. */
function goField(obj: JsonObject, key: string): Json | undefined {
  const hit = Object.hasOwn(obj, key) ? key : Object.keys(obj).find((k) => k.toLowerCase() === key.toLowerCase());
  return hit === undefined ? undefined : obj[hit];
}

/** A view holding only the struct's fields, under their Go names, so Fields can check them. */
function goView(obj: JsonObject, keys: readonly string[]): JsonObject {
  const view: JsonObject = {};
  for (const k of keys) {
    const v = goField(obj, k);
    if (v !== undefined) view[k] = v;
  }
  return view;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a Go []byte field. Node's base64 decoder skips garbage, so check the alphabet first. */
function goBytes(v: Json | undefined, where: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(where, `must be base64 text, got ${describe(v)}`);
  const s = v.replace(/[\r\n]/g, ''); // Go's StdEncoding decoder skips CR and LF
  if (!BASE64.test(s)) fail(where, 'is not valid base64');
  try {
    return UTF8.decode(Buffer.from(s, 'base64'));
  } catch {
    return fail(where, 'decodes to bytes that are not UTF-8');
  }
}

function goBool(f: Fields, key: string): void {
  if (f.has(key) && typeof f.obj[key] !== 'boolean') fail(f.at(key), `must be a boolean, got ${describe(f.obj[key])}`);
}

const DELEGATE_KEYS = [
  'Conf', 'ConfList', 'CNINetworkConfigList', 'Name', 'ifnameRequest', 'macRequest', 'infinibandGUIDRequest',
  'ipRequest', 'default-route', 'IsFilterV4Gateway', 'IsFilterV6Gateway', 'deviceID', 'resourceName', 'Bytes',
] as const;

/**
 * Parses <cniDir>/<containerID> as Multus wrote it. Returns the delegates in attach order; the
 * caller runs DEL from the last to the first. A file Go could not decode, or one whose delegates
 * cannot be run, is a CniError (code 6) naming the field: Multus would silently skip the DEL
 * (issue #1087) and leak addresses; plexus says what is wrong instead.
 */
export function parseMultusScratch(text: string, containerID: string, cniIfname: string, opts: MultusScratchOptions = {}): MultusDelegate[] {
  const what = opts.source ?? `multus cache ${containerID}`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(what, `invalid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(doc)) fail(what, `must be a JSON list of delegates, got ${describe(doc)}`);
  // Multus ADD always caches at least one delegate; Go's DEL would index [0] of an empty list and panic.
  if (doc.length === 0) fail(what, 'lists no delegates');
  return doc.map((raw: Json, i) => readDelegate(raw, i, `${what}[${i}]`, { containerID, cniIfname, opts }));
}

interface DelCall {
  containerID: string;
  cniIfname: string;
  opts: MultusScratchOptions;
}

function readDelegate(raw: Json, index: number, at: string, call: DelCall): MultusDelegate {
  if (!isObject(raw)) fail(at, `must be an object, got ${describe(raw)}`);
  const f = new Fields(goView(raw, DELEGATE_KEYS), at, DECODE);
  f.optObj('Conf'); // only its shape matters: a non-object makes Go reject the whole file
  const confList = f.optObj('ConfList');
  const lf = new Fields(confList ? goView(confList.obj, ['cniVersion', 'plugins']) : {}, `${at}.ConfList`, DECODE);
  const listPlugins = lf.optArr('plugins') ?? [];
  listPlugins.forEach((p, j) => {
    if (p !== null && !isObject(p)) fail(`${at}.ConfList.plugins[${j}]`, `must be an object, got ${describe(p)}`);
  });
  const isConflist = listPlugins.length > 0; // MUL CmdDel: ConfListPlugin = len(ConfList.Plugins) != 0
  const listVersion = lf.optStr('cniVersion') ?? '';
  const name = f.optStr('Name') ?? '';
  const ifnameRequest = f.optStr('ifnameRequest') ?? '';
  const macRequest = f.optStr('macRequest') ?? '';
  const guidRequest = f.optStr('infinibandGUIDRequest') ?? '';
  const deviceID = f.optStr('deviceID') ?? '';
  f.optStr('resourceName');
  f.optStrList('default-route');
  goBool(f, 'IsFilterV4Gateway');
  goBool(f, 'IsFilterV6Gateway');
  // 2019 releases stored ipRequest as one string and no Name (issue #416's saveScratchNetConf log).
  const ipRequest = typeof f.obj['ipRequest'] === 'string' ? [f.obj['ipRequest']] : (f.optStrList('ipRequest') ?? []);

  const housekeeping = goBytes(f.obj['Bytes'], `${at}.Bytes`) ?? '';
  const legacy = f.optObj('CNINetworkConfigList');
  const rebuilt = legacy ? rebuildConfList(legacy.obj, housekeeping, at) : undefined;
  const configSource = rebuilt === undefined ? 'Bytes' : 'CNINetworkConfigList';
  let config = rebuilt ?? housekeeping;
  if (config === '') fail(`${at}.Bytes`, 'is missing: without the delegate config not even Multus can DEL it');
  const parsed = parseObject(config, `${at}.Bytes (decoded)`, DECODE);
  checkRunnable(parsed, isConflist, at);
  // MUL CmdDel backfills Multus's cniVersion into conflists without one. Master does it on the raw
  // bytes (InjectCNIVersionInConfList); older releases re-marshalled the lossy ConfList instead.
  const cniVersion = call.opts.cniVersion;
  if (isConflist && listVersion === '' && cniVersion) config = goJsonMarshal({ ...parsed, cniVersion });
  if (ifnameRequest !== '') checkIfname(ifnameRequest, `${at}.ifnameRequest`);
  const isMaster = index === 0; // MUL CmdDel: in.Delegates[0].MasterPlugin = true; the flag is json:"-"
  // MUL getIfname: the requested name, else CNI_IFNAME for the master, else net<index>.
  const ifname = ifnameRequest || (isMaster ? call.cniIfname : `net${index}`);
  const requests = isMaster ? undefined : { ips: ipRequest, mac: macRequest, infinibandGUID: guidRequest, deviceID };
  const runtimeConfig = capabilityArgs(call.opts.runtimeConfig, requests, `${name}-${call.containerID}_${ifname}`);
  const networkName = typeof parsed['name'] === 'string' ? parsed['name'] : '';
  return { index, name, networkName, ifname, configBytes: config, isConflist, isMaster, runtimeConfig, configSource };
}

/** libcni ConfFromBytes needs a type; ConfListFromBytes needs a plugins list. Anything else cannot DEL. */
function checkRunnable(parsed: JsonObject, isConflist: boolean, at: string): void {
  const plugins = parsed['plugins'];
  if (isConflist && (!Array.isArray(plugins) || plugins.length === 0)) {
    fail(`${at}.Bytes (decoded)`, 'ConfList says conflist but the config has no plugins list');
  }
  if (!isConflist && (typeof parsed['type'] !== 'string' || parsed['type'] === '')) fail(`${at}.Bytes (decoded)`, 'a conf delegate needs a "type"');
}

/** libcni utils.ValidateInterfaceName: this name becomes CNI_IFNAME for an exec'd plugin. */
function checkIfname(name: string, where: string): void {
  if (Buffer.byteLength(name) > 15 || name === '.' || name === '..' || /[/:\s]/.test(name)) {
    fail(where, `${JSON.stringify(name)} is not a valid interface name`);
  }
}

const RUNTIME_KEYS = ['portMappings', 'bandwidth', 'ips', 'mac', 'infinibandGUID', 'deviceID', 'CNIDeviceInfoFile'] as const;

/**
 * MUL pkg/types/conf.go newCNIRuntimeConf/mergeCNIRuntimeConfig/delegateRuntimeConfig on DEL: the
 * meta conf's runtimeConfig (only the keys Multus's RuntimeConfig struct knows), then for non-master
 * delegates the cached requests. portMappings/bandwidth requests are json:"-" so never cached.
 */
function capabilityArgs(base: JsonObject | undefined, requests: JsonObject | undefined, deviceInfoName: string): JsonObject {
  const rc: JsonObject = {};
  for (const k of RUNTIME_KEYS) {
    const v = base?.[k];
    if (v !== undefined && v !== null) rc[k] = v;
  }
  // Multus copies a value only when it is non-empty, for the base and the requests alike.
  const empty = (v: Json | undefined): boolean => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
  for (const [k, v] of Object.entries(requests ?? {})) if (!empty(v)) rc[k] = v;
  if (typeof rc['deviceID'] === 'string' && rc['deviceID'] !== '') {
    rc['CNIDeviceInfoFile'] = join(CNI_DEVINFO_DIR, deviceInfoName.replaceAll('/', '-'));
  }
  for (const [k, v] of Object.entries(rc)) if (empty(v)) delete rc[k];
  return rc;
}

/**
 * MUL master DelegateNetConf.UnmarshalJSON + rawConfListBytes + mergeConfListBytes: rebuild the
 * conflist from the list-level keys of CNINetworkConfigList.Bytes and each plugin's raw Bytes, then
 * take deviceID, pciBusID and args.cni from the housekeeping Bytes. Undefined when the field is the
 * empty value every conf delegate carried.
 */
function rebuildConfList(legacyObj: JsonObject, housekeeping: string, at: string): string | undefined {
  const base = `${at}.CNINetworkConfigList`;
  const legacy = new Fields(goView(legacyObj, ['Plugins', 'Bytes']), base, DECODE);
  const listBytes = goBytes(legacy.obj['Bytes'], `${base}.Bytes`) ?? '';
  const plugins = legacy.optArr('Plugins') ?? [];
  if (listBytes === '' && plugins.length === 0) return undefined;
  const list = parseObject(listBytes, `${base}.Bytes (decoded)`, DECODE);
  const lossless = plugins.map((p, j) => {
    const pw = `${base}.Plugins[${j}]`;
    if (!isObject(p)) fail(pw, `must be an object, got ${describe(p)}`);
    return parseObject(goBytes(goField(p, 'Bytes'), `${pw}.Bytes`) ?? '', `${pw}.Bytes (decoded)`, DECODE);
  });
  if (housekeeping !== '') mergeHousekeeping(lossless, parseObject(housekeeping, `${at}.Bytes (decoded)`, DECODE), at);
  list['plugins'] = lossless;
  return goJsonMarshal(list);
}

function mergeHousekeeping(lossless: JsonObject[], housekeeping: JsonObject, at: string): void {
  const where = `${at}.Bytes (decoded)`;
  const extra = housekeeping['plugins'];
  if (!Array.isArray(extra)) fail(where, 'has no plugins list to merge with CNINetworkConfigList');
  if (extra.length !== lossless.length) {
    fail(where, `has ${extra.length} plugins but CNINetworkConfigList has ${lossless.length}`);
  }
  lossless.forEach((plugin, idx) => {
    const hp = extra[idx] ?? null;
    if (hp === null) return; // Go unmarshals null into a nil map: nothing to merge
    if (!isObject(hp)) fail(`${where}.plugins[${idx}]`, `must be an object, got ${describe(hp)}`);
    for (const key of ['deviceID', 'pciBusID']) {
      if (Object.hasOwn(hp, key)) plugin[key] = hp[key] ?? null;
    }
    if (!Object.hasOwn(hp, 'args')) return;
    const hArgs = hp['args'] ?? null;
    if (hArgs !== null && !isObject(hArgs)) fail(`${where}.plugins[${idx}].args`, `must be an object, got ${describe(hArgs)}`);
    // MUL mergeCNIArgs: the args object becomes {} when absent, and args.cni is merged key by key.
    const args = isObject(plugin['args']) ? plugin['args'] : {};
    if (hArgs !== null && Object.hasOwn(hArgs, 'cni')) {
      const hCni = hArgs['cni'] ?? null;
      if (hCni !== null && !isObject(hCni)) fail(`${where}.plugins[${idx}].args.cni`, `must be an object, got ${describe(hCni)}`);
      args['cni'] = { ...(isObject(args['cni']) ? args['cni'] : {}), ...(hCni ?? {}) };
    }
    plugin['args'] = args;
  });
}

/** filepath.Join(cniDir, containerID) (MUL consumeScratchNetConf). */
export function multusScratchPath(cniDir: string, containerID: string): string {
  if (containerID === '' || containerID === '.' || containerID === '..' || /[/\0]/.test(containerID)) {
    throw new CniError(Code.InvalidEnv, `container ID ${JSON.stringify(containerID)} cannot name a cache file`);
  }
  return join(cniDir, containerID);
}

/**
 * CNI_ARGS Multus passes to every delegate on DEL (MUL pkg/types/conf.go createRuntimeConf and the
 * CNI_ARGS merge in newCNIRuntimeConf): its own five pairs built from the K8S_POD_* values of the DEL
 * call, then every pair of the CNI_ARGS environment variable, filling an empty slot of the same key
 * or else appended. Nothing comes from the scratch file. The thick daemon has no CNI_ARGS in its
 * environment, so it passes only the five (a thick-mode libcni cache in issue #1488 shows exactly
 * those); the attachment's libcni cache records which set ADD used. Multus fails a DEL whose
 * CNI_ARGS has a pair with two '='; this does not.
 */
export function multusCniArgs(cniArgs: string, mode: { thick?: boolean } = {}): [string, string][] {
  const pairs: [string, string][] = [];
  for (const arg of cniArgs === '' ? [] : cniArgs.split(';')) {
    const eq = arg.indexOf('=');
    if (eq >= 0) pairs.push([arg.slice(0, eq), arg.slice(eq + 1)]);
  }
  const k8s = (key: string): string => pairs.findLast(([k]) => k === key)?.[1] ?? '';
  const args: [string, string][] = [
    ['IgnoreUnknown', 'true'],
    ['K8S_POD_NAMESPACE', k8s('K8S_POD_NAMESPACE')],
    ['K8S_POD_NAME', k8s('K8S_POD_NAME')],
    ['K8S_POD_INFRA_CONTAINER_ID', k8s('K8S_POD_INFRA_CONTAINER_ID')],
    ['K8S_POD_UID', k8s('K8S_POD_UID')],
  ];
  for (const [key, val] of mode.thick ? [] : pairs) {
    const slot = args.find(([k, v]) => k === key && v === '' && val !== '');
    if (slot) slot[1] = val;
    else args.push([key, val]);
  }
  return args;
}

// ---- libcni's result cache (CNI libcni/api.go cachedInfo, cacheAdd, getCachedResult) ----

export interface LibcniCacheEntry {
  /** 'cniCacheV1', or 'legacy' for a bare result (libcni before config caching; still read). */
  kind: 'cniCacheV1' | 'legacy';
  containerId: string;
  ifName: string;
  networkName: string;
  netns: string;
  /** The config bytes the attachment was added with; '' for a legacy file. */
  config: string;
  cniArgs: [string, string][];
  capabilityArgs: JsonObject;
  result?: JsonObject;
}

export type LibcniCacheInput = Omit<LibcniCacheEntry, 'kind' | 'netns' | 'cniArgs' | 'capabilityArgs'> &
  Partial<Pick<LibcniCacheEntry, 'netns' | 'cniArgs' | 'capabilityArgs'>>;

export interface LibcniCacheSource {
  /** Names the file in errors. */
  source?: string;
  /** For a legacy file, which holds only the result: the parts of its name (libcniCachePath). */
  networkName?: string;
  containerId?: string;
  ifName?: string;
}

const V1_KEYS = ['containerId', 'config', 'ifName', 'networkName', 'netns', 'cniArgs', 'capabilityArgs', 'result'] as const;
const RESULT_KEYS = ['cniVersion', 'interfaces', 'ips', 'routes', 'dns', 'ip4', 'ip6'];

/** Reads a libcni cache file: cniCacheV1, in libcni's field order or the sorted order Multus rewrites. */
export function parseLibcniCache(text: string, from: LibcniCacheSource = {}): LibcniCacheEntry {
  const what = from.source ?? 'libcni cache';
  const obj = parseObject(text, what, DECODE);
  const kind = goField(obj, 'kind');
  if (kind === undefined || kind === null) return readLegacy(obj, what, from);
  if (kind !== 'cniCacheV1') fail(`${what}.kind`, `must be "cniCacheV1", got ${describe(kind)}`);
  const f = new Fields(goView(obj, V1_KEYS), what, DECODE);
  const config = goBytes(f.obj['config'], `${what}.config`);
  if (config === undefined) fail(`${what}.config`, 'is missing');
  const cniArgs = (f.optArr('cniArgs') ?? []).map((p, i): [string, string] => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || typeof p[1] !== 'string') {
      return fail(`${what}.cniArgs[${i}]`, `must be a [key, value] pair of strings, got ${describe(p)}`);
    }
    return [p[0], p[1]];
  });
  const entry: LibcniCacheEntry = {
    kind: 'cniCacheV1',
    containerId: f.nonEmpty('containerId'),
    ifName: f.nonEmpty('ifName'),
    networkName: f.nonEmpty('networkName'),
    netns: f.optStr('netns') ?? '',
    config,
    cniArgs,
    capabilityArgs: f.optObj('capabilityArgs')?.obj ?? {},
  };
  const result = f.optObj('result')?.obj;
  if (result) entry.result = result;
  return entry;
}

/** libcni getLegacyCachedResult: the whole file is the result. Reject what is neither. */
function readLegacy(obj: JsonObject, what: string, from: LibcniCacheSource): LibcniCacheEntry {
  const v1Key = ['containerId', 'config', 'networkName'].find((k) => goField(obj, k) !== undefined);
  if (v1Key) fail(`${what}.kind`, `is missing but the file has cniCacheV1 field "${v1Key}"`);
  if (!RESULT_KEYS.some((k) => Object.hasOwn(obj, k))) fail(what, 'is neither a cniCacheV1 record nor a CNI result');
  new Fields(obj, what, DECODE).optStr('cniVersion');
  const { containerId = '', ifName = '', networkName = '' } = from;
  return { kind: 'legacy', containerId, ifName, networkName, netns: '', config: '', cniArgs: [], capabilityArgs: {}, result: obj };
}

/**
 * Writes what libcni cacheAdd writes: json.Marshal(&cachedInfo) — fields in struct order, config
 * base64, netns/cniArgs/capabilityArgs/result omitted when empty, maps with sorted keys, no newline.
 */
export function formatLibcniCache(e: LibcniCacheInput): string {
  const parts = [
    `"kind":"cniCacheV1"`,
    `"containerId":${goQuote(e.containerId)}`,
    `"config":${goQuote(Buffer.from(e.config, 'utf8').toString('base64'))}`,
    `"ifName":${goQuote(e.ifName)}`,
    `"networkName":${goQuote(e.networkName)}`,
  ];
  if (e.netns) parts.push(`"netns":${goQuote(e.netns)}`);
  if (e.cniArgs && e.cniArgs.length > 0) parts.push(`"cniArgs":${goJsonMarshal(e.cniArgs)}`);
  if (e.capabilityArgs && Object.keys(e.capabilityArgs).length > 0) {
    parts.push(`"capabilityArgs":${goJsonMarshal(e.capabilityArgs)}`);
  }
  if (e.result && Object.keys(e.result).length > 0) parts.push(`"result":${goJsonMarshal(e.result)}`);
  return `{${parts.join(',')}}`;
}

/** filepath.Join(cacheDir, "results", netName-containerID-ifName) (CNI libcni/api.go getCacheFilePath). */
export function libcniCachePath(cacheDir: string, netName: string, containerID: string, ifName: string): string {
  const bad = (v: string): boolean => v === '' || /[/\0]/.test(v);
  if (bad(netName)) throw new CniError(Code.InvalidConfig, `network name ${JSON.stringify(netName)} cannot name a cache file`);
  if (bad(containerID) || bad(ifName)) {
    throw new CniError(Code.InvalidEnv, `container ID ${JSON.stringify(containerID)} and ifname ${JSON.stringify(ifName)} cannot name a cache file`);
  }
  return join(cacheDir, 'results', `${netName}-${containerID}-${ifName}`);
}

// ---- Go encoding/json output, so files plexus writes match the bytes Go tools write ----

/**
 * json.Marshal of a value decoded into interface{}: compact, map keys sorted bytewise, strings
 * escaped as Go does. Go formats float64 like JS's shortest round-trip, except it keeps -0.
 */
export function goJsonMarshal(v: Json): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return goQuote(v);
  if (Array.isArray(v)) return `[${v.map(goJsonMarshal).join(',')}]`;
  const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${goQuote(k)}:${goJsonMarshal(v[k] ?? null)}`).join(',')}}`;
}

const SHORT_ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

/** Go's string encoder with HTML escaping on (the default); \b and \f as Go 1.22+ writes them. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20) out += SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    else if (ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // a lone surrogate is invalid UTF-8 to Go
    else out += ch;
  }
  return `${out}"`;
}
