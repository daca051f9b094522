// Differential testing of a plugin against the reference plugin of the same name: run each binary
// with the same env and stdin in its own fresh namespace, snapshot both namespaces with iproute2
// (`ip -j -d link/addr/route/rule` plus chosen sysctls), normalise what is random by nature (MACs,
// IPv6 link-local addresses, namespace paths, ifindexes), and diff.
//
// The snapshot is keyed by identity (a link by name, an address by link and prefix, a route by
// table, type, destination and device, a rule by family and priority and selectors), so a diff
// reads "addr net1 fd00::2/64 .nodad: (absent) → true" rather than an index shuffle. Tests compare
// the whole diff list with the differences they expect, each with its reason: a new difference, or
// an expected one that went away, fails the test.
//
// Generic on purpose (bridge, host-device, ...): nothing here knows about a plugin.
import { execFileSync } from 'node:child_process';
import { runPlugin, type Invocation, type Outcome } from './plexus';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface CniRun extends Outcome {
  /** The parsed stdout when it is a JSON object (a result, or a CNI error). */
  out: JsonObject | undefined;
  /** The CNI error code when the plugin failed with one. */
  code: number | undefined;
}

/** Runs `bin` once, exactly like a runtime would (fresh process, clean CNI_* environment). */
export async function cni(bin: string, inv: Omit<Invocation, 'bin'>): Promise<CniRun> {
  const o = await runPlugin({ ...inv, bin });
  let out: JsonObject | undefined;
  try {
    const v: unknown = JSON.parse(o.stdout);
    if (v && typeof v === 'object' && !Array.isArray(v)) out = v as JsonObject;
  } catch {
    out = undefined;
  }
  const code = o.status !== 0 && typeof out?.code === 'number' ? out.code : undefined;
  return { ...o, out, code };
}

// --- snapshot -------------------------------------------------------------------------------------

/** Per-interface sysctls worth comparing for a pod interface; `{if}` is each non-lo link. */
export const DEFAULT_SYSCTLS = [
  'net/ipv4/conf/{if}/arp_notify',
  'net/ipv6/conf/{if}/ndisc_notify',
  'net/ipv6/conf/{if}/disable_ipv6',
  'net/ipv6/conf/{if}/accept_dad',
  'net/ipv4/conf/{if}/rp_filter',
  'net/ipv6/conf/lo/disable_ipv6',
];

export interface Snapshot {
  links: Record<string, JsonObject>;
  addrs: Record<string, JsonObject>;
  routes: Record<string, JsonObject>;
  rules: Record<string, JsonObject>;
  sysctls: Record<string, string>;
}

export interface SnapshotOptions {
  /** Sysctl keys below /proc/sys (slash form); `{if}` expands to each link but lo. */
  sysctls?: readonly string[];
  /** Wait (polling, up to 10 s) until no IPv6 address is tentative, so DAD timing cannot differ. */
  settle?: boolean;
}

function ipJson(ns: string, ...args: string[]): JsonObject[] {
  const out = execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }).trim();
  return out === '' ? [] : (JSON.parse(out) as JsonObject[]);
}

