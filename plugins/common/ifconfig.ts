// Configuring a container interface from an IPAM result (the reference's ipam.ConfigureIface),
// then announcing its addresses at once (gratuitous ARP / unsolicited NA) so switches and
// neighbours learn a moved address immediately, the lesson of MetalLB's L2 failover.
import { CniError, Code } from '../../src/cni/errors';
import type { Result } from '../../src/cni/types';
import { Fields, type JsonObject } from '../../src/cni/validate';
import { addAddr, addRoute, addRule, announceAddresses, delRule, hasCode, linkByIndex, listRoutes, listRules, readSysctl, setUp, writeSysctl, sysctlKey, type Netns } from '../../src/netns';

/** Opt-in source policy routing: the interface's routes in their own table, plus rules sending
 * traffic from its addresses (and arriving on it) there, so replies leave where requests came in. */
export interface PolicyRouting {
  table: number;
  priority: number;
  /**
   * The table was not given: configureInterface takes the first one from `table` up that no rule
   * or route of the namespace uses (as the sbr plugin does), so two attachments of one pod never
   * share a table. Its rules name the interface (`iif`), which is how DEL and CHECK find it again.
   */
  auto?: boolean;
}

export function parsePolicyRouting(raw: JsonObject): PolicyRouting | undefined {
  const v = raw.policyRouting;
  if (v === undefined || v === null || v === false) return undefined;
  if (v === true) return { table: 100, priority: 1000, auto: true };
  const f = new Fields(new Fields(raw, '').obj_('policyRouting').obj, 'policyRouting');
  const table = f.optInt('table', 1, 0xfffffffe);
  return { table: table ?? 100, priority: f.optInt('priority', 1, 32765) ?? 1000, auto: table === undefined };
}

const RESERVED_TABLES = new Set([253, 254, 255]); // default, main, local

/** The first table from `from` up that no rule or route of the namespace mentions. */
function freeTable(ns: Netns, from: number): number {
  const used = new Set<number>();
  for (const fam of [4, 6] as const) {
    for (const r of listRules(ns, fam)) used.add(r.table);
    for (const r of listRoutes(ns, { family: fam })) used.add(r.table);
  }
  let t = from;
  while (used.has(t) || RESERVED_TABLES.has(t)) t++;
  return t;
}

/** The policy table ifname's rules point to (found by its `iif` rule at the policy's priority). */
export function policyTableOf(ns: Netns, ifname: string, policy: PolicyRouting): number | undefined {
  for (const fam of [4, 6] as const) {
    const r = listRules(ns, fam).find((x) => x.iifName === ifname && x.priority === policy.priority);
    if (r) return r.table;
  }
  return undefined;
}

/**
 * Removes the rules configureInterface added for ifname. Works when the link is already gone
 * (rules outlive their interface): the `iif` rule names the table. With the addresses known
 * (prevResult), exactly their `from` rules go, whatever became of the `iif` rule; without them,
 * every `from` rule of the table found (a table the user fixed may be shared, so the addresses
 * are the precise key). Routes in the table went with the link.
 */
export function removePolicyRouting(ns: Netns, ifname: string, policy: PolicyRouting, addresses?: readonly string[]): void {
  const ours = addresses && new Set(addresses.map(hostPrefix));
  for (const fam of [4, 6] as const) {
    const rules = listRules(ns, fam).filter((r) => r.priority === policy.priority);
    const tables = new Set(rules.filter((r) => r.iifName === ifname).map((r) => r.table));
    for (const r of rules) {
      const mine = r.iifName === ifname || (r.iifName === null && r.src !== null && (ours ? ours.has(r.src) : tables.has(r.table)));
      if (!mine) continue;
      try {
        delRule(ns, { family: fam, priority: r.priority, table: r.table, src: r.src ?? undefined, iifName: r.iifName ?? undefined });
      } catch (err) {
        if (!hasCode(err, 'ENOENT')) throw err;
      }
    }
  }
}

/**
 * IPv6 may be disabled in a fresh namespace (net.ipv6.conf.default.disable_ipv6=1 on some hosts):
 * enable it on lo and the interface before adding an IPv6 address, as the reference's
 * ipam.ConfigureIface does. A kernel without IPv6 has no such file: the address add then says so.
 */
function enableIpv6(ns: Netns, ifname: string): void {
  for (const name of ['lo', ifname]) {
    const key = sysctlKey('net', 'ipv6', 'conf', name, 'disable_ipv6');
    try {
      if (readSysctl(ns, key) !== '0') writeSysctl(ns, key, 0);
    } catch {
      // no IPv6 in this kernel: nothing to enable
    }
  }
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
  if (ips.some((ip) => family(ip.address) === 6)) {
    enableIpv6(ns, link.name);
    writeSysctl(ns, sysctlKey('net', 'ipv6', 'conf', link.name, 'ndisc_notify'), 1);
  }
  for (const ip of ips) addAddr(ns, ifindex, ip.address, { nodad: !o.dad && family(ip.address) === 6 });
  setUp(ns, ifindex);

  const gateway = (fam: 4 | 6) => ips.find((ip) => family(ip.address) === fam && ip.gateway)?.gateway;
  const policy = o.policy?.auto ? { ...o.policy, table: freeTable(ns, o.policy.table) } : o.policy;
  const table = policy?.table;
  if (policy) {
    // The connected routes live in main; the policy table needs them too to reach the gateway.
    for (const ip of ips) addRoute(ns, { dst: ip.address, oif: ifindex, table, scope: 253, src: ip.address.split('/')[0] });
  }
  for (const r of result.routes ?? []) {
    const gw = r.gw ?? gateway(family(r.dst));
    try {
      addRoute(ns, { dst: r.dst, gateway: gw, oif: ifindex, table: r.table ?? table, priority: r.priority, mtu: r.mtu, advmss: r.advmss, scope: r.scope });
    } catch (err) {
      // The reference's ipam.ConfigureIface skips a route that exists ("the first one wins"): a
      // second network from the same DHCP server hands out the same default route.
      if (!hasCode(err, 'EEXIST')) throw err;
    }
  }
  if (policy) {
    for (const ip of ips) addRule(ns, { family: family(ip.address), src: hostPrefix(ip.address), table: policy.table, priority: policy.priority });
    for (const fam of new Set(ips.map((ip) => family(ip.address)))) addRule(ns, { family: fam, iifName: link.name, table: policy.table, priority: policy.priority });
  }
  if (o.announce !== false && link.mac) {
    announceAddresses(ns, ifindex, link.mac, ips.map((ip) => ip.address.split('/')[0]!));
  }
}
