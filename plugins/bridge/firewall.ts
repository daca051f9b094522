// What the bridge plugin's firewall files (masq*.ts, spoofcheck.ts) share: who an attachment is,
// finding and running iptables / nft, and nft's JSON documents. The rules are written by exec'ing
// iptables-restore / nft (as the reference's go-iptables and go-nft do), each change in one atomic
// transaction.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CniError, Code } from '../../src/cni/errors';

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

export async function mustRun(tool: string, args: string[], input: string, what: string): Promise<string> {
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

export const sha512hex = (s: string): string => createHash('sha512').update(s).digest('hex');

// ---- address families, as both masquerade backends split addresses -----------------------------

export type Family = 4 | 6;
export const familyOf = (cidr: string): Family => (cidr.includes(':') ? 6 : 4);
export const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

// ---- nft's JSON documents -------------------------------------------------------------------------

export type NftObject = Record<string, unknown>;
export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr?: unknown[];
}

/** Rules and chains of one table (or of one chain); empty when it does not exist. */
export async function nftList(what: string[]): Promise<{ rules: NftRule[]; chains: Set<string> }> {
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
export async function nftApply(commands: NftObject[], what: string): Promise<void> {
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

export const deleteRule = (r: NftRule): NftObject => ({ delete: { rule: { family: r.family, table: r.table, chain: r.chain, handle: r.handle } } });

export const payload = (protocol: string, field: string): NftObject => ({ payload: { protocol, field } });
