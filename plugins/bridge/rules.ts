// Host firewall rules of the bridge plugin: masquerading of pod addresses (`ipMasq`, with the
// iptables or nftables backend) and the MAC spoof check (`macspoofchk`, nftables bridge family).
//
// The reference plugin names its rules so that DEL can find them, but then looks for them only
// with addresses read from the pod's interface: when the netns is already gone, its rules stay
// forever (features.md §4.1). Here an attachment's rules are found from who it is — network,
// container ID, interface name — recorded in comments, so DEL (netns gone or not), CHECK and GC
// need nothing from the pod. The reference's own rules are kept as they are, so a pod attached by
// the reference plugin is torn down by this one and the other way round.
//
// The rules are written by exec'ing iptables-restore / nft (as the reference's go-iptables and
// go-nft do), each change in one atomic transaction.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CniError, Code } from '../../src/cni/errors';
import { formatIp, networkOf, parsePrefix } from '../../src/netns/ipaddr';

// ---- running the tools ------------------------------------------------------------------------

// Where the firewall tools live when PATH (the runtime's, inherited) does not say: kubelet and
// containerd have been seen with PATHs lacking the sbin directories.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/** Absolute path of a tool, or undefined when the host has none. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...SBIN_DIRS];
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

interface ToolOutput {
  status: number;
  stdout: string;
  stderr: string;
}

