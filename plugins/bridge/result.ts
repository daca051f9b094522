// What the bridge plugin makes of IPAM's result before it configures anything: gateways, the
// default route, DNS and duplicate routes, as the reference's cmdAdd decides them. Pure: the
// result in, the result (and the bridge's gateway addresses) out.
import type { CniDNS, CniRoute, Result } from '../../src/cni/types';
import { formatIp, networkOf, parsePrefix } from '../../src/netns/ipaddr';
import type { BridgeConf } from './bridge';

export const familyOf = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);
const DEFAULT_DST = { 4: '0.0.0.0/0', 6: '::/0' } as const;

/** The first address of the subnet (the reference's calcGatewayIP). */
function firstHost(cidr: string): string {
  const net = networkOf(parsePrefix(cidr));
  for (let i = net.length - 1; i >= 0; i--) {
    net[i] = (net[i]! + 1) & 0xff;
    if (net[i] !== 0) break;
  }
  return formatIp(net);
}

/**
 * Fills in gateways (when isGateway and IPAM gave none) and the default route per family (when
 * isDefaultGateway and IPAM gave none with a gateway). Returns the gateway addresses, with the
 * pod's prefix length, that go on the bridge.
 */
export function calcGateways(result: Result, c: Pick<BridgeConf, 'isGateway' | 'isDefaultGateway'>): string[] {
  const gateways: string[] = [];
  const haveDefault = new Set<number>();
  result.routes ??= [];
  for (const ip of result.ips ?? []) {
    const fam = familyOf(ip.address);
    ip.interface = 2;
    if (!ip.gateway && c.isGateway) ip.gateway = firstHost(ip.address);
    if (c.isDefaultGateway && !haveDefault.has(fam)) {
      if (!result.routes.some((r) => r.gw && r.dst === DEFAULT_DST[fam])) result.routes.push({ dst: DEFAULT_DST[fam], gw: ip.gateway });
      haveDefault.add(fam);
    }
    if (c.isGateway && ip.gateway) gateways.push(`${ip.gateway}/${parsePrefix(ip.address).prefixLen}`);
  }
  if (result.routes.length === 0) delete result.routes;
  return gateways;
}

/** DNS from the config replaces IPAM's when any of it is set (the reference's dnsConfSet). */
export function dnsSet(d: CniDNS | undefined): d is CniDNS {
  return d !== undefined && (d.nameservers !== undefined || d.search !== undefined || d.options !== undefined || (d.domain ?? '') !== '');
}

/** Routes as configureInterface should add them: the reference skips a route that already exists. */
export function withoutDuplicateRoutes(result: Result): Result {
  const seen = new Set<string>();
  const routes: CniRoute[] = [];
  for (const r of result.routes ?? []) {
    const key = `${r.dst}|${r.table ?? ''}|${r.priority ?? ''}`;
    if (!seen.has(key)) routes.push(r);
    seen.add(key);
  }
  return { ...result, routes };
}
