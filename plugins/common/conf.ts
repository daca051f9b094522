// What every built-in plugin's config shares (the CNI "well-known" keys), parsed once, with the
// plugin's own keys left to its loadConf. Errors name the field, as the reference plugins do.
import { parseCniArgs, getArg } from '../../src/cni/args';
import { CniError, Code, type CniCode } from '../../src/cni/errors';
import { parseResult } from '../../src/cni/result';
import type { CniDNS, Result } from '../../src/cni/types';
import { Fields, parseObject, isObject, type JsonObject } from '../../src/cni/validate';

export interface NetConf {
  raw: JsonObject;
  f: Fields;
  cniVersion: string;
  name: string;
  type: string;
  ipamType?: string;
  dns?: CniDNS;
  prevResult?: Result;
  runtimeConfig: JsonObject;
  /** args.cni, where NPWG's cni-args and CONVENTIONS' args.cni.ips / mac arrive. */
  argsCni: JsonObject;
}

export function loadNetConf(stdin: string): NetConf {
  const raw = parseObject(stdin, 'network configuration', Code.DecodeFailure);
  const f = new Fields(raw, '');
  const ipam = f.optObj('ipam');
  const ipamType = ipam?.optStr('type');
  const dnsF = f.optObj('dns');
  const dns: CniDNS | undefined = dnsF
    ? { nameservers: dnsF.optStrList('nameservers'), domain: dnsF.optStr('domain'), search: dnsF.optStrList('search'), options: dnsF.optStrList('options') }
    : undefined;
  const cniVersion = f.nonEmpty('cniVersion');
  const prev = raw.prevResult;
  const args = f.optObj('args');
  const cni = args?.obj.cni;
  return {
    raw,
    f,
    cniVersion,
    name: f.nonEmpty('name'),
    type: f.nonEmpty('type'),
    ipamType: ipamType === '' ? undefined : ipamType,
    dns,
    prevResult: isObject(prev) ? parseResult(prev, { what: 'prevResult', configVersion: cniVersion }) : undefined,
    runtimeConfig: f.optObj('runtimeConfig')?.obj ?? {},
    argsCni: isObject(cni) ? cni : {},
  };
}

/**
 * A MAC from, in increasing precedence: conf `mac`, CNI_ARGS MAC=, args.cni.mac, runtimeConfig.mac.
 * `code` is the error code for a malformed one: plugins that mirror a reference plugin pass that
 * plugin's code (the reference macvlan and bridge report 999, skel's wrapping of a plain error).
 */
export function requestedMac(conf: NetConf, cniArgs: string, code: CniCode = Code.InvalidConfig): string | undefined {
  let mac = conf.f.optStr('mac');
  const fromArgs = getArg(parseCniArgs(cniArgs), 'MAC');
  if (fromArgs) mac = fromArgs;
  if (typeof conf.argsCni.mac === 'string') mac = conf.argsCni.mac;
  if (typeof conf.runtimeConfig.mac === 'string') mac = conf.runtimeConfig.mac;
  if (mac !== undefined && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) {
    throw new CniError(code, `mac: ${JSON.stringify(mac)} is not a MAC address`);
  }
  return mac?.toLowerCase();
}
