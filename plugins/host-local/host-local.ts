// Built-in host-local IPAM: the reference plugin (containernetworking/plugins v1.1.1, main.go and
// backend/allocator/allocator.go) in behaviour, files and messages: range sets allocated
// round-robin from the last address handed out (last_reserved_ip.<n>), each range's gateway
// skipped, requested IPs reserved where a range set holds them, everything released on a partial
// failure. Plus the CNI 1.1 verbs the reference lacks: GC frees reservations of attachments the
// runtime no longer has; STATUS reports whether the store can be used.
import { readFileSync } from 'node:fs';
import { formatIP, type IPAddr } from '../../src/cni/addr';
import type { CniEnv } from '../../src/cni/env';
import { CniError, Code } from '../../src/cni/errors';
import { formatResult } from '../../src/cni/result';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniDNS, CniIPConfig, Result } from '../../src/cni/types';
import { Fields, isObject, parseObject } from '../../src/cni/validate';
import { LATEST_VERSION } from '../../src/cni/version';
import { bigIntToIP, ipEqual, ipToBigInt } from '../../src/ipam/ip';
import { walkRanges, type Range } from '../../src/ipam/range';
import { loadHostLocalConf, rangeContains, rangeSetString, type HLRange } from './config';
import { DiskStore } from './store';

const fail = (msg: string): never => {
  throw new CniError(Code.Internal, msg);
};

/** dns.go parseResolvConf: nameserver, domain, search, options; comments and short lines skipped. */
export function parseResolvConf(path: string): CniDNS {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    return fail(`${e.code === 'EISDIR' ? 'read' : 'open'} ${path}: ${why}`);
  }
  const dns: CniDNS = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line[0] === '#' || line[0] === ';') continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const rest = fields.slice(1);
    switch (fields[0]) {
      case 'nameserver':
        (dns.nameservers ??= []).push(rest[0] as string);
        break;
      case 'domain':
        dns.domain = rest[0] as string;
        break;
      case 'search':
        (dns.search ??= []).push(...rest);
        break;
      case 'options':
        (dns.options ??= []).push(...rest);
        break;
    }
  }
  return dns;
}

const rangeOf = (set: readonly HLRange[], ip: IPAddr): HLRange | undefined => set.find((r) => rangeContains(r, ip));

function ipConfig(ip: IPAddr, r: HLRange): CniIPConfig {
  return { address: `${formatIP(ip)}/${r.subnet.prefix}`, gateway: formatIP(r.gateway) };
}

/** IPAllocator.Get, under the store lock. */
function allocate(store: DiskStore, set: HLRange[], rangeId: string, id: string, ifname: string, requested: IPAddr | undefined): CniIPConfig {
  if (requested) {
    const r = rangeOf(set, requested) ?? fail(`${formatIP(requested)} not in range set ${rangeSetString(set)}`);
    if (ipEqual(requested, r.gateway)) fail(`requested ip ${formatIP(requested)} is subnet's gateway`);
    if (!store.reserve(id, ifname, requested, rangeId)) {
      fail(`requested IP address ${formatIP(requested)} is not available in range set ${rangeSetString(set)}`);
    }
    return ipConfig(requested, r);
  }
  // the spec forbids a second ADD for one attachment
  for (const held of store.getByID(id, ifname)) {
    if (rangeOf(set, held)) fail(`${formatIP(held)} has been allocated to ${id}, duplicate allocation is not allowed`);
  }
  const family = (set[0] as HLRange).subnet.ip.family;
  const ranges: Range[] = set.map((r) => ({ family, first: r.start, last: r.end }));
  const last = store.lastReservedIP(rangeId);
  const from = last && rangeOf(set, last) ? { family, n: ipToBigInt(last) } : undefined;
  // each range skips its own gateway (another range's gateway may be an address of this one)
  const isGateway = (n: bigint) => {
    const ip = bigIntToIP(n, family);
    const r = rangeOf(set, ip);
    return r !== undefined && ipEqual(r.gateway, ip);
  };
  for (const { n } of walkRanges(ranges, { from, after: true, skip: (_f, n) => isGateway(n) })) {
    const ip = bigIntToIP(n, family);
    if (store.reserve(id, ifname, ip, rangeId)) return ipConfig(ip, rangeOf(set, ip) as HLRange);
  }
  return fail(`no IP addresses available in range set: ${rangeSetString(set)}`);
}

async function releaseAll(store: DiskStore, count: number, id: string, ifname: string): Promise<void> {
  for (let i = 0; i < count; i++) await store.locked(() => store.releaseByID(id, ifname));
}

