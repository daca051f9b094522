// The pod's network selection: k8s.v1.cni.cncf.io/networks (NPWG v1.3 §4.1) and Multus's
// v1.multus-cni.io/default-network. Pure: annotation text in, validated elements out.
//
// Where the spec says an invalid value makes the annotation "invalid and ignored", plexus fails
// the ADD with code 7 naming the element and field instead: silently attaching a pod without the
// address, MAC or interface its owner asked for is worse than a clear error (Multus fails too).
import { CniError, Code } from '../cni/errors';
import { describe, Fields, isObject, type Json, type JsonObject } from '../cni/validate';
import {
  canonicalIP,
  canonicalIPWithOptionalPrefix,
  interfaceNameProblem,
  normalizeHwAddr,
  parseIP,
} from '../cni/addr';
import type { Bandwidth, NetworkSelectionElement, PortMapping } from '../cni/types';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
export const DEFAULT_NETWORK_ANNOTATION = 'v1.multus-cni.io/default-network';

/**
 * Keys of a JSON-form element. The spec reserves every key without a period (§4.1.2.1); besides
 * its own, Multus's `deviceID` and deprecated `interfaceRequest` are accepted so annotations
 * written for Multus keep working. Any other period-less key is an error: it is either a typo
 * ("ip", "Interface") or a key from a newer spec plexus does not implement, and ignoring it
 * would attach the pod without what was asked. Keys with a period are extensions for other
 * implementations and are ignored, as the spec intends.
 */
const ELEMENT_KEYS = [
  'name',
  'namespace',
  'ips',
  'mac',
  'interface',
  'cni-args',
  'portMappings',
  'bandwidth',
  'default-route',
  'infiniband-guid',
  'ipam-claim-reference',
  'deviceID',
  'interfaceRequest',
] as const;
const PORT_KEYS = ['hostPort', 'containerPort', 'protocol', 'hostIP'] as const;
const BANDWIDTH_KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const;
const PROTOCOLS = ['tcp', 'udp', 'sctp'];

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_HELP = 'lower-case letters, digits and "-", starting and ending with a letter or digit';

/** The spec rule a check enforces, as error messages cite it (`plexus validate` shows it too). */
export function npwg(section: string): string {
  return `NPWG v1.3 §${section}`;
}

function invalid(at: string, msg: string, section?: string): never {
  throw new CniError(Code.InvalidConfig, section ? `${at}: ${msg} (${npwg(section)})` : `${at}: ${msg}`);
}

/** Same key up to case, "-"/"_" and one edit ("ip" → "ips", "defaultRoute" → "default-route"). */
function looksLike(typed: string, known: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const a = norm(typed);
  const b = norm(known);
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  let j = 0;
  while (j < a.length - i && j < b.length - i && a[a.length - 1 - j] === b[b.length - 1 - j]) j++;
  return Math.max(a.length, b.length) - i - j <= 1;
}

function checkKeys(obj: JsonObject, at: string, allowed: readonly string[], reservedOnly: boolean, section: string): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key) || (reservedOnly && key.includes('.'))) continue;
    const near = allowed.find((k) => looksLike(key, k));
    const hint = near
      ? ` (did you mean "${near}"?)`
      : reservedOnly
        ? `: the NPWG spec reserves keys without a period; name an extension in reverse-DNS form such as "org.example.${key}"`
        : ` (known keys: ${allowed.join(', ')})`;
    invalid(`${at}.${key}`, `unknown key${hint}`, section);
  }
}

/** NAD names and namespaces: DNS-1123 labels (§3.3); namespaces are Kubernetes labels (≤63). */
export function checkName(at: string, value: string, what: 'network name' | 'namespace'): string {
  if (value === '') invalid(at, `${what} must not be empty`, '3.3');
  if (!DNS1123_LABEL.test(value)) invalid(at, `${JSON.stringify(value)} is not a valid ${what}: it must be a DNS-1123 label (${LABEL_HELP})`, '3.3');
  const max = what === 'namespace' ? 63 : 253;
  if (value.length > max) invalid(at, `${what} ${JSON.stringify(value)} is longer than ${max} characters`, '3.3');
  return value;
}

