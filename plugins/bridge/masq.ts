// Masquerading of pod addresses (`ipMasq`), whichever backend does it: masq-iptables.ts or
// masq-nftables.ts. This file picks the backend and runs each operation on it; DEL and GC also
// clean up the other one.
//
// The reference plugin names its rules so that DEL can find them, but then looks for them only
// with addresses read from the pod's interface: when the netns is already gone, its rules stay
// forever (features.md §4.1). Here an attachment's rules are found from who it is — network,
// container ID, interface name — recorded in comments, so DEL (netns gone or not), CHECK and GC
// need nothing from the pod. The reference's own rules are kept as they are, so a pod attached by
// the reference plugin is torn down by this one and the other way round.
import { CniError, Code } from '../../src/cni/errors';
import { type Attachment, type Family, findTool } from './firewall';
import { gcIptables, missingIptables, setupIptables, teardownIptables } from './masq-iptables';
import { gcNftMasq, missingNftMasq, nftMasqComment, setupNftMasq, teardownNftMasq } from './masq-nftables';

export type MasqBackend = 'iptables' | 'nftables';

/** The backend to set rules up with: the configured one, else iptables when the host has it. */
export function masqBackend(configured: MasqBackend | undefined): MasqBackend {
  if (configured) return configured;
  // The reference prefers iptables unless only nftables is usable; presence of the tool is the
  // test here (running it to probe costs a process start on every ADD).
  if (findTool('iptables')) return 'iptables';
  if (findTool('nft')) return 'nftables';
  throw new CniError(Code.Internal, 'ipMasq: neither iptables nor nft is installed');
}

export async function setupMasq(backend: MasqBackend, a: Attachment, cidrs: string[]): Promise<void> {
  if (cidrs.length === 0) return;
  if (backend === 'iptables') await setupIptables(a, cidrs);
  else await setupNftMasq(a, cidrs);
}

/**
 * Runs a step for each backend, the one in use first. Only its failure counts: the other backend
 * is cleaned up in passing (a pod may have been attached with it, by another configuration or
 * plugin version), and may well not work on this host (nft installed, nf_tables missing).
 */
async function bothBackends(primary: MasqBackend, steps: Record<MasqBackend, () => Promise<void>>): Promise<void> {
  await steps[primary]();
  await steps[primary === 'iptables' ? 'nftables' : 'iptables']().catch(() => undefined);
}

/**
 * Removes the attachment's masquerading. `knownIps` only helps to find rules the reference made;
 * `families` limits the iptables work to what can have been used.
 */
export async function teardownMasq(primary: MasqBackend, a: Attachment, knownIps: readonly string[], families: readonly Family[] = [4, 6]): Promise<void> {
  await bothBackends(primary, { iptables: () => teardownIptables(a, knownIps, families), nftables: () => teardownNftMasq(a) });
}

/** Addresses of cidrs whose masquerading is missing (CHECK). */
export async function missingMasq(backend: MasqBackend, a: Attachment, cidrs: string[]): Promise<string[]> {
  if (backend === 'iptables') return missingIptables(a, cidrs);
  return missingNftMasq(a, cidrs);
}

/** Removes the masquerading of every attachment of `network` that is not in `valid`. */
export async function gcMasq(primary: MasqBackend, network: string, valid: readonly Pick<Attachment, 'containerId' | 'ifname'>[]): Promise<void> {
  const keys = new Set(valid.map((v) => `${v.containerId}\u0000${v.ifname}`));
  const isValid = (a: Attachment): boolean => keys.has(`${a.containerId}\u0000${a.ifname}`);
  const containers = new Set(valid.map((v) => v.containerId));
  const comments = new Set(valid.map((v) => nftMasqComment({ network, ...v })));
  await bothBackends(primary, { iptables: () => gcIptables(network, isValid, (id) => containers.has(id)), nftables: () => gcNftMasq(network, comments) });
}
