// Configuring a container interface from an IPAM result (the reference's ipam.ConfigureIface),
// then announcing its addresses at once (gratuitous ARP / unsolicited NA) so switches and
// neighbours learn a moved address immediately, the lesson of MetalLB's L2 failover.
import { CniError, Code } from '../../src/cni/errors';
import type { Result } from '../../src/cni/types';
import { Fields, type JsonObject } from '../../src/cni/validate';
import { addAddr, addRoute, addRule, announceAddress, linkByIndex, setUp, writeSysctl, sysctlKey, type Netns } from '../../src/netns';

/** Opt-in source policy routing: the interface's routes in their own table, plus rules sending
 * traffic from its addresses (and arriving on it) there, so replies leave where requests came in. */
export interface PolicyRouting {
  table: number;
  priority: number;
}

export function parsePolicyRouting(raw: JsonObject): PolicyRouting | undefined {
  const v = raw.policyRouting;
  if (v === undefined || v === null || v === false) return undefined;
  if (v === true) return { table: 100, priority: 1000 };
  const f = new Fields(new Fields(raw, '').obj_('policyRouting').obj, 'policyRouting');
  return { table: f.optInt('table', 1, 0xfffffffe) ?? 100, priority: f.optInt('priority', 1, 32765) ?? 1000 };
}

function family(cidr: string): 4 | 6 {
  return cidr.includes(':') ? 6 : 4;
}

function hostPrefix(cidr: string): string {
  const ip = cidr.split('/')[0]!;
  return `${ip}/${family(ip) === 4 ? 32 : 128}`;
}

export interface ConfigureOptions {
  /** Index into result.interfaces of the interface being configured. */
  resultIndex: number;
  policy?: PolicyRouting;
  /** Keep IPv6 duplicate address detection (bridge `enabledad`); otherwise addresses are nodad. */
  dad?: boolean;
  announce?: boolean;
}

export function configureInterface(ns: Netns, ifindex: number, result: Result, o: ConfigureOptions): void {
  const link = linkByIndex(ns, ifindex);
  if (!link) throw new CniError(Code.Internal, `interface #${ifindex} vanished before it could be configured`);
  const ips = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === o.resultIndex);
  // The kernel announces on link-up too (arp_notify / ndisc_notify), as the reference plugins set.
  writeSysctl(ns, sysctlKey('net', 'ipv4', 'conf', link.name, 'arp_notify'), 1);
  if (ips.some((ip) => family(ip.address) === 6)) writeSysctl(ns, sysctlKey('net', 'ipv6', 'conf', link.name, 'ndisc_notify'), 1);
  for (const ip of ips) addAddr(ns, ifindex, ip.address, { nodad: !o.dad && family(ip.address) === 6 });
  setUp(ns, ifindex);

  const gateway = (fam: 4 | 6) => ips.find((ip) => family(ip.address) === fam && ip.gateway)?.gateway;
  const table = o.policy?.table;
  if (o.policy) {
    // The connected routes live in main; the policy table needs them too to reach the gateway.
    for (const ip of ips) addRoute(ns, { dst: ip.address, oif: ifindex, table, scope: 253, src: ip.address.split('/')[0] });
  }
  for (const r of result.routes ?? []) {
    const gw = r.gw ?? gateway(family(r.dst));
    addRoute(ns, { dst: r.dst, gateway: gw, oif: ifindex, table: r.table ?? table, priority: r.priority, mtu: r.mtu, advmss: r.advmss, scope: r.scope });
  }
  if (o.policy) {
    for (const ip of ips) addRule(ns, { family: family(ip.address), src: hostPrefix(ip.address), table: o.policy.table, priority: o.policy.priority });
    for (const fam of new Set(ips.map((ip) => family(ip.address)))) addRule(ns, { family: fam, iifName: link.name, table: o.policy.table, priority: o.policy.priority });
  }
  if (o.announce !== false && link.mac) {
    for (const ip of ips) announceAddress(ns, ifindex, link.mac, ip.address.split('/')[0]!);
  }
}
