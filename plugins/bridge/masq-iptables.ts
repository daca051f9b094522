// The iptables backend of `ipMasq`: the reference's rules, unchanged (so its DEL still works on
// what this plugin made, and the other way round), in its chain CNI-<hash(network, container)>:
//   -A POSTROUTING -s <ip>/32 -m comment --comment "name: .. id: .." -j CNI-x
//   -A CNI-x -d <subnet> -m comment --comment "name: .. id: .." -j ACCEPT
//   -A CNI-x ! -d <multicast> -m comment --comment "name: .. id: .." -j MASQUERADE
// plus one marker per address, a rule without a target (matching it changes nothing):
//   -A CNI-x -s <ip>/32 -m comment --comment "name: .. id: .. if: eth1"
// which says whose address it is. DEL, CHECK and GC find an attachment's jumps through its
// markers, so no address from the (maybe gone) netns is needed.
import { formatIp, networkOf, parsePrefix } from '../../src/netns/ipaddr';
import { type Attachment, type Family, familyOf, findTool, mustRun, MULTICAST, sha512hex } from './firewall';

/** The reference's iptables chain, one per (network, container): CNI-<24 hex of sha512>. */
function masqChain(a: Attachment): string {
  return `CNI-${sha512hex(a.network + a.containerId).slice(0, 24)}`;
}

/** Go's %q for the names CNI allows (printable ASCII); JSON escapes the same characters. */
const goQuote = (s: string): string => JSON.stringify(s);

/** The reference's comment on every rule it makes: `name: "net" id: "cid"`. */
function referenceComment(a: Pick<Attachment, 'network' | 'containerId'>): string {
  return `name: ${goQuote(a.network)} id: ${goQuote(a.containerId)}`;
}

/**
 * The comment of the marker rule that records which attachment owns a source address in the
 * chain: the reference's plus the interface. The reference's own rules identify only (network,
 * container), so two attachments of one network in one pod share a chain and the first DEL
 * flushes the second's masquerading.
 */
function attachmentComment(a: Attachment): string {
  return `${referenceComment(a)} if: ${goQuote(a.ifname)}`;
}

const IPT: Record<Family, { list: string; restore: string }> = {
  4: { list: 'iptables', restore: 'iptables-restore' },
  6: { list: 'ip6tables', restore: 'ip6tables-restore' },
};

/** "10.1.2.3/24" -> "10.1.2.0/24", the subnet the reference leaves alone. */
function subnetOf(cidr: string): string {
  const p = parsePrefix(cidr);
  return `${formatIp(networkOf(p))}/${p.prefixLen}`;
}
/** "10.1.2.3/24" -> "10.1.2.3/32", as iptables prints a source address. */
const hostOf = (cidr: string): string => {
  const p = parsePrefix(cidr);
  return `${formatIp(p.bytes)}/${p.family === 4 ? 32 : 128}`;
};

/** Quotes an argument the way iptables-save prints it (and iptables-restore reads it). */
function iptQuote(s: string): string {
  return /^[A-Za-z0-9_./:!-]+$/.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/** Splits one `iptables -S` line into arguments, undoing iptables-save's quoting. */
function splitRule(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuotes = false;
  let have = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      have = true;
    } else if (c === '"') {
      inQuotes = !inQuotes;
      have = true;
    } else if (c === ' ' && !inQuotes) {
      if (have) out.push(cur);
      cur = '';
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push(cur);
  return out;
}

interface IptRule {
  /** The line as iptables printed it ("-A CHAIN ..."), valid iptables-restore input. */
  line: string;
  chain: string;
  source: string | null;
  target: string | null;
  comment: string | null;
}

function parseIptRule(line: string): IptRule | null {
  const a = splitRule(line);
  if (a[0] !== '-A' || a[1] === undefined) return null;
  const after = (flag: string): string | null => {
    const i = a.indexOf(flag);
    return i >= 0 && i + 1 < a.length ? a[i + 1]! : null;
  };
  return { line, chain: a[1], source: after('-s'), target: after('-j'), comment: after('--comment') };
}

interface NatTable {
  chains: Set<string>;
  rules: IptRule[];
}

async function readNat(family: Family): Promise<NatTable> {
  const out = await mustRun(IPT[family].list, ['-w', '-t', 'nat', '-S'], '', `list the ${IPT[family].list} nat table`);
  const chains = new Set<string>();
  const rules: IptRule[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('-N ')) chains.add(splitRule(line)[1] ?? '');
    const r = parseIptRule(line);
    if (r) rules.push(r);
  }
  return { chains, rules };
}

async function restoreNat(family: Family, lines: string[], what: string): Promise<void> {
  if (lines.length === 0) return;
  // --noflush: change only what the lines say; the whole file is one atomic commit.
  await mustRun(IPT[family].restore, ['-w', '--noflush'], ['*nat', ...lines, 'COMMIT', ''].join('\n'), what);
}

const markerLine = (chain: string, a: Attachment, cidr: string): string => `-A ${chain} -s ${hostOf(cidr)} -m comment --comment ${iptQuote(attachmentComment(a))}`;
const jumpLine = (chain: string, a: Attachment, cidr: string): string => `-A POSTROUTING -s ${hostOf(cidr)} -m comment --comment ${iptQuote(referenceComment(a))} -j ${chain}`;

