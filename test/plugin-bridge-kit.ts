// Fixtures for the bridge plugin's tests (test/plugin-bridge*.test.ts): each run of a bridge
// binary gets a "host" of its own — a fresh namespace the binary runs in through `ip netns exec`,
// where it makes its bridge, host veths, iptables and nftables rules — plus a fresh pod
// namespace. The reference and plexus therefore run with the very same config (bridge name,
// subnet, container ID) without meeting, and everything they make dies with the namespaces in
// t.after, pass or fail: nothing touches the machine's own links or firewall.
//
// A side is snapshotted with test/helpers/oracle.ts (links, addresses, routes, rules, sysctls of
// each namespace) plus the host's bridge VLANs and NAT/nftables rules as text; what is random by
// nature (MACs, veth names, link-local addresses, bridge timers) is normalised.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { netns, tempDir } from './helpers/host';
import { diffJson, diffSnapshots, type Json, type JsonObject, Normaliser, type Snapshot, snapshot } from './helpers/oracle';
import { REFERENCE_PLUGINS, ROOT, runtimeEnv, type Invocation } from './helpers/plexus';

export const OURS = join(ROOT, 'dist', 'bin', 'bridge');
export const REF = join(REFERENCE_PLUGINS, 'bridge');

type Cleanup = Pick<TestContext, 'after'>;

export interface Side {
  label: 'reference' | 'plexus';
  bin: string;
  host: { name: string; path: string };
  pod: { name: string; path: string };
  /** host-local's dataDir for this side. */
  dataDir: string;
}

export function makeSide(t: Cleanup, label: Side['label']): Side {
  const host = netns(t, 'pxbh');
  const pod = netns(t, 'pxbp');
  execFileSync('ip', ['-n', host.name, 'link', 'set', 'lo', 'up']);
  return { label, bin: label === 'plexus' ? OURS : REF, host, pod, dataDir: tempDir(t, 'plexus-bridge-') };
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is a JSON object. */
  out: JsonObject | undefined;
  /** The CNI error code when the plugin failed with one. */
  code: number | undefined;
}

/**
 * Runs a plugin binary inside ns (the side's host) like a runtime: fresh process, clean env.
 * `hide`: files (such as /usr/sbin/nft) made unusable for this run only, by mounting /dev/null
 * over them in a private mount namespace, to see how the plugin copes with a missing tool.
 */
export function runIn(ns: string, bin: string, inv: Omit<Invocation, 'bin'>, hide: readonly string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = hide.length
      ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `${hide.map((f) => `mount --bind /dev/null ${f} && `).join('')}exec ip netns exec "$0" "$1"`, ns, bin]
      : ['ip', 'netns', 'exec', ns, bin];
    const child = spawn(cmd!, args, { env: runtimeEnv({ ...inv, bin }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(inv.stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      let out: JsonObject | undefined;
      try {
        const v: unknown = JSON.parse(stdout);
        if (v && typeof v === 'object' && !Array.isArray(v)) out = v as JsonObject;
      } catch {
        out = undefined;
      }
      resolve({ status, stdout, stderr, out, code: status !== 0 && typeof out?.code === 'number' ? out.code : undefined });
    });
  });
}

export interface CallOptions {
  containerId?: string;
  ifname?: string;
  /** CNI_NETNS; the side's pod namespace by default. */
  netns?: string;
  args?: string;
  /** CNI_PATH; the reference plugins' directory by default (host-local, static). */
  path?: string;
  /** Files to hide from the plugin (see runIn). */
  hide?: readonly string[];
}

/** One CNI call on a side. `conf` gets the side's dataDir when its IPAM is host-local. */
export function call(s: Side, command: string, conf: JsonObject, o: CallOptions = {}): Promise<Run> {
  return runIn(s.host.name, s.bin, {
    command,
    containerId: o.containerId ?? 'pxbridge-c1',
    netns: o.netns ?? s.pod.path,
    ifname: o.ifname ?? 'eth1',
    args: o.args,
    path: o.path,
    stdin: JSON.stringify(withDataDir(conf, s.dataDir)),
  }, o.hide);
}

function withDataDir(conf: JsonObject, dataDir: string): JsonObject {
  const ipam = conf.ipam;
  if (!ipam || typeof ipam !== 'object' || Array.isArray(ipam) || ipam.type !== 'host-local') return conf;
  return { ...conf, ipam: { ...ipam, dataDir } };
}

/** `cmd args...` run inside ns; stdout. */
export function inNs(ns: string, ...cmd: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function tryInNs(ns: string, ...cmd: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout };
}

// ---- what a side looks like ----------------------------------------------------------------------

