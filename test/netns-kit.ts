// Fixtures for the src/netns kernel tests: throwaway namespaces (removed even when a test fails),
// `ip -j` as the oracle, and probes for link kinds the kernel may lack (this dev machine has no
// ipvlan, vlan, dummy or bridge VLAN filtering; the VM suite has them).
import { execFileSync, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import type { TestContext } from 'node:test';

let counter = 0;
/** An interface or namespace name unique to this process, at most 15 bytes. */
export function uniqueName(tag = 'pxt'): string {
  counter++;
  return `${tag}${process.pid.toString(36)}${counter.toString(36)}`.slice(-15);
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip -n ns -j ARGS`, parsed. */
export function ipJson<T = unknown>(ns: string | null, ...args: string[]): T {
  const out = ns ? ip('-n', ns, '-j', ...args) : ip('-j', ...args);
  return JSON.parse(out === '' ? '[]' : out) as T;
}

export interface TestNetns {
  name: string;
  path: string;
}

type Cleanup = Pick<TestContext, 'after'>;

/** A fresh namespace with lo up, deleted when the test (or suite) ends, pass or fail. */
export function testNetns(t: Cleanup): TestNetns {
  const name = uniqueName('pxt-');
  ip('netns', 'add', name);
  t.after(() => {
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  });
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return { name, path: `/var/run/netns/${name}` };
}

/** What /proc/thread-self/ns/net points at: "net:[4026531840]". */
export function threadNetns(): string {
  return readlinkSync('/proc/thread-self/ns/net');
}

export interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  address?: string;
  master?: string;
  group?: string;
  ifalias?: string;
  link?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: Record<string, unknown>;
    info_slave_kind?: string;
    info_slave_data?: Record<string, unknown>;
  };
}

export function ipLink(ns: string, name: string): IpLinkJson | null {
  const r = spawnSync('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', name], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout) as IpLinkJson[])[0] ?? null;
}

const kinds = new Map<string, boolean>();

/**
 * Whether this kernel can create a link of kind (or 'bridge_vlan_filtering'): tried for real in
 * a scratch namespace, because a missing module may also be loadable on demand.
 */
export function kernelHas(kind: string): boolean {
  const known = kinds.get(kind);
  if (known !== undefined) return known;
  const ns = uniqueName('pxk-');
  ip('netns', 'add', ns);
  try {
    const run = (...args: string[]): boolean => spawnSync('ip', ['-n', ns, ...args], { stdio: 'ignore' }).status === 0;
    run('link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    let ok: boolean;
    if (kind === 'bridge_vlan_filtering') ok = run('link', 'add', 'b0', 'type', 'bridge', 'vlan_filtering', '1');
    else if (kind === 'vlan') ok = run('link', 'add', 'link', 'p0', 'name', 'k0', 'type', 'vlan', 'id', '5');
    else if (kind === 'ipvlan' || kind === 'macvlan') ok = run('link', 'add', 'link', 'p0', 'name', 'k0', 'type', kind);
    else ok = run('link', 'add', 'k0', 'type', kind);
    kinds.set(kind, ok);
    return ok;
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** The skip option for tests needing kind: false when present, else the reason. */
export function needs(kind: string): { skip: false | string } {
  return { skip: !kernelHas(kind) && `needs ${kind}: runs in the VM suite` };
}
