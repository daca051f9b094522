// The MAC spoof check (`macspoofchk`), in the layout of the reference's pkg/link/spoofcheck.go:
// in nftables' bridge family, frames entering the bridge from a pod's host veth pass only with
// the pod's MAC as source. The rules and chains are named by container ID and interface, so DEL
// finds them without the pod's namespace.
import { type Attachment, deleteRule, nftApply, nftList, type NftObject, type NftRule, payload } from './firewall';

const SPOOF_TABLE = { family: 'bridge', table: 'nat' };
const PREROUTING = 'PREROUTING';
const spoofRef = (a: Pick<Attachment, 'containerId' | 'ifname'>): string => `${a.containerId}-${a.ifname}`;
const spoofComment = (a: Pick<Attachment, 'containerId' | 'ifname'>): string => `macspoofchk-${spoofRef(a)}`;
const ifaceChain = (a: Pick<Attachment, 'containerId' | 'ifname'>): string => `cni-br-iface-${spoofRef(a)}`;

/** Lets frames from the host veth `hostIf` into the bridge only with source MAC `mac`. */
export async function setupSpoofCheck(a: Pick<Attachment, 'containerId' | 'ifname'>, hostIf: string, mac: string): Promise<void> {
  const iface = ifaceChain(a);
  const macChain = `${iface}-mac`;
  const comment = spoofComment(a);
  const chain = (name: string): NftObject => ({ ...SPOOF_TABLE, name });
  const rule = (c: string, expr: NftObject[]): NftObject => ({ add: { rule: { ...SPOOF_TABLE, chain: c, expr, comment } } });
  // One transaction: a chain added earlier in the same batch can be flushed, so no second round
  // trip is needed (the reference needs two).
  await nftApply(
    [
      { add: { table: { family: 'bridge', name: 'nat' } } },
      { add: { chain: { ...chain(PREROUTING), type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } } },
      { add: { chain: chain(iface) } },
      { add: { chain: chain(macChain) } },
      { flush: { chain: chain(iface) } },
      { flush: { chain: chain(macChain) } },
      rule(PREROUTING, [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: hostIf } }, { jump: { target: iface } }]),
      rule(iface, [{ jump: { target: macChain } }]),
      rule(macChain, [{ match: { op: '==', left: payload('ether', 'saddr'), right: mac } }, { return: null }]),
      rule(macChain, [{ drop: null }]),
    ],
    `set up the MAC spoof check on ${hostIf}`,
  );
}

function spoofTeardownCommands(rules: NftRule[], chains: Set<string>, a: Pick<Attachment, 'containerId' | 'ifname'>): NftObject[] {
  const iface = ifaceChain(a);
  const comment = spoofComment(a);
  const commands: NftObject[] = rules.filter((r) => r.chain === PREROUTING && r.comment === comment).map(deleteRule);
  // Flushed first: the iface chain's jump holds a reference on the mac chain.
  for (const name of [iface, `${iface}-mac`]) if (chains.has(name)) commands.push({ flush: { chain: { ...SPOOF_TABLE, name } } });
  for (const name of [iface, `${iface}-mac`]) if (chains.has(name)) commands.push({ delete: { chain: { ...SPOOF_TABLE, name } } });
  return commands;
}

/** Removes an attachment's spoof check by its container ID and interface name alone. */
export async function teardownSpoofCheck(a: Pick<Attachment, 'containerId' | 'ifname'>): Promise<void> {
  const { rules, chains } = await nftList(['table', 'bridge', 'nat']);
  await nftApply(spoofTeardownCommands(rules, chains, a), `remove the MAC spoof check of ${a.containerId}/${a.ifname}`);
}

/** Whether the spoof check of the attachment is in place for that host veth and MAC (CHECK). */
export async function spoofCheckPresent(a: Pick<Attachment, 'containerId' | 'ifname'>, hostIf: string, mac: string): Promise<boolean> {
  const { rules } = await nftList(['table', 'bridge', 'nat']);
  const comment = spoofComment(a);
  const text = (r: NftRule): string => JSON.stringify(r.expr ?? []);
  return (
    rules.some((r) => r.chain === PREROUTING && r.comment === comment && text(r).includes(JSON.stringify(hostIf))) &&
    rules.some((r) => r.chain === `${ifaceChain(a)}-mac` && text(r).includes(JSON.stringify(mac)))
  );
}

/** The interface a `iifname == "x"` rule matches, as nft -j prints it. */
function iifnameOf(r: NftRule): string | null {
  for (const e of r.expr ?? []) {
    const m = (e as { match?: { left?: { meta?: { key?: string } }; right?: unknown } }).match;
    if (m?.left?.meta?.key === 'iifname' && typeof m.right === 'string') return m.right;
  }
  return null;
}

/**
 * Removes spoof checks whose host veth no longer exists. Spoof rules carry no network name, so
 * the runtime's valid-attachments list (per network) cannot tell them apart; a rule for an
 * interface that is gone, however, is stale for every network.
 */
export async function gcSpoofChecks(hostLinkExists: (name: string) => boolean): Promise<void> {
  const { rules, chains } = await nftList(['table', 'bridge', 'nat']);
  const commands: NftObject[] = [];
  for (const r of rules) {
    if (r.chain !== PREROUTING || !r.comment?.startsWith('macspoofchk-')) continue;
    const hostIf = iifnameOf(r);
    if (hostIf === null || hostLinkExists(hostIf)) continue;
    const ref = r.comment.slice('macspoofchk-'.length);
    commands.push(deleteRule(r));
    for (const name of [`cni-br-iface-${ref}`, `cni-br-iface-${ref}-mac`]) if (chains.has(name)) commands.push({ flush: { chain: { ...SPOOF_TABLE, name } } });
    for (const name of [`cni-br-iface-${ref}`, `cni-br-iface-${ref}-mac`]) if (chains.has(name)) commands.push({ delete: { chain: { ...SPOOF_TABLE, name } } });
  }
  await nftApply(commands, 'garbage-collect MAC spoof checks');
}