/** NAT rules as iptables-save prints them, minus its timestamped comment lines. */
export function natRules(ns: string, family: 4 | 6 = 4): string[] {
  const r = tryInNs(ns, family === 4 ? 'iptables-save' : 'ip6tables-save', '-t', 'nat');
  return r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

/** `nft list ruleset` as lines, without iptables-nft's own tables (natRules shows those). */
export function nftRules(ns: string): string[] {
  const text = tryInNs(ns, 'nft', 'list', 'ruleset').stdout;
  const out: string[] = [];
  let skip = false;
  for (const line of text.split('\n')) {
    if (/^table (ip|ip6) nat \{/.test(line)) skip = true;
    if (!skip && line.trim() !== '') out.push(line.trim());
    if (skip && line === '}') skip = false;
  }
  return out;
}

export interface VlanEntry {
  vlan: number;
  flags?: string[];
}

/** The bridge VLANs of every port (`bridge vlan show`), by port name. */
export function bridgeVlans(ns: string): Record<string, VlanEntry[]> {
  const out = execFileSync('bridge', ['-n', ns, '-j', 'vlan', 'show'], { encoding: 'utf8' }).trim();
  const list = out === '' ? [] : (JSON.parse(out) as { ifname: string; vlans?: VlanEntry[] }[]);
  return Object.fromEntries(list.map((p) => [p.ifname, p.vlans ?? []]));
}

// Bridge and port fields that tick (timers) or restate the bridge MAC with a priority prefix.
const VOLATILE_BRIDGE_KEYS = [
  'hello_timer',
  'tcn_timer',
  'topology_change_timer',
  'gc_timer',
  'hold_timer',
  'message_age_timer',
  'forward_delay_timer',
  'bridge_id',
  'root_id',
  'designated_root',
  'designated_bridge',
  'root_port',
  'no',
  'id',
];

function scrubLinks(s: Snapshot): Snapshot {
  for (const l of Object.values(s.links)) {
    const info = l.linkinfo as JsonObject | undefined;
    for (const key of ['info_data', 'info_slave_data'] as const) {
      const d = info?.[key] as JsonObject | undefined;
      if (d) for (const k of VOLATILE_BRIDGE_KEYS) delete d[k];
    }
  }
  return s;
}

export const HOST_SYSCTLS = ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding', 'net/ipv6/conf/{if}/accept_ra', 'net/ipv4/conf/{if}/arp_notify'];
export const POD_SYSCTLS = [
  'net/ipv4/conf/{if}/arp_notify',
  'net/ipv6/conf/{if}/ndisc_notify',
  'net/ipv6/conf/{if}/disable_ipv6',
  'net/ipv6/conf/{if}/accept_dad',
  'net/ipv6/conf/{if}/enhanced_dad',
];

export interface SideSnapshot {
  host: Snapshot;
  pod: Snapshot;
  vlans: Record<string, Json>;
  nat4: string[];
  nat6: string[];
  nft: string[];
}

/**
 * Waits until every link's operational state has caught up with its carrier. The kernel updates
 * operstate (IFF_RUNNING, hence iproute2's NO-CARRIER and the routes' linkdown flag) through
 * linkwatch, deferred by up to a second after a carrier change such as a bridge losing its last
 * port; a snapshot taken before that would show the timing, not the configuration.
 */
export async function settleLinks(ns: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; flags: string[] }[];
    const lagging = links.filter((l) => l.flags.includes('UP') && l.flags.includes('LOWER_UP') === l.flags.includes('NO-CARRIER'));
    if (lagging.length === 0) return;
    if (Date.now() > deadline) throw new Error(`links in ${ns} never settled: ${JSON.stringify(lagging)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A Normaliser that also knows its literals, to rename snapshot keys before the Normaliser sorts
 * them: sorted by random veth names, tokens (<llN>, <macN>) would be handed out in a random order.
 */
export class SideNormaliser extends Normaliser {
  constructor(
    readonly names: Record<string, string>,
    keepMacs: readonly string[],
  ) {
    super({ literals: names, keepMacs });
  }

  private rename(k: string): string {
    let out = k;
    for (const [from, to] of Object.entries(this.names).sort((a, b) => b[0].length - a[0].length)) out = out.split(from).join(to);
    return out;
  }

  override snapshot(raw: Snapshot): Snapshot {
    const keys = <T>(rec: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(rec).map(([k, v]) => [this.rename(k), v]));
    return super.snapshot({ links: keys(raw.links), addrs: keys(raw.addrs), routes: keys(raw.routes), rules: keys(raw.rules), sysctls: keys(raw.sysctls) });
  }
}

/** Everything about a side, normalised by norm (make one per side, after ADD: see normaliserFor). */
export async function snapSide(s: Side, norm: Normaliser, o: { podGone?: boolean } = {}): Promise<SideSnapshot> {
  const lines = (ls: string[]): string[] => ls.map((l) => l.split(' ').map((w) => norm.string(w)).join(' '));
  const empty: Snapshot = { links: {}, addrs: {}, routes: {}, rules: {}, sysctls: {} };
  await settleLinks(s.host.name);
  if (!o.podGone) await settleLinks(s.pod.name);
  return {
    host: norm.snapshot(scrubLinks(await snapshot(s.host.name, { sysctls: HOST_SYSCTLS, settle: true }))),
    pod: o.podGone ? empty : norm.snapshot(scrubLinks(await snapshot(s.pod.name, { sysctls: POD_SYSCTLS, settle: true }))),
    vlans: norm.value(JSON.parse(JSON.stringify(bridgeVlans(s.host.name))) as Json) as Record<string, Json>,
    nat4: lines(natRules(s.host.name, 4)),
    nat6: lines(natRules(s.host.name, 6)),
    nft: lines(nftRules(s.host.name)),
  };
}

/**
 * A normaliser for one side: its namespaces, temp dir and the host veth names it made become
 * fixed tokens; MACs and link-local addresses become <macN>/<llN> in order of appearance.
 */
export function normaliserFor(s: Side, hostVeths: readonly string[] = [], keepMacs: readonly string[] = []): SideNormaliser {
  const literals: Record<string, string> = { [s.pod.path]: '<netns>', [s.pod.name]: '<podns>', [s.host.name]: '<hostns>', [s.dataDir]: '<datadir>' };
  hostVeths.forEach((v, i) => (literals[v] = `<hostveth${i + 1}>`));
  Object.assign(literals, unnamedVeths(s, hostVeths));
  return new SideNormaliser(literals, keepMacs);
}

/** Host veth names a result lists (every non-sandbox interface that is not the bridge). */
export function hostVethsOf(result: JsonObject | undefined, bridge: string): string[] {
  const ifs = (result?.interfaces as JsonObject[] | undefined) ?? [];
  return ifs.filter((i) => !i.sandbox && i.name !== bridge && typeof i.name === 'string').map((i) => i.name as string);
}

/**
 * Literals for host veths no result names, by role: "<peer of pxbr0.100>" for the bridge port of
 * the VLAN gateway veth pair (whose other end the result lists). Random names would otherwise
 * differ between the sides and reorder every token after them.
 */
export function unnamedVeths(s: Side, named: readonly string[]): Record<string, string> {
  const links = JSON.parse(execFileSync('ip', ['-n', s.host.name, '-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; link?: string; linkinfo?: { info_kind?: string } }[];
  const out: Record<string, string> = {};
  for (const l of links) {
    if (l.linkinfo?.info_kind !== 'veth' || named.includes(l.ifname)) continue;
    out[l.ifname] = l.link ? `<peer of ${l.link}>` : '<veth>';
  }
  return out;
}

/** Differences between two side snapshots, one line each, prefixed with where they are. */
export function diffSides(a: SideSnapshot, b: SideSnapshot): string[] {
  const text = (name: string, x: string[], y: string[]): string[] => [
    ...x.filter((l) => !y.includes(l)).map((l) => `${name} - ${l}`),
    ...y.filter((l) => !x.includes(l)).map((l) => `${name} + ${l}`),
  ];
  return [
    ...diffSnapshots(a.host, b.host).map((d) => `host ${d}`),
    ...diffSnapshots(a.pod, b.pod).map((d) => `pod ${d}`),
    ...diffJson(a.vlans, b.vlans, 'vlans'),
    ...text('nat4', a.nat4, b.nat4),
    ...text('nat6', a.nat6, b.nat6),
    ...text('nft', a.nft, b.nft),
  ];
}

/**
 * An IPAM plugin for CNI 1.1.0 (host-local 1.1.1 stops at 1.0.0): ADD gives 10.97.0.<n>/24 for a
 * container ID ending in -<n>, every call is logged to <dir>/calls.
 */
export function fakeIpam(t: Cleanup): { dir: string; log: string } {
  const dir = tempDir(t, 'plexus-fake-ipam-');
  const log = join(dir, 'calls');
  const script = [
    '#!/bin/sh',
    `echo "$CNI_COMMAND $CNI_CONTAINERID" >> ${log}`,
    'cat > /dev/null',
    'case "$CNI_COMMAND" in',
    '  ADD) printf \'{"cniVersion":"1.1.0","ips":[{"address":"10.97.0.%s/24","gateway":"10.97.0.1"}]}\' "${CNI_CONTAINERID##*-}" ;;',
    '  VERSION) printf \'{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}\' ;;',
    'esac',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'fake-ipam'), script);
  chmodSync(join(dir, 'fake-ipam'), 0o755);
  return { dir, log };
}