function checkIfname(at: string, value: string): string {
  const problem = interfaceNameProblem(value);
  if (problem) invalid(at, `${JSON.stringify(value)} is not a valid Linux interface name: it ${problem}`, '4.1.2.1.5');
  return value;
}

function ipEntry(at: string, v: Json, prefixAllowed: boolean, section: string): string {
  if (typeof v !== 'string') invalid(at, `must be a string, got ${describe(v)}`, section);
  if (prefixAllowed && v.includes('/')) {
    const c = canonicalIPWithOptionalPrefix(v);
    if (c !== undefined) return c;
    const ip = parseIP(v.slice(0, v.indexOf('/')));
    if (ip) invalid(at, `${JSON.stringify(v)} has an invalid prefix length (want 0-${ip.family === 4 ? 32 : 128})`, section);
    invalid(at, `${JSON.stringify(v)} is not an IP address`, section);
  }
  const c = canonicalIP(v);
  if (c === undefined) invalid(at, `${JSON.stringify(v)} is not an IP address`, section);
  return c;
}

/** Fields' own type errors (`must be an integer from 1 to 65535`) cite the rule of the key too. */
function citing<T>(section: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof CniError && !err.message.includes('(NPWG ')) throw new CniError(err.code, `${err.message} (${npwg(section)})`, err.details);
    throw err;
  }
}

function portMapping(v: Json, at: string): PortMapping {
  if (!isObject(v)) invalid(at, `must be an object, got ${describe(v)}`, '4.1.2.1.7');
  checkKeys(v, at, PORT_KEYS, false, '4.1.2.1.7');
  const f = new Fields(v, at);
  const out: PortMapping = {
    hostPort: citing('4.1.2.1.7', () => f.int('hostPort', 1, 65535)),
    containerPort: citing('4.1.2.1.7', () => f.int('containerPort', 1, 65535)),
    protocol: 'tcp',
  };
  const proto = f.optStr('protocol');
  if (proto !== undefined && proto !== '') {
    // Case-insensitive per spec; lower case is what containerd sends and portmap compares with.
    const p = proto.toLowerCase();
    if (!PROTOCOLS.includes(p)) invalid(f.at('protocol'), `${JSON.stringify(proto)} is not TCP, UDP or SCTP`, '4.1.2.1.7');
    out.protocol = p;
  }
  const hostIP = f.optStr('hostIP');
  if (hostIP !== undefined && hostIP !== '') out.hostIP = ipEntry(f.at('hostIP'), hostIP, false, '4.1.2.1.7');
  return out;
}

function bandwidth(f: Fields): Bandwidth {
  checkKeys(f.obj, f.path, BANDWIDTH_KEYS, false, '4.1.2.1.8');
  const out: Bandwidth = {};
  for (const key of BANDWIDTH_KEYS) {
    // Rates in bits/s and bursts in bits; zero would mean "no traffic", which nobody asks for.
    const v = citing('4.1.2.1.8', () => f.optInt(key, 1, Number.MAX_SAFE_INTEGER));
    if (v !== undefined) out[key] = v;
  }
  if (out.ingressBurst !== undefined && out.ingressRate === undefined) invalid(f.at('ingressBurst'), 'needs ingressRate', '4.1.2.1.8');
  if (out.egressBurst !== undefined && out.egressRate === undefined) invalid(f.at('egressBurst'), 'needs egressRate', '4.1.2.1.8');
  return out;
}

