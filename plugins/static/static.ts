// Built-in static IPAM: the reference plugin (containernetworking/plugins v1.1.1,
// plugins/ipam/static/main.go) in behaviour and messages. Addresses come from ipam.addresses,
// CNI_ARGS IP= (appended; GATEWAY= sets the gateway of every address whose subnet holds it), and
// args.cni.ips then runtimeConfig.ips (each replacing what came before). Nothing is stored, so DEL
// and GC have nothing to do; CHECK compares the addresses with prevResult.
import { formatCidr, formatIP, parseCidr, parseIP, type Cidr, type IPAddr } from '../../src/cni/addr';
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { formatResult, parseResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniDNS, Result } from '../../src/cni/types';
import { Fields, isObject, parseObject, type Json } from '../../src/cni/validate';
import { atLeast, isSupported, LATEST_VERSION } from '../../src/cni/version';
import { cidrContains, ipEqual } from '../../src/ipam/ip';
import { loadGoArgs } from '../common/goargs';
import { canonical, parseRoutes } from '../host-local/config';
import type { CniRoute } from '../../src/cni/types';

const fail = (msg: string): never => {
  throw new CniError(Code.Internal, msg);
};

interface Address {
  /** the address with its host bits, and the prefix */
  cidr: Cidr;
  gateway?: IPAddr;
}

export interface StaticConf {
  cniVersion: string;
  addresses: Address[];
  routes: CniRoute[];
  dns: CniDNS;
  raw: { [k: string]: Json };
}

const cidrOr = (s: string, msg: string): Cidr => {
  const c = parseCidr(s);
  return c ? { ip: canonical(c.ip), prefix: c.prefix } : fail(msg);
};

function strList(v: Json | undefined, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(`${where}: must be a list of strings`);
  return v.map((x, i) => (typeof x === 'string' ? x : fail(`${where}[${i}]: must be a string`)));
}

function parseDns(f: Fields | undefined): CniDNS {
  if (!f) return {};
  const out: CniDNS = {};
  const ns = f.optStrList('nameservers');
  if (ns?.length) out.nameservers = ns;
  const domain = f.optStr('domain');
  if (domain) out.domain = domain;
  const search = f.optStrList('search');
  if (search?.length) out.search = search;
  const options = f.optStrList('options');
  if (options?.length) out.options = options;
  return out;
}

/** LoadIPAMConfig(stdin, CNI_ARGS). */
export function loadStaticConf(stdin: string, cniArgs: string): StaticConf {
  const raw = parseObject(stdin, 'network configuration', Code.DecodeFailure);
  const f = new Fields(raw, '', Code.Internal);
  if (raw.ipam === undefined || raw.ipam === null) fail("IPAM config missing 'ipam' key");
  const ipam = f.obj_('ipam');
  const configured = (ipam.optArr('addresses') ?? []).map((v, i): { str: string; gateway?: IPAddr } => {
    if (!isObject(v)) return fail(`ipam.addresses[${i}]: must be an object`);
    const a = new Fields(v, `ipam.addresses[${i}]`, Code.Internal);
    const gw = a.optStr('gateway');
    let gateway: IPAddr | undefined;
    if (gw !== undefined && gw !== '') gateway = parseIP(gw) ?? fail(`invalid IP address: ${gw}`);
    return { str: a.optStr('address') ?? '', gateway: gateway && canonical(gateway) };
  });
  const rc = f.optObj('runtimeConfig');
  const argsIps = strList(f.optObj('args')?.optObj('cni')?.obj.ips, 'args.cni.ips');
  const rcIps = strList(rc?.obj.ips, 'runtimeConfig.ips');

  let addresses: Address[] = [];
  const pending: { str: string; gateway?: IPAddr }[] = [...configured];
  let envIP = '';
  let envGW = '';
  loadGoArgs(cniArgs, { IP: (v) => (envIP = v), GATEWAY: (v) => (envGW = v) });
  const fromEnv: Address[] = [];
  if (envIP !== '') {
    for (const item of envIP.split(',')) {
      const s = item.trim();
      fromEnv.push({ cidr: cidrOr(s, `the 'ip' field is expected to be in CIDR notation, got: '${s}'`) });
    }
  }
  // configured addresses are parsed after CNI_ARGS, in the reference's order of errors
  if (envGW !== '') {
    for (const item of envGW.split(',')) {
      const gw = parseIP(item.trim()) ?? fail(`invalid gateway address: ${item}`);
      for (const a of fromEnv) if (cidrContains(a.cidr, canonical(gw))) a.gateway = canonical(gw);
    }
  }
  const replace = (list: string[]): Address[] =>
    list.map((s) => ({ cidr: cidrOr(s, `an entry in the 'ips' field is NOT in CIDR notation, got: '${s}'`) }));
  let replaced = false;
  if (argsIps.length > 0) {
    addresses = replace(argsIps);
    replaced = true;
  }
  if (rcIps.length > 0) {
    addresses = replace(rcIps);
    replaced = true;
  }
  if (!replaced) {
    addresses = [
      ...pending.map((p) => {
        const cidr = cidrOr(p.str, `the 'address' field is expected to be in CIDR notation, got: '${p.str}'`);
        return p.gateway ? { cidr, gateway: p.gateway } : { cidr };
      }),
      ...fromEnv,
    ];
  }
  const cniVersion = f.optStr('cniVersion') ?? '';
  const v4 = addresses.filter((a) => a.cidr.ip.family === 4).length;
  if ((v4 > 1 || addresses.length - v4 > 1) && !(isSupported(cniVersion) && atLeast(cniVersion, '0.3.0'))) {
    fail(`CNI version ${cniVersion} does not support more than 1 address per family`);
  }
  return { cniVersion, addresses, routes: parseRoutes(ipam), dns: parseDns(ipam.optObj('dns')), raw };
}

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  const conf = loadStaticConf(stdin, env.args);
  const result: Result = { cniVersion: LATEST_VERSION, dns: conf.dns };
  if (conf.addresses.length > 0) {
    result.ips = conf.addresses.map((a) => (a.gateway ? { address: formatCidr(a.cidr), gateway: formatIP(a.gateway) } : { address: formatCidr(a.cidr) }));
  }
  if (conf.routes.length > 0) result.routes = conf.routes;
  const out = formatResult(result, conf.cniVersion);
  out.dns ??= {};
  return JSON.stringify(out);
}

async function cmdCheck(env: CniEnv, stdin: string): Promise<void> {
  const conf = loadStaticConf(stdin, env.args);
  const prev = conf.raw.prevResult;
  if (prev === undefined || prev === null) fail('Required prevResult missing');
  const result = parseResult(prev, { what: 'prevResult', configVersion: conf.cniVersion });
  // As in the reference: an address that prevResult lacks is not an error; one it holds with
  // another gateway is.
  for (const a of conf.addresses) {
    for (const ip of result.ips ?? []) {
      const c = parseCidr(ip.address);
      if (!c || !ipEqual(canonical(c.ip), a.cidr.ip)) continue;
      if (!a.gateway) break;
      const gw = ip.gateway ? parseIP(ip.gateway) : undefined;
      if (gw && ipEqual(canonical(gw), a.gateway)) break;
      fail(`static: Failed to match addr ${formatIP(c.ip)} on interface ${env.ifname}`);
    }
  }
}

// The reference keeps no state: DEL succeeds without reading its input.
const nothing = async (): Promise<void> => undefined;

export const plugin: PluginHandlers = {
  add: cmdAdd,
  del: nothing,
  check: cmdCheck,
  status: async (env, stdin) => void loadStaticConf(stdin, env.args),
  gc: nothing,
};