const str = (v: Json | undefined): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** Waits, by polling the kernel's own state, until DAD has finished on every address of ns. */
export async function settleAddresses(ns: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tentative = ipJson(ns, 'addr', 'show').flatMap((l) => ((l.addr_info as JsonObject[] | undefined) ?? []).filter((a) => a.tentative === true));
    if (tentative.length === 0) return;
    if (Date.now() > deadline) throw new Error(`addresses in ${ns} still tentative after ${timeoutMs} ms: ${JSON.stringify(tentative)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Everything iproute2 says about ns, keyed by identity (see the file comment). */
export async function snapshot(ns: string, o: SnapshotOptions = {}): Promise<Snapshot> {
  if (o.settle) await settleAddresses(ns);
  const snap: Snapshot = { links: {}, addrs: {}, routes: {}, rules: {}, sysctls: {} };
  const names: string[] = [];
  for (const l of ipJson(ns, '-d', 'link', 'show')) {
    const name = str(l.ifname);
    names.push(name);
    snap.links[`link ${name}`] = l;
  }
  for (const l of ipJson(ns, 'addr', 'show')) {
    for (const a of (l.addr_info as JsonObject[] | undefined) ?? []) {
      snap.addrs[`addr ${str(l.ifname)} ${str(a.local)}/${str(a.prefixlen)}`] = a;
    }
  }
  for (const r of ipJson(ns, '-d', 'route', 'show', 'table', 'all')) {
    snap.routes[`route ${str(r.table)} ${str(r.type)} ${str(r.dst)} dev ${str(r.dev)}`] = r;
  }
  for (const fam of ['-4', '-6']) {
    for (const r of ipJson(ns, fam, 'rule', 'show')) {
      const sel = ['src', 'dst', 'iif', 'oif', 'fwmark'].map((k) => (r[k] !== undefined ? `${k} ${str(r[k])}` : '')).filter(Boolean);
      snap.rules[`rule ${fam} ${str(r.priority)} ${sel.join(' ')}`] = r;
    }
  }
  const keys = [...new Set((o.sysctls ?? DEFAULT_SYSCTLS).flatMap((k) => (k.includes('{if}') ? names.filter((n) => n !== 'lo').map((n) => k.replace('{if}', n)) : [k])))];
  if (keys.length > 0) {
    // One process reads them all inside the namespace; a missing key reads as "<none>".
    const script = 'for k; do v=$(cat "/proc/sys/$k" 2>/dev/null) || v="<none>"; printf "%s=%s\\n" "$k" "$v"; done';
    const out = execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', script, 'sh', ...keys], { encoding: 'utf8' });
    for (const line of out.split('\n').filter(Boolean)) {
      const eq = line.indexOf('=');
      snap.sysctls[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return snap;
}

// --- normalisation --------------------------------------------------------------------------------

/** Fields that say nothing about configuration: indexes, counters, lifetimes ticking down. */
export const VOLATILE_KEYS = new Set(['ifindex', 'link_index', 'link_netnsid', 'stats', 'stats64', 'valid_life_time', 'preferred_life_time']);

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
const FIXED_MACS = new Set(['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff']);

/**
 * Replaces what differs between two equivalent runs by nature with stable tokens, consistently
 * across everything passed through one instance: each random MAC becomes <mac1>, <mac2>, ... in
 * order of first appearance, each IPv6 link-local address <ll1>, ..., each given literal (netns
 * path or name, a temp dir) its replacement. MACs in `keepMacs` (a static MAC under test) stay.
 */
export class Normaliser {
  private macs = new Map<string, string>();
  private lls = new Map<string, string>();
  private readonly literals: [string, string][];
  private readonly keep: Set<string>;

  constructor(o: { literals?: Record<string, string>; keepMacs?: readonly string[] } = {}) {
    // Longest first, so a path is replaced before a name it contains.
    this.literals = Object.entries(o.literals ?? {}).sort((a, b) => b[0].length - a[0].length);
    this.keep = new Set((o.keepMacs ?? []).map((m) => m.toLowerCase()));
  }

  private token(map: Map<string, string>, key: string, prefix: string): string {
    let t = map.get(key);
    if (!t) {
      t = `<${prefix}${map.size + 1}>`;
      map.set(key, t);
    }
    return t;
  }

  string(s: string): string {
    if (MAC.test(s) && !FIXED_MACS.has(s.toLowerCase()) && !this.keep.has(s.toLowerCase())) return this.token(this.macs, s.toLowerCase(), 'mac');
    const ll = /^fe80::[0-9a-f:]+(\/\d+)?$/i.exec(s);
    if (ll && s.toLowerCase() !== 'fe80::/64') return this.token(this.lls, s.replace(/\/\d+$/, '').toLowerCase(), 'll') + (ll[1] ?? '');
    let out = s;
    for (const [from, to] of this.literals) out = out.split(from).join(to);
    // Inside a longer string (a snapshot key such as "addr net1 fe80::1/64").
    return out.replace(/fe80::[0-9a-f:]+/gi, (m) => (m.toLowerCase() === 'fe80::' ? m : this.token(this.lls, m.toLowerCase(), 'll')));
  }

  value(v: Json): Json {
    if (typeof v === 'string') return this.string(v);
    if (Array.isArray(v)) return v.map((x) => this.value(x));
    if (v && typeof v === 'object') {
      const out: JsonObject = {};
      for (const [k, x] of Object.entries(v)) if (!VOLATILE_KEYS.has(k)) out[this.string(k)] = this.value(x);
      return out;
    }
    return v;
  }

  snapshot(s: Snapshot): Snapshot {
    const section = <T extends Json>(rec: Record<string, T>): Record<string, T> =>
      Object.fromEntries(Object.keys(rec).sort().map((k) => [this.string(k), this.value(rec[k] as T) as T]));
    return { links: section(s.links), addrs: section(s.addrs), routes: section(s.routes), rules: section(s.rules), sysctls: section(s.sysctls) };
  }
}

// --- diff -----------------------------------------------------------------------------------------

const show = (v: Json | undefined): string => (v === undefined ? '(absent)' : JSON.stringify(v));

/** Differences between two JSON values as "path: a → b" lines (objects by key, arrays by index). */
export function diffJson(a: Json | undefined, b: Json | undefined, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diffJson(a[k], b[k], `${path}.${k}`));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((x, i) => diffJson(x, b[i], `${path}[${i}]`));
  return [`${path}: ${show(a)} → ${show(b)}`];
}

/** Snapshot differences, each line prefixed with its identity key ("link net1 .mtu: 1500 → 1400"). */
export function diffSnapshots(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  for (const section of ['links', 'addrs', 'routes', 'rules', 'sysctls'] as const) {
    const x = a[section] as Record<string, Json>;
    const y = b[section] as Record<string, Json>;
    for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      if (!(k in y)) out.push(`${k}: only in the first`);
      else if (!(k in x)) out.push(`${k}: only in the second`);
      else out.push(...diffJson(x[k], y[k]).map((d) => (d.startsWith(':') ? `${k}${d}` : `${k} ${d}`)));
    }
  }
  return out;
}

// --- one plugin's whole lifecycle in a fresh namespace ----------------------------------------------

/** Something a test does to a configured namespace to make CHECK fail (and how to undo it). */
export interface Tamper {
  name: string;
  apply(ns: string): void;
  undo?(ns: string): void;
}

export interface LifecycleOptions {
  bin: string;
  /** The namespace to run in (fresh, made by the test, removed in its t.after). */
  ns: { name: string; path: string };
  conf: JsonObject;
  ifname: string;
  containerId?: string;
  args?: string;
  path?: string;
  tampers?: readonly Tamper[];
  snapshot?: SnapshotOptions;
  /** MACs to compare literally besides those the config names (an ipvlan has its master's). */
  keepMacs?: readonly string[];
}

export interface Lifecycle {
  /** The namespace before ADD (only what the test put there). */
  before: Snapshot;
  add: CniRun;
  /** After ADD, normalised with the literals (netns path and name) this run's namespace has. */
  snap: Snapshot;
  result: JsonObject | undefined;
  /** CHECK outcomes: "clean" first, then one per tamper (after it was applied); 0 = success. */
  checks: Record<string, number | undefined>;
  del: CniRun;
  /** DEL run a second time: DEL must be idempotent. */
  delAgain: CniRun;
  after: Snapshot;
}

const statusOf = (r: CniRun): number | undefined => (r.status === 0 ? 0 : r.code);

/**
 * ADD, snapshot, CHECK (clean, then after each tamper), DEL twice, snapshot. CHECK runs only for
 * configs of cniVersion 0.4.0 or later (it does not exist before). Each run gets its own
 * Normaliser, so the two runs of a differential test are normalised the same way.
 */
export async function lifecycle(o: LifecycleOptions): Promise<Lifecycle> {
  const norm = new Normaliser({ literals: { [o.ns.path]: '<netns>', [o.ns.name]: '<ns>' }, keepMacs: [...macsIn(o.conf, o.args), ...(o.keepMacs ?? [])] });
  const base = { containerId: o.containerId ?? 'plexus-oracle', netns: o.ns.path, ifname: o.ifname, args: o.args, path: o.path };
  const stdin = JSON.stringify(o.conf);
  const before = norm.snapshot(await snapshot(o.ns.name, o.snapshot));
  const add = await cni(o.bin, { ...base, command: 'ADD', stdin });
  const result = add.status === 0 && add.out ? (norm.value(add.out) as JsonObject) : undefined;
  const snap = norm.snapshot(await snapshot(o.ns.name, o.snapshot));
  const checks: Record<string, number | undefined> = {};
  const version = String(o.conf.cniVersion ?? '');
  const withPrev = JSON.stringify({ ...o.conf, prevResult: add.out ?? null });
  if (add.status === 0 && !/^0\.[0-3]\./.test(version)) {
    checks.clean = statusOf(await cni(o.bin, { ...base, command: 'CHECK', stdin: withPrev }));
    for (const t of o.tampers ?? []) {
      t.apply(o.ns.name);
      checks[t.name] = statusOf(await cni(o.bin, { ...base, command: 'CHECK', stdin: withPrev }));
      t.undo?.(o.ns.name);
    }
  }
  const delStdin = add.status === 0 && version !== '0.3.0' && version !== '0.3.1' ? withPrev : stdin;
  const del = await cni(o.bin, { ...base, command: 'DEL', stdin: delStdin });
  const delAgain = await cni(o.bin, { ...base, command: 'DEL', stdin: delStdin });
  const after = norm.snapshot(await snapshot(o.ns.name, o.snapshot));
  return { before, add, snap, result, checks, del, delAgain, after };
}

/** MACs a config asks for by value (conf, runtimeConfig, args.cni, CNI_ARGS): kept, not tokenised. */
function macsIn(conf: JsonObject, args = ''): string[] {
  const found: string[] = [];
  const walk = (v: Json): void => {
    if (typeof v === 'string' && MAC.test(v)) found.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(conf);
  for (const m of args.matchAll(/MAC=([0-9a-fA-F:]{17})/g)) if (m[1]) found.push(m[1]);
  return found;
}