function runTool(bin: string, args: string[], input = ''): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    // LC_ALL=C: error texts are matched below ("No such file or directory").
    const child = spawn(bin, args, { env: { PATH: SBIN_DIRS.join(delimiter), LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

function toolError(what: string, out: ToolOutput): CniError {
  return new CniError(Code.Internal, `${what}: ${out.stderr.trim() || `exit status ${out.status}`}`);
}

async function mustRun(tool: string, args: string[], input: string, what: string): Promise<string> {
  const bin = findTool(tool);
  if (!bin) throw new CniError(Code.Internal, `${what}: ${tool} not found`);
  const out = await runTool(bin, args, input);
  if (out.status !== 0) throw toolError(what, out);
  return out.stdout;
}

// ---- identity of an attachment ----------------------------------------------------------------

export interface Attachment {
  /** The network's `name`. */
  network: string;
  containerId: string;
  ifname: string;
}

const sha512hex = (s: string): string => createHash('sha512').update(s).digest('hex');

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

// ---- iptables backend -------------------------------------------------------------------------
//
// The reference's rules, unchanged (so its DEL still works on what this plugin made, and the
// other way round), in its chain CNI-<hash(network, container)>:
//   -A POSTROUTING -s <ip>/32 -m comment --comment "name: .. id: .." -j CNI-x
//   -A CNI-x -d <subnet> -m comment --comment "name: .. id: .." -j ACCEPT
//   -A CNI-x ! -d <multicast> -m comment --comment "name: .. id: .." -j MASQUERADE
// plus one marker per address, a rule without a target (matching it changes nothing):
//   -A CNI-x -s <ip>/32 -m comment --comment "name: .. id: .. if: eth1"
// which says whose address it is. DEL, CHECK and GC find an attachment's jumps through its
// markers, so no address from the (maybe gone) netns is needed.

type Family = 4 | 6;
const familyOf = (cidr: string): Family => (cidr.includes(':') ? 6 : 4);
const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };
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

async function setupIptables(a: Attachment, cidrs: string[]): Promise<void> {
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
async function teardownIptables(a: Attachment, knownIps: readonly string[], families: readonly Family[]): Promise<void> {
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
async function missingIptables(a: Attachment, cidrs: readonly string[]): Promise<string[]> {
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
async function gcIptables(network: string, valid: (a: Attachment) => boolean, validContainer: (id: string) => boolean): Promise<void> {
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

// ---- nftables -------------------------------------------------------------------------------------

type NftObject = Record<string, unknown>;
interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr?: unknown[];
}

/** Rules and chains of one table (or of one chain); empty when it does not exist. */
async function nftList(what: string[]): Promise<{ rules: NftRule[]; chains: Set<string> }> {
  const bin = findTool('nft');
  if (!bin) return { rules: [], chains: new Set() };
  const out = await runTool(bin, ['-j', 'list', ...what]);
  if (out.status !== 0) {
    if (/No such file or directory/.test(out.stderr)) return { rules: [], chains: new Set() };
    throw toolError(`nft list ${what.join(' ')}`, out);
  }
  const doc = JSON.parse(out.stdout) as { nftables?: NftObject[] };
  const rules: NftRule[] = [];
  const chains = new Set<string>();
  for (const o of doc.nftables ?? []) {
    if (o.rule) rules.push(o.rule as NftRule);
    if (o.chain) chains.add((o.chain as { name: string }).name);
  }
  return { rules, chains };
}

// One argument may hold 128 KiB (MAX_ARG_STRLEN); stay well below.
const NFT_ARG_MAX = 64 * 1024;

/**
 * Applies commands as one nft transaction per batch (one batch unless a GC has hundreds). The
 * JSON goes in an argument: `nft -f -` opens /dev/stdin, which fails on the socket pairs Node
 * uses for a child's stdio (ENXIO).
 */
async function nftApply(commands: NftObject[], what: string): Promise<void> {
  let batch: NftObject[] = [];
  let size = 0;
  const flush = async (): Promise<void> => {
    if (batch.length) await mustRun('nft', ['-j', JSON.stringify({ nftables: batch })], '', what);
    batch = [];
    size = 0;
  };
  for (const c of commands) {
    const n = JSON.stringify(c).length + 1;
    if (size + n > NFT_ARG_MAX) await flush();
    batch.push(c);
    size += n;
  }
  await flush();
}

const deleteRule = (r: NftRule): NftObject => ({ delete: { rule: { family: r.family, table: r.table, chain: r.chain, handle: r.handle } } });

// ---- nftables masquerade backend (the layout of the reference's pkg/ip/ipmasq_nftables_linux.go)

const MASQ_TABLE = 'cni_plugins_masquerade';
const MASQ_CHAIN = 'masq_checks';
const NFT_COMMENT_MAX = 128;

const hash16 = (s: string): string => sha512hex(s).slice(0, 16);
const networkHash = (network: string): string => hash16(network);
const instanceHash = (a: Attachment): string => `${networkHash(a.network)}-${hash16(`${a.ifname}:${a.containerId}`)}`;

/** Starts with a hash of (network, ifname, container), so rules are found by prefix; nft strings hold no quotes. */
function nftMasqComment(a: Attachment): string {
  const clean = (s: string): string => s.replace(/"/g, '');
  return `${instanceHash(a)}, net: ${clean(a.network)}, if: ${clean(a.ifname)}, id: ${clean(a.containerId)}`.slice(0, NFT_COMMENT_MAX);
}

const masqTable = { family: 'inet', table: MASQ_TABLE };
const payload = (protocol: string, field: string): NftObject => ({ payload: { protocol, field } });
function prefixOf(cidr: string): NftObject {
  const p = parsePrefix(cidr);
  return { prefix: { addr: formatIp(networkOf(p)), len: p.prefixLen } };
}

async function setupNftMasq(a: Attachment, cidrs: string[]): Promise<void> {
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

async function teardownNftMasq(a: Attachment): Promise<void> {
  const rules = (await nftMasqRules()).filter((r) => r.comment?.startsWith(instanceHash(a)));
  await nftApply(rules.map(deleteRule), `remove masquerading of ${a.containerId}/${a.ifname}`);
}

async function gcNftMasq(network: string, validComments: Set<string>): Promise<void> {
  const rules = (await nftMasqRules()).filter((r) => r.comment?.startsWith(`${networkHash(network)}-`) && !validComments.has(r.comment));
  await nftApply(rules.map(deleteRule), `garbage-collect masquerading of network ${network}`);
}

// ---- ipMasq: the backend-independent entry points -------------------------------------------------

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
  const rules = (await nftMasqRules()).filter((r) => r.comment === nftMasqComment(a));
  const sources = new Set(rules.map((r) => JSON.stringify(r.expr?.[0] ?? null)));
  return cidrs.filter((c) => {
    const proto = familyOf(c) === 4 ? 'ip' : 'ip6';
    return !sources.has(JSON.stringify({ match: { op: '==', left: payload(proto, 'saddr'), right: formatIp(parsePrefix(c).bytes) } }));
  });
}

/** Removes the masquerading of every attachment of `network` that is not in `valid`. */
export async function gcMasq(primary: MasqBackend, network: string, valid: readonly Pick<Attachment, 'containerId' | 'ifname'>[]): Promise<void> {
  const keys = new Set(valid.map((v) => `${v.containerId}\u0000${v.ifname}`));
  const isValid = (a: Attachment): boolean => keys.has(`${a.containerId}\u0000${a.ifname}`);
  const containers = new Set(valid.map((v) => v.containerId));
  const comments = new Set(valid.map((v) => nftMasqComment({ network, ...v })));
  await bothBackends(primary, { iptables: () => gcIptables(network, isValid, (id) => containers.has(id)), nftables: () => gcNftMasq(network, comments) });
}

// ---- MAC spoof check (the layout of the reference's pkg/link/spoofcheck.go) -------------------------

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