function jsonElement(obj: JsonObject, at: string, defaultNs: string): NetworkSelectionElement {
  checkKeys(obj, at, ELEMENT_KEYS, true, '4.1.2.1');
  const f = new Fields(obj, at);
  const name = checkName(f.at('name'), citing('4.1.2.1.1', () => f.str('name')), 'network name');
  const nsRaw = citing('4.1.2.1.2', () => f.optStr('namespace')) ?? '';
  const namespace = nsRaw === '' ? defaultNs : checkName(f.at('namespace'), nsRaw, 'namespace');
  const el: NetworkSelectionElement = { name, namespace };

  const iface = f.optStr('interface') ?? '';
  const legacyIface = f.optStr('interfaceRequest') ?? '';
  // Multus: `interface` wins; `interfaceRequest` (pre-3.2) is used only when it is empty.
  if (iface !== '') el.interface = checkIfname(f.at('interface'), iface);
  else if (legacyIface !== '') el.interface = checkIfname(f.at('interfaceRequest'), legacyIface);

  const ips = citing('4.1.2.1.3', () => f.optArr('ips'));
  if (ips !== undefined) {
    if (ips.length === 0) invalid(f.at('ips'), 'must list at least one address', '4.1.2.1.3');
    el.ips = ips.map((v, i) => ipEntry(`${f.at('ips')}[${i}]`, v, true, '4.1.2.1.3'));
  }
  const mac = citing('4.1.2.1.4', () => f.optStr('mac'));
  if (mac !== undefined) {
    // §4.1.2.1.4: a 6-byte Ethernet MAC or a 20-byte IP-over-InfiniBand hardware address.
    const m = normalizeHwAddr(mac, [6, 20]);
    if (m === undefined) invalid(f.at('mac'), `${JSON.stringify(mac)} is not a 6-byte MAC (such as 02:23:45:67:89:01) or 20-byte IPoIB address`, '4.1.2.1.4');
    el.mac = m;
  }
  const cniArgs = citing('4.1.2.1.6', () => f.optObj('cni-args'));
  if (cniArgs) el.cniArgs = cniArgs.obj;
  const ports = citing('4.1.2.1.7', () => f.optArr('portMappings'));
  if (ports !== undefined) {
    if (ports.length === 0) invalid(f.at('portMappings'), 'must list at least one port mapping', '4.1.2.1.7');
    el.portMappings = ports.map((v, i) => portMapping(v, `${f.at('portMappings')}[${i}]`));
  }
  const bw = citing('4.1.2.1.8', () => f.optObj('bandwidth'));
  if (bw) el.bandwidth = bandwidth(bw);
  const routes = citing('4.1.2.1.9', () => f.optArr('default-route'));
  // An empty list is allowed (§4.1.2.1.9): the element still claims the default route.
  if (routes !== undefined) el.defaultRoute = routes.map((v, i) => ipEntry(`${f.at('default-route')}[${i}]`, v, false, '4.1.2.1.9'));
  const guid = citing('4.1.2.1.10', () => f.optStr('infiniband-guid'));
  if (guid !== undefined) {
    const g = normalizeHwAddr(guid, [8]);
    if (g === undefined) invalid(f.at('infiniband-guid'), `${JSON.stringify(guid)} is not an 8-byte GUID (such as 00:11:22:33:44:55:66:77)`, '4.1.2.1.10');
    el.infinibandGuid = g;
  }
  const claim = citing('4.1.2.1.11', () => f.optStr('ipam-claim-reference'));
  if (claim !== undefined) {
    if (claim === '') invalid(f.at('ipam-claim-reference'), 'must not be empty', '4.1.2.1.11');
    if (el.ips) invalid(f.at('ipam-claim-reference'), 'cannot be used together with ips', '4.1.2.1.11');
    el.ipamClaimReference = claim;
  }
  const deviceID = f.optStr('deviceID');
  if (deviceID !== undefined && deviceID !== '') el.deviceID = deviceID;
  return el;
}

