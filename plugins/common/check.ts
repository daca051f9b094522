// CHECK helpers, the reference's ip.ValidateExpectedInterfaceIPs / ValidateExpectedRoute: what
// prevResult says about the pod's interface must still be true in the pod's namespace. Failures are
// code 999 like the reference's (plain errors wrapped by skel).
import { canonicalCidr, canonicalIP, formatCidr, parseCidr } from '../../src/cni/addr';
import { CniError, Code } from '../../src/cni/errors';
import type { CniIPConfig, CniInterface, CniRoute, Result } from '../../src/cni/types';
import { listAddrs, listRoutes, type Link, type Netns } from '../../src/netns';
import { policyTableOf, type PolicyRouting } from './ifconfig';

const fail = (msg: string): never => {
  throw new CniError(Code.Internal, msg);
};

/** prevResult is required for CHECK (CNI spec); returns it with the pod interface's index. */
export function podInterface(prev: Result | undefined, ifname: string, netns: string): { prev: Result; index: number; intf: CniInterface } {
  if (!prev) return fail('Required prevResult missing');
  const index = (prev.interfaces ?? []).findIndex((i) => i.name === ifname && i.sandbox === netns);
  const intf = prev.interfaces?.[index];
  if (!intf) return fail(`Sandbox in prevResult doesn't match configured netns: no interface ${JSON.stringify(ifname)} with sandbox ${JSON.stringify(netns)}`);
  return { prev, index, intf };
}

/** The link is there, its MAC is prevResult's (when it gave one). */
export function checkLink(link: Link | null, intf: CniInterface, kind: string): Link {
  if (!link) return fail(`Container Interface name in prevResult: ${intf.name} not found`);
  if (link.kind !== kind) fail(`Error: Container interface ${link.name} not of type ${kind}`);
  if (intf.mac && intf.mac.toLowerCase() !== link.mac) fail(`Interface ${intf.name} Mac ${intf.mac} doesn't match container Mac: ${link.mac ?? 'none'}`);
  return link;
}

/** Every address prevResult assigned to this interface is on it, with a route to its prefix. */
export function checkAddresses(ns: Netns, link: Link, ips: readonly CniIPConfig[] | undefined, index: number): void {
  const have = new Set(listAddrs(ns, { index: link.index }).map((a) => canonicalCidr(a.cidr)));
  const routes = listRoutes(ns, { oif: link.index });
  for (const ip of ips ?? []) {
    if (ip.interface !== undefined && ip.interface !== index) continue;
    const want = canonicalCidr(ip.address);
    if (!have.has(want)) fail(`Failed to match addr ${ip.address} on interface ${link.name}`);
    const prefix = prefixOf(ip.address);
    if (!routes.some((r) => canonicalCidr(r.dst) === prefix)) fail(`Error: ${link.name} has no route to ${prefix}`);
  }
}

/**
 * Every route prevResult lists is in the table it was put in: its own `table`, else `table`
 * (the policy-routing table), else main. A gateway, when given, must match.
 */
export function checkRoutes(ns: Netns, routes: readonly CniRoute[] | undefined, table = 254): void {
  for (const r of routes ?? []) {
    const dst = canonicalCidr(r.dst);
    const found = listRoutes(ns, { table: r.table ?? table }).some((k) => canonicalCidr(k.dst) === dst && (!r.gw || (k.gateway !== null && canonicalIP(k.gateway) === canonicalIP(r.gw))));
    if (!found) fail(`Expected Route ${JSON.stringify({ dst: r.dst, gw: r.gw })} not found in table ${r.table ?? table}`);
  }
}

/** "10.1.2.3/24" -> "10.1.2.0/24" (canonical), the prefix route's destination. */
function prefixOf(cidr: string): string {
  const c = parseCidr(cidr);
  if (!c) return cidr;
  const bytes = c.ip.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, c.prefix - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return formatCidr({ ip: { family: c.ip.family, bytes }, prefix: c.prefix });
}

/** prevResult's routes, looked for in the interface's own table when policyRouting is on. */
export function checkPolicyRoutes(ns: Netns, ifname: string, policy: PolicyRouting | undefined, prev: Result): void {
  const table = policy ? policyTableOf(ns, ifname, policy) : undefined;
  if (policy && table === undefined && prev.ips?.length) throw new CniError(Code.Internal, `policy routing rules for ${ifname} are missing`);
  checkRoutes(ns, prev.routes, table);
}
