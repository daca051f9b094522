// The node side of the demo: namespaces and links made and inspected with `ip`. The product never
// shells out to iproute2 (DESIGN.md); a demo may, because it plays the runtime and the operator.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** True when the command succeeded; for clean-up, where "already gone" is fine. */
export function tryIp(...args: string[]): boolean {
  return spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
}

/**
 * For clean-up: async and in its own process group, so a second Ctrl-C at the terminal (which
 * signals the whole foreground group) cannot kill it half-way and leave a link behind.
 */
export function ipDetached(...args: string[]): Promise<{ ok: boolean; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', args, { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('error', () => resolve({ ok: false, stdout }));
    child.on('close', (status) => resolve({ ok: status === 0, stdout }));
  });
}

export function linkExists(name: string, netns?: string): boolean {
  return netns ? tryIp('-n', netns, 'link', 'show', name) : tryIp('link', 'show', name);
}

function parseLinkNames(out: string): string[] {
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname);
}

function parseNetnsNames(out: string): string[] {
  // `ip -j netns list` prints nothing at all (not "[]") when there are none.
  return out.trim() === '' ? [] : (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export function hostLinkNames(): string[] {
  return parseLinkNames(ip('-j', 'link', 'show'));
}

export function netnsNames(): string[] {
  return parseNetnsNames(ip('-j', 'netns', 'list'));
}

/** What is left on the host, read the clean-up way (see ipDetached). */
export async function hostNames(): Promise<{ links: string[]; netns: string[] }> {
  const [links, netns] = await Promise.all([ipDetached('-j', 'link', 'show'), ipDetached('-j', 'netns', 'list')]);
  if (!links.ok || !netns.ok) throw new Error('ip could not list links and namespaces');
  return { links: parseLinkNames(links.stdout), netns: parseNetnsNames(netns.stdout) };
}

export interface PodInterface {
  name: string;
  kind: string;
  mac: string;
  mtu: number;
  state: string;
  addrs: string[];
}

interface IpAddrJson {
  ifname: string;
  address?: string;
  mtu?: number;
  operstate?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
}

/**
 * The pod's interfaces as the kernel sees them. IPv6 link-local addresses are left out: the
 * kernel adds them asynchronously, so showing them would make the output differ run to run.
 */
export function podInterfaces(netns: string): PodInterface[] {
  const links = JSON.parse(ip('-n', netns, '-j', '-d', 'addr', 'show')) as IpAddrJson[];
  return links.map((l) => ({
    name: l.ifname,
    kind: l.linkinfo?.info_kind ?? (l.ifname === 'lo' ? 'loopback' : '-'),
    mac: l.address ?? '-',
    mtu: l.mtu ?? 0,
    state: (l.operstate ?? '-').toLowerCase(),
    addrs: (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
  }));
}

/**
 * host-local keeps one file per reserved address under <dataDir>/<network>/ (plus `lock` and
 * `last_reserved_ip.*`): any other file is an address still held.
 */
export function reservations(dataDir: string): { network: string; ip: string }[] {
  const out: { network: string; ip: string }[] = [];
  let networks: string[];
  try {
    networks = readdirSync(dataDir);
  } catch {
    return out;
  }
  for (const network of networks) {
    for (const f of readdirSync(join(dataDir, network))) {
      if (f !== 'lock' && !f.startsWith('last_reserved_ip')) out.push({ network, ip: f });
    }
  }
  return out;
}

/** Files whose name mentions the container: libcni's result cache is `<net>-<id>-<ifname>`. */
export function filesMentioning(dir: string, containerId: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.includes(containerId));
  } catch {
    return [];
  }
}