/** The result as the reference prints it: always a "dns" object, even an empty one. */
function printResult(result: Result, version: string): string {
  const out = formatResult(result, version);
  out.dns ??= {};
  return JSON.stringify(out);
}

async function cmdAdd(env: CniEnv, stdin: string): Promise<string> {
  const conf = loadHostLocalConf(stdin, env.args);
  const result: Result = { cniVersion: LATEST_VERSION, ips: [] };
  if (conf.resolvConf !== '') result.dns = parseResolvConf(conf.resolvConf);
  const store = DiskStore.open(conf.name, conf.dataDir);
  const requested = new Map(conf.requested.map((ip) => [formatIP(ip), ip]));
  let allocs = 0;
  for (const [idx, set] of conf.rangeSets.entries()) {
    let want: IPAddr | undefined;
    for (const [k, ip] of requested) {
      if (rangeOf(set, ip)) {
        want = ip;
        requested.delete(k);
        break;
      }
    }
    try {
      const ip = await store.locked(() => allocate(store, set, String(idx), env.containerId, env.ifname, want));
      result.ips?.push(ip);
      allocs++;
    } catch (err) {
      await releaseAll(store, allocs, env.containerId, env.ifname);
      fail(`failed to allocate for range ${idx}: ${(err as Error).message}`);
    }
  }
  if (requested.size > 0) {
    await releaseAll(store, allocs, env.containerId, env.ifname);
    fail(`failed to allocate all requested IPs: ${[...requested.keys()].join(' ')}`);
  }
  if (conf.routes.length > 0) result.routes = conf.routes;
  return printResult(result, conf.cniVersion);
}

async function cmdDel(env: CniEnv, stdin: string): Promise<void> {
  const conf = loadHostLocalConf(stdin, env.args);
  const store = DiskStore.open(conf.name, conf.dataDir);
  // one release per range set, as the reference does (the second finds only pre-0.7 files)
  await releaseAll(store, conf.rangeSets.length, env.containerId, env.ifname);
}

async function cmdCheck(env: CniEnv, stdin: string): Promise<void> {
  const conf = loadHostLocalConf(stdin, env.args);
  const store = DiskStore.open(conf.name, conf.dataDir);
  const found = await store.locked(() => store.findByID(env.containerId, env.ifname));
  if (!found) fail(`host-local: Failed to find address added by container ${env.containerId}`);
}

async function cmdStatus(env: CniEnv, stdin: string): Promise<void> {
  const conf = loadHostLocalConf(stdin, env.args);
  try {
    DiskStore.open(conf.name, conf.dataDir);
  } catch (err) {
    throw new CniError(Code.NotAvailable, `host-local: the store for network ${conf.name} cannot be used: ${(err as Error).message}`);
  }
}

/** The runtime's live attachments of a GC request: "containerID\0ifname" keys, and the IDs alone. */
export function validAttachments(stdin: string): { pairs: Set<string>; ids: Set<string> } {
  const raw = parseObject(stdin, 'network configuration', Code.DecodeFailure);
  const list = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'];
  if (list === undefined || list === null) throw new CniError(Code.InvalidConfig, 'cni.dev/valid-attachments: missing from the GC request');
  if (!Array.isArray(list)) throw new CniError(Code.InvalidConfig, 'cni.dev/valid-attachments: must be a list');
  const pairs = new Set<string>();
  const ids = new Set<string>();
  list.forEach((v, i) => {
    if (!isObject(v)) throw new CniError(Code.InvalidConfig, `cni.dev/valid-attachments[${i}]: must be an object`);
    const f = new Fields(v, `cni.dev/valid-attachments[${i}]`);
    const id = f.str('containerID');
    pairs.add(`${id}\0${f.str('ifname')}`);
    ids.add(id);
  });
  return { pairs, ids };
}

async function cmdGc(env: CniEnv, stdin: string): Promise<void> {
  const conf = loadHostLocalConf(stdin, env.args);
  const valid = validAttachments(stdin);
  const store = DiskStore.open(conf.name, conf.dataDir);
  await store.locked(() => {
    for (const r of store.reservations()) {
      // a pre-0.7 file names no interface: it stays while its container has any attachment
      const live = r.ifname === undefined ? valid.ids.has(r.containerId) : valid.pairs.has(`${r.containerId}\0${r.ifname}`);
      if (!live) store.release(r);
    }
  });
}

export const plugin: PluginHandlers = { add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus, gc: cmdGc };
