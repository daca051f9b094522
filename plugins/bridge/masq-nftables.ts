// The nftables backend of `ipMasq`, in the layout of the reference's
// pkg/ip/ipmasq_nftables_linux.go: one table `cni_plugins_masquerade` whose postrouting hook skips
// multicast and goes to `masq_checks`, which holds one masquerade rule per pod address. Each rule's
// comment starts with a hash of the attachment, so DEL, CHECK and GC find rules by who made them.
import { formatIp, networkOf, parsePrefix } from '../../src/netns/ipaddr';
import { type Attachment, deleteRule, familyOf, MULTICAST, nftApply, nftList, type NftObject, type NftRule, payload, sha512hex } from './firewall';

const MASQ_TABLE = 'cni_plugins_masquerade';
const MASQ_CHAIN = 'masq_checks';
const NFT_COMMENT_MAX = 128;

const hash16 = (s: string): string => sha512hex(s).slice(0, 16);
const networkHash = (network: string): string => hash16(network);
const instanceHash = (a: Attachment): string => `${networkHash(a.network)}-${hash16(`${a.ifname}:${a.containerId}`)}`;

/** Starts with a hash of (network, ifname, container), so rules are found by prefix; nft strings hold no quotes. */
export function nftMasqComment(a: Attachment): string {
  const clean = (s: string): string => s.replace(/"/g, '');
  return `${instanceHash(a)}, net: ${clean(a.network)}, if: ${clean(a.ifname)}, id: ${clean(a.containerId)}`.slice(0, NFT_COMMENT_MAX);
}

const masqTable = { family: 'inet', table: MASQ_TABLE };

/** "10.1.2.3/24" -> the nft prefix 10.1.2.0/24. */
function prefixOf(cidr: string): NftObject {
  const p = parsePrefix(cidr);
  return { prefix: { addr: formatIp(networkOf(p)), len: p.prefixLen } };
}

export async function setupNftMasq(a: Attachment, cidrs: string[]): Promise<void> {
  const stale = (await nftList(['chain', 'inet', MASQ_TABLE, MASQ_CHAIN])).rules.filter((r) => r.comment?.startsWith(instanceHash(a)));
  const rule = (chain: string, expr: NftObject[], comment?: string): NftObject => ({ add: { rule: { ...masqTable, chain, expr, ...(comment ? { comment } : {}) } } });
  const commands: NftObject[] = [
    { add: { table: { family: 'inet', name: MASQ_TABLE } } },
    { add: { chain: { ...masqTable, name: MASQ_CHAIN } } },
    { add: { chain: { ...masqTable, name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } } },
    // Rewritten every time, so the hook chain always holds exactly these three rules.
    { flush: { chain: { ...masqTable, name: 'postrouting' } } },
    rule('postrouting', [{ match: { op: '==', left: payload('ip', 'daddr'), right: prefixOf(MULTICAST[4]) } }, { return: null }]),
    rule('postrouting', [{ match: { op: '==', left: payload('ip6', 'daddr'), right: prefixOf(MULTICAST[6]) } }, { return: null }]),
    rule('postrouting', [{ goto: { target: MASQ_CHAIN } }]),
    ...stale.map(deleteRule),
  ];
  for (const cidr of cidrs) {
    const proto = familyOf(cidr) === 4 ? 'ip' : 'ip6';
    const addr = formatIp(parsePrefix(cidr).bytes);
    commands.push(
      rule(
        MASQ_CHAIN,
        [{ match: { op: '==', left: payload(proto, 'saddr'), right: addr } }, { match: { op: '!=', left: payload(proto, 'daddr'), right: prefixOf(cidr) } }, { masquerade: null }],
        nftMasqComment(a),
      ),
    );
  }
  await nftApply(commands, `set up masquerading for ${cidrs.join(', ')}`);
}

async function nftMasqRules(): Promise<NftRule[]> {
  return (await nftList(['chain', 'inet', MASQ_TABLE, MASQ_CHAIN])).rules;
}

export async function teardownNftMasq(a: Attachment): Promise<void> {
  const rules = (await nftMasqRules()).filter((r) => r.comment?.startsWith(instanceHash(a)));
  await nftApply(rules.map(deleteRule), `remove masquerading of ${a.containerId}/${a.ifname}`);
}

export async function gcNftMasq(network: string, validComments: Set<string>): Promise<void> {
  const rules = (await nftMasqRules()).filter((r) => r.comment?.startsWith(`${networkHash(network)}-`) && !validComments.has(r.comment));
  await nftApply(rules.map(deleteRule), `garbage-collect masquerading of network ${network}`);
}

/** Addresses among cidrs whose masquerade rule is missing (CHECK). */
export async function missingNftMasq(a: Attachment, cidrs: string[]): Promise<string[]> {
  const rules = (await nftMasqRules()).filter((r) => r.comment === nftMasqComment(a));
  const sources = new Set(rules.map((r) => JSON.stringify(r.expr?.[0] ?? null)));
  return cidrs.filter((c) => {
    const proto = familyOf(c) === 4 ? 'ip' : 'ip6';
    return !sources.has(JSON.stringify({ match: { op: '==', left: payload(proto, 'saddr'), right: formatIp(parsePrefix(c).bytes) } }));
  });
}
