// k8s.v1.cni.cncf.io/network-status entries (NPWG §5) from a delegate's final result, written the
// way the NAD client (CreateNetworkStatus, SetNetworkStatus) writes them where that is compatible
// with the spec, because tools reading Multus's annotation parse exactly that shape.
import { addressOf, isDefaultDst, parseCidr, parseIP } from '../cni/addr';
import type { CniDNS, NetworkStatus, Result } from '../cni/types';
import type { JsonObject } from '../cni/validate';

export interface StatusInput {
  /** "ns/name" for a NAD (see nadStatusName); the cluster network's name as configured. */
  name: string;
  /** True only for the cluster-wide default network (§5.2). */
  isDefault: boolean;
  /** The attachment's final result, 1.x shape; absent when the delegate returned none. */
  result?: Result;
  /** The attachment's device-info file content (Device Information Spec §6.1.1). */
  deviceInfo?: JsonObject;
}

/** §5.3.1: names should carry the namespace. */
export function nadStatusName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function dnsOf(dns: CniDNS | undefined): CniDNS | undefined {
  if (!dns) return undefined;
  const out: CniDNS = {};
  if (dns.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = [...dns.search];
  if (dns.options?.length) out.options = [...dns.options];
  return Object.keys(out).length ? out : undefined;
}

/**
 * Gateways of the result's default routes (0.0.0.0/0, ::/0). A default route without `gw` uses
 * the gateway of an address of the same family, which is what the reference plugins install
 * (ipam.ConfigureIface); with neither there is no gateway to report. The NAD client writes
 * "<nil>" in that case, which no reader can use.
 */
function defaultGateways(result: Result, preferred: readonly { address: string; gateway?: string }[]): string[] {
  const out: string[] = [];
  for (const route of result.routes ?? []) {
    const dst = parseCidr(route.dst);
    if (!dst || !isDefaultDst(dst)) continue;
    let gw = route.gw;
    if (!gw) {
      const sameFamily = (c: { address: string; gateway?: string }) =>
        c.gateway !== undefined && parseCidr(c.address)?.ip.family === dst.ip.family;
      gw = (preferred.find(sameFamily) ?? (result.ips ?? []).find(sameFamily))?.gateway;
    }
    if (gw && parseIP(gw)?.family === dst.ip.family && !out.includes(gw)) out.push(gw);
  }
  return out;
}

/**
 * One network-status entry. Interface, MAC and MTU come from the first interface with a sandbox
 * (§5.3.2.1; the NAD client takes the last one). IPs are those whose `interface` points at it; when
 * none do (or there is no sandbox interface), those without an index (§5.3.3.1).
 *
 * IPs are written WITHOUT prefix length, as Multus and the NAD client write them: the spec's
 * example shows CIDRs, but the tools that read this annotation today (kubectl plugins, KubeVirt,
 * OVN-K, the NAD client's own GetNetworkStatus users) parse plain addresses.
 */
export function networkStatusEntry(input: StatusInput): NetworkStatus {
  const entry: NetworkStatus = { name: input.name, default: input.isDefault };
  const r = input.result;
  if (r) {
    const idx = (r.interfaces ?? []).findIndex((i) => i.sandbox);
    const iface = idx >= 0 ? r.interfaces?.[idx] : undefined;
    if (iface) entry.interface = iface.name;
    const ipsAll = r.ips ?? [];
    let chosen = idx >= 0 ? ipsAll.filter((c) => c.interface === idx) : [];
    if (chosen.length === 0) chosen = ipsAll.filter((c) => c.interface === undefined);
    const ips = chosen.map((c) => addressOf(c.address)).filter((a): a is string => a !== undefined);
    if (ips.length) entry.ips = ips;
    // §5.3.4: mac only together with interface.
    if (iface?.mac) entry.mac = iface.mac;
    if (iface?.mtu) entry.mtu = iface.mtu;
    const dns = dnsOf(r.dns);
    if (dns) entry.dns = dns;
    const gws = defaultGateways(r, chosen);
    if (gws.length) {
      entry.gateway = gws;
      entry['default-route'] = [...gws];
    }
  }
  if (input.deviceInfo) entry['device-info'] = input.deviceInfo;
  return ordered(entry);
}

/** Keys in the NAD client's order, then the spec's default-route: diffs and readers stay stable. */
function ordered(e: NetworkStatus): NetworkStatus {
  // JSON.stringify follows insertion order, so the literal's order is the output's.
  const d = e.dns;
  return {
    name: e.name,
    ...(e.interface !== undefined ? { interface: e.interface } : {}),
    ...(e.ips !== undefined ? { ips: [...e.ips] } : {}),
    ...(e.mac !== undefined ? { mac: e.mac } : {}),
    ...(e.mtu !== undefined ? { mtu: e.mtu } : {}),
    default: e.default,
    ...(d !== undefined
      ? {
          dns: {
            ...(d.nameservers !== undefined ? { nameservers: [...d.nameservers] } : {}),
            ...(d.domain !== undefined ? { domain: d.domain } : {}),
            ...(d.search !== undefined ? { search: [...d.search] } : {}),
            ...(d.options !== undefined ? { options: [...d.options] } : {}),
          },
        }
      : {}),
    ...(e['device-info'] !== undefined ? { 'device-info': e['device-info'] } : {}),
    ...(e.gateway !== undefined ? { gateway: [...e.gateway] } : {}),
    ...(e['default-route'] !== undefined ? { 'default-route': [...e['default-route']] } : {}),
  };
}

/**
 * The annotation value: a JSON list, each entry indented like the NAD client's SetNetworkStatus
 * (json.MarshalIndent with four spaces, joined by ","), so it reads the same as Multus's.
 */
export function formatNetworkStatus(entries: readonly NetworkStatus[]): string {
  return `[${entries.map((e) => JSON.stringify(ordered(e), null, 4)).join(',')}]`;
}