/** One comma-form reference: "name", "ns/name" or Multus's "ns/name@ifname". */
function textElement(item: string, at: string, defaultNs: string): NetworkSelectionElement {
  if (item === '') invalid(at, 'empty network reference (stray comma?)', '4.1.1');
  const slash = item.split('/');
  if (slash.length > 2) invalid(at, `${JSON.stringify(item)} has more than one "/"; want [namespace/]name[@interface]`, '4.1.1');
  const at_ = (slash[slash.length - 1] as string).split('@');
  if (at_.length > 2) invalid(at, `${JSON.stringify(item)} has more than one "@"; want [namespace/]name[@interface]`, '4.1.1');
  const el: NetworkSelectionElement = {
    name: checkName(`${at}.name`, (at_[0] as string).trim(), 'network name'),
    namespace: slash.length === 2 ? checkName(`${at}.namespace`, (slash[0] as string).trim(), 'namespace') : defaultNs,
  };
  if (at_.length === 2) el.interface = checkIfname(`${at}.interface`, (at_[1] as string).trim());
  return el;
}

/** Parses either format; `annotation` names the source in errors. */
function parseElements(value: string, defaultNs: string, annotation: string): NetworkSelectionElement[] {
  if (value.trim() === '') return [];
  // Detected as Multus and the NAD client do: any "[", "{" or '"' means the JSON form.
  if (!/[[{"]/.test(value)) {
    return value.split(',').map((item, i) => textElement(item.trim(), `${annotation}[${i}]`, defaultNs));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    invalid(annotation, `invalid JSON: ${(err as Error).message}`, '4.1.2');
  }
  // Multus unmarshals into a list, so a bare object fails there too; say how to fix it.
  if (isObject(parsed)) invalid(annotation, 'must be a JSON list of network selections; wrap the object in [ ]', '4.1.2');
  if (!Array.isArray(parsed)) invalid(annotation, `must be a JSON list of network selections, got ${describe(parsed)}`, '4.1.2');
  return parsed.map((v: unknown, i) => {
    const at = `${annotation}[${i}]`;
    if (!isObject(v)) invalid(at, `must be an object with at least "name", got ${describe(v)}`, '4.1.2');
    return jsonElement(v, at, defaultNs);
  });
}

/**
 * k8s.v1.cni.cncf.io/networks → the selected attachments, in order. Empty or blank = none.
 * A namespace left out (or "") is the pod's. Errors are code 7 naming element and field.
 */
export function parseNetworkSelection(value: string, podNamespace: string): NetworkSelectionElement[] {
  const elements = parseElements(value, podNamespace, NETWORKS_ANNOTATION);
  const ifnames = new Map<string, number>();
  let routeOwner = -1;
  elements.forEach((el, i) => {
    const at = `${NETWORKS_ANNOTATION}[${i}]`;
    if (el.interface !== undefined) {
      const first = ifnames.get(el.interface);
      if (first !== undefined) invalid(`${at}.interface`, `${JSON.stringify(el.interface)} is already requested by element ${first}`, '4.1.2.1.5');
      ifnames.set(el.interface, i);
    }
    if (el.defaultRoute !== undefined) {
      if (routeOwner >= 0) invalid(`${at}.default-route`, `only one element may set default-route, element ${routeOwner} already does`, '4.1.2.1.9');
      routeOwner = i;
    }
  });
  return elements;
}

/**
 * v1.multus-cni.io/default-network → the NAD replacing the cluster network. One reference in
 * either format; its namespace defaults to multusNamespace (where Multus looks too).
 */
export function parseDefaultNetwork(value: string, multusNamespace: string): NetworkSelectionElement {
  const elements = parseElements(value, multusNamespace, DEFAULT_NETWORK_ANNOTATION);
  if (elements.length !== 1) {
    invalid(DEFAULT_NETWORK_ANNOTATION, `must name exactly one network, got ${elements.length}`);
  }
  return elements[0] as NetworkSelectionElement;
}
