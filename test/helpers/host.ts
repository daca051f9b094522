// Real kernel objects for tests: namespaces, links and temp dirs, each removed when the test
// ends, pass or fail. Tests may use `ip` as setup tool and oracle; product code never does.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

let counter = 0;
/** A name unique to this process, short enough for an interface (<= 15 bytes). */
export function uniq(prefix: string): string {
  counter++;
  return `${prefix}${(process.pid % 10000).toString(36)}${counter.toString(36)}`.slice(0, 15);
}

export type Cleanup = Pick<TestContext, 'after'>;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

export function tryIp(...args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

export function netns(t: Cleanup, prefix = 'pxt'): { name: string; path: string } {
  const name = uniq(prefix);
  ip('netns', 'add', name);
  t.after(() => tryIp('netns', 'del', name));
  return { name, path: `/var/run/netns/${name}` };
}

/** A veth pair on the host whose first end serves as an uplink (macvlan master). */
export function uplink(t: Cleanup): string {
  const name = uniq('pxu');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
  ip('link', 'set', name, 'up');
  t.after(() => tryIp('link', 'del', name));
  return name;
}

export function removeLinkAfter(t: Cleanup, name: string): void {
  t.after(() => tryIp('link', 'del', name));
}

export function tempDir(t: Cleanup, prefix = 'plexus-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Retried: a process the test started may still be writing its last line there, and a hook
  // that throws skips the test's later ones (its netns and links would be left behind).
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}

interface IpLink {
  ifname: string;
  mtu?: number;
  address?: string;
  linkinfo?: { info_kind?: string };
}
interface IpAddr {
  ifname: string;
  addr_info: { local: string; prefixlen: number; family: string }[];
}

export function linksIn(ns: string | null): IpLink[] {
  const out = ns ? ip('-n', ns, '-j', '-d', 'link', 'show') : ip('-j', '-d', 'link', 'show');
  return JSON.parse(out) as IpLink[];
}

export function linkNamesIn(ns: string | null): string[] {
  return linksIn(ns).map((l) => l.ifname);
}

export function addrsIn(ns: string, ifname: string): string[] {
  const out = JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', ifname)) as IpAddr[];
  return (out[0]?.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6').map((a) => `${a.local}/${a.prefixlen}`);
}

export function hostLinkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;
}

/**
 * The host-wide sysctls a network in the host namespace changes: the bridge plugin turns on
 * forwarding for an isGateway bridge's families (and never turns it off: other networks may
 * need it). scripts/test.sh checks them, with other all/default keys, after the suite.
 */
export const HOST_FORWARDING = ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding'];

/** Puts the host's forwarding sysctls back in t.after as they were when this was called. */
export function restoreHostSysctlsAfter(t: Cleanup, keys: readonly string[] = HOST_FORWARDING): void {
  const saved = keys.map((k) => {
    const file = `/proc/sys/${k}`;
    try {
      return { file, value: readFileSync(file, 'utf8').trim() };
    } catch {
      return null; // no IPv6 on this kernel, say
    }
  });
  t.after(() => {
    for (const s of saved) {
      if (s && readFileSync(s.file, 'utf8').trim() !== s.value) writeFileSync(s.file, s.value);
    }
  });
}