export async function setupIptables(a: Attachment, cidrs: string[]): Promise<void> {
  const chain = masqChain(a);
  const ref = iptQuote(referenceComment(a));
  for (const family of [4, 6] as const) {
    const mine = cidrs.filter((c) => familyOf(c) === family);
    if (mine.length === 0) continue;
    const nat = await readNat(family);
    const have = new Set(nat.rules.map((r) => r.line));
    const lines: string[] = [];
    // The chain may be shared with another attachment of this network in this pod (the
    // reference's layout): add only what is missing, accepts first so they precede the masquerade.
    if (!nat.chains.has(chain)) lines.push(`:${chain} - [0:0]`);
    for (const subnet of new Set(mine.map(subnetOf))) {
      const accept = `-d ${subnet} -m comment --comment ${ref} -j ACCEPT`;
      if (!have.has(`-A ${chain} ${accept}`)) lines.push(`-I ${chain} 1 ${accept}`);
    }
    const masq = `-A ${chain} ! -d ${MULTICAST[family]} -m comment --comment ${ref} -j MASQUERADE`;
    if (!have.has(masq)) lines.push(masq);
    for (const cidr of mine) {
      for (const l of [markerLine(chain, a, cidr), jumpLine(chain, a, cidr)]) if (!have.has(l)) lines.push(l);
    }
    await restoreNat(family, lines, `set up masquerading for ${mine.join(', ')}`);
  }
}

/** Markers of the chain: source address -> owning attachment. */
function markers(nat: NatTable, chain: string): Map<string, Attachment> {
  const out = new Map<string, Attachment>();
  for (const r of nat.rules) {
    if (r.chain !== chain || r.target !== null || !r.source || !r.comment) continue;
    const owner = parseAttachmentComment(r.comment);
    if (owner) out.set(r.source, owner);
  }
  return out;
}

const sameAttachment = (x: Attachment, y: Attachment): boolean => x.network === y.network && x.containerId === y.containerId && x.ifname === y.ifname;

/**
 * Removes the attachment's jumps and markers, and the chain once no jump uses it. Its addresses
 * come from its markers; `knownIps` (prevResult, the pod interface) adds those of rules the
 * reference made, which have no markers. Knowing nothing at all, the jumps no other interface
 * claims are taken: for the one attachment per network and pod of the usual case, exactly its own.
 */
export async function teardownIptables(a: Attachment, knownIps: readonly string[], families: readonly Family[]): Promise<void> {
  const chain = masqChain(a);
  for (const family of families) {
    if (!findTool(IPT[family].list)) continue; // no iptables: nothing can have been made with it
    const nat = await readNat(family);
    const owners = markers(nat, chain);
    const mine = new Set(knownIps.filter((c) => familyOf(c) === family).map(hostOf));
    for (const [src, owner] of owners) if (sameAttachment(owner, a)) mine.add(src);
    const jumps = nat.rules.filter((r) => r.chain === 'POSTROUTING' && r.target === chain);
    const claimedByOthers = (src: string | null): boolean => src !== null && owners.has(src) && !sameAttachment(owners.get(src)!, a);
    const gone = jumps.filter((r) => (r.source !== null && mine.has(r.source)) || (mine.size === 0 && !claimedByOthers(r.source)));
    const goneMarkers = nat.rules.filter((r) => r.chain === chain && r.target === null && r.source !== null && owners.has(r.source) && sameAttachment(owners.get(r.source)!, a));
    const lines = [...gone, ...goneMarkers].map((r) => r.line.replace(/^-A /, '-D '));
    if (jumps.length === gone.length && nat.chains.has(chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
    await restoreNat(family, lines, `remove masquerading of ${a.containerId}/${a.ifname}`);
  }
}

/** Addresses among cidrs whose jump or masquerade rule is missing (CHECK). */
export async function missingIptables(a: Attachment, cidrs: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  const chain = masqChain(a);
  for (const family of [4, 6] as const) {
    const mine = cidrs.filter((c) => familyOf(c) === family);
    if (mine.length === 0) continue;
    const nat = await readNat(family);
    const masq = nat.rules.some((r) => r.chain === chain && r.target === 'MASQUERADE');
    for (const cidr of mine) {
      if (!masq || !nat.rules.some((r) => r.chain === 'POSTROUTING' && r.target === chain && r.source === hostOf(cidr))) missing.push(cidr);
    }
  }
  return missing;
}

/** Parses the attachment comments this plugin writes; null for anything else. */
function parseAttachmentComment(c: string): Attachment | null {
  const m = /^name: ("(?:[^"\\]|\\.)*") id: ("(?:[^"\\]|\\.)*")(?: if: ("(?:[^"\\]|\\.)*"))?$/.exec(c);
  if (!m) return null;
  try {
    return { network: JSON.parse(m[1]!) as string, containerId: JSON.parse(m[2]!) as string, ifname: m[3] ? (JSON.parse(m[3]) as string) : '' };
  } catch {
    return null;
  }
}

/**
 * Removes the masquerading of attachments of `network` that are not valid. An attachment is named
 * by its marker; a jump without one (made by the reference) is stale when its container has no
 * valid attachment at all.
 */
export async function gcIptables(network: string, valid: (a: Attachment) => boolean, validContainer: (id: string) => boolean): Promise<void> {
  for (const family of [4, 6] as const) {
    if (!findTool(IPT[family].list)) continue;
    const nat = await readNat(family);
    const stale = new Map<string, { a: Attachment; ips: string[] }>();
    for (const r of nat.rules) {
      const ref = r.chain === 'POSTROUTING' && r.comment ? parseAttachmentComment(r.comment) : null;
      if (!ref || ref.ifname !== '' || ref.network !== network || r.target !== masqChain(ref) || !r.source) continue;
      const owner = markers(nat, r.target).get(r.source);
      const a = owner ?? ref;
      if (owner ? valid(owner) : validContainer(ref.containerId)) continue;
      const key = JSON.stringify(a);
      const entry = stale.get(key) ?? { a, ips: [] };
      entry.ips.push(r.source);
      stale.set(key, entry);
    }
    for (const { a, ips } of stale.values()) await teardownIptables(a, ips, [family]);
  }
}
