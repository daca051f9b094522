// The node checks of `plexus doctor`, each a small function that looks at one thing and says
// ok / warn / fail with the detail a person needs to fix it. Effects: reading files, exec'ing
// plugins with VERSION, one socket round trip, one API GET. Nothing is written.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asCniError } from '../cni/errors';
import { execPlugin, findPlugin } from '../cni/exec';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';
import { isObject, type JsonObject } from '../cni/validate';
import { parseConf, type PlexusConf } from '../delegates/config';
import { listJournaledContainers, readJournal } from '../delegates/journal';

export type Status = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  check: string;
  status: Status;
  detail: string;
}

const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];
const PLEXUS_TYPES = ['plexus', 'plexus-shim'];
const META_TYPES = [...PLEXUS_TYPES, 'multus', 'multus-shim'];

export interface ConfFile {
  file: string;
  path: string;
  types: string[];
  text: string;
}

/** libcni's ConfFiles: the extensions it reads, in the lexical order the runtime picks from. */
export function confFiles(dir: string): ConfFile[] {
  return readdirSync(dir)
    .filter((f) => CONF_EXTENSIONS.some((e) => f.endsWith(e)))
    .sort()
    .map((file) => {
      const path = join(dir, file);
      let text = '';
      let types: string[] = [];
      try {
        text = readFileSync(path, 'utf8');
        const v: unknown = JSON.parse(text);
        const plugins = isObject(v) ? (Array.isArray(v.plugins) ? v.plugins : [v]) : [];
        types = plugins.flatMap((p) => (isObject(p) && typeof p.type === 'string' ? [p.type] : []));
      } catch {
        // reported by the config check: an unparseable file is still a file the runtime may pick
      }
      return { file, path, types, text };
    });
}

export function confOrder(dir: string, files: ConfFile[]): Check {
  if (files.length === 0) return { check: 'config order', status: 'fail', detail: `no .conf, .conflist or .json file in ${dir}: the runtime has no network` };
  const first = files[0] as ConfFile;
  const ours = files.find((f) => f.types.some((t) => PLEXUS_TYPES.includes(t)));
  if (!ours) return { check: 'config order', status: 'fail', detail: `no plexus config in ${dir}; the runtime uses ${first.file} (${first.types.join(', ') || 'unparseable'})` };
  if (ours !== first) return { check: 'config order', status: 'fail', detail: `the runtime uses ${first.file}, not plexus's ${ours.file}: ${first.file} sorts first` };
  return { check: 'config order', status: 'ok', detail: `${ours.file} is first of ${files.length}` };
}

/** plexus's own config as the meta-plugin reads it (libcni injects name and cniVersion). */
export function plexusConf(file: ConfFile): { conf?: PlexusConf; net?: NetworkConfig; check: Check } {
  try {
    const net = parseNetworkConfig(file.text, file.file);
    const plugin = net.plugins.find((p) => typeof p.type === 'string' && PLEXUS_TYPES.includes(p.type)) as JsonObject;
    const conf = parseConf(JSON.stringify({ ...plugin, name: net.name, cniVersion: net.cniVersion }));
    return { conf, net, check: { check: 'plexus config', status: 'ok', detail: `${file.file}: ${net.name}, cniVersion ${net.cniVersion}` } };
  } catch (err) {
    return { check: { check: 'plexus config', status: 'fail', detail: `${file.file}: ${asCniError(err).message}` } };
  }
}

/** Each delegate type and IPAM type a network names, once. */
export function pluginTypes(nets: NetworkConfig[]): Map<string, string> {
  const types = new Map<string, string>();
  for (const net of nets) {
    for (const p of net.plugins) {
      if (typeof p.type === 'string' && !types.has(p.type)) types.set(p.type, net.cniVersion);
      const ipam = p.ipam;
      if (isObject(ipam) && typeof ipam.type === 'string' && !types.has(ipam.type)) types.set(ipam.type, net.cniVersion);
    }
  }
  return types;
}

/** Finds each plugin on the search path and asks it VERSION, as a runtime's probe does. */
export async function probePlugins(types: Map<string, string>, path: string[]): Promise<Check[]> {
  const out: Check[] = [];
  for (const [type, cniVersion] of types) {
    const check = `plugin ${type}`;
    const bin = findPlugin(type, path);
    if (!bin) {
      out.push({ check, status: 'fail', detail: `not found (or not executable) in ${path.join(':')}` });
      continue;
    }
    try {
      const stdout = await execPlugin(bin, { verb: 'VERSION', containerId: '', netns: '', ifname: '', args: '', path }, JSON.stringify({ cniVersion }));
      const v: unknown = JSON.parse(stdout.toString('utf8'));
      const supported = isObject(v) && Array.isArray(v.supportedVersions) ? v.supportedVersions.filter((s): s is string => typeof s === 'string') : [];
      if (!supported.includes(cniVersion)) {
        out.push({ check, status: 'fail', detail: `${bin} does not speak cniVersion ${cniVersion} (it supports ${supported.join(', ') || 'nothing it says'})` });
      } else out.push({ check, status: 'ok', detail: `${bin} speaks ${cniVersion}` });
    } catch (err) {
      out.push({ check, status: 'fail', detail: `${bin}: VERSION failed: ${asCniError(err).message}` });
    }
  }
  return out;
}

/** Journal records whose network namespace is gone: a DEL that never came, or never finished. */
export function staleJournals(cniDir: string): Check {
  let ids: string[];
  try {
    ids = listJournaledContainers(cniDir);
  } catch (err) {
    return { check: 'journals', status: 'fail', detail: `${cniDir}: ${(err as Error).message}` };
  }
  const stale: string[] = [];
  const broken: string[] = [];
  for (const id of ids) {
    try {
      const rec = readJournal(cniDir, id);
      if (rec && rec.netns !== '' && !existsSync(rec.netns)) stale.push(`${id.slice(0, 12)} (${rec.pod ? `${rec.pod.namespace}/${rec.pod.name}, ` : ''}${rec.netns})`);
    } catch (err) {
      broken.push(`${id.slice(0, 12)}: ${asCniError(err).message}`);
    }
  }
  if (broken.length) return { check: 'journals', status: 'fail', detail: `${broken.length} unreadable: ${broken.join('; ')}` };
  if (stale.length) return { check: 'journals', status: 'warn', detail: `${stale.length} of ${ids.length} for a network namespace that no longer exists: ${stale.join(', ')}` };
  return { check: 'journals', status: 'ok', detail: `${ids.length} record(s), every network namespace present` };
}

/** The claims of a JWT, unverified: only to read `exp`/`iat`. undefined when it is not a JWT. */
export function jwtClaims(token: string): { exp?: number; iat?: number; sub?: string } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (!isObject(v)) return undefined;
    const out: { exp?: number; iat?: number; sub?: string } = {};
    if (typeof v.exp === 'number') out.exp = v.exp;
    if (typeof v.iat === 'number') out.iat = v.iat;
    if (typeof v.sub === 'string') out.sub = v.sub;
    return out;
  } catch {
    return undefined;
  }
}

function duration(s: number): string {
  const a = Math.abs(s);
  return a >= 7200 ? `${Math.round(a / 3600)} h` : a >= 120 ? `${Math.round(a / 60)} min` : `${Math.round(a)} s`;
}

/**
 * Expired is a failure. Past 80% of its lifetime is a warning: the kubelet replaces a projected
 * token by then, so a token that old means nothing is refreshing the file plexus reads.
 */
export function tokenExpiry(token: string | undefined, source: string, nowS = Date.now() / 1000): Check {
  const check = 'token';
  if (!token) return { check, status: 'skip', detail: `${source} has no bearer token (client certificate or none)` };
  const c = jwtClaims(token);
  if (!c) return { check, status: 'ok', detail: 'not a JWT: its expiry cannot be read' };
  if (c.exp === undefined) return { check, status: 'ok', detail: `${c.sub ?? 'JWT'}: no expiry` };
  const left = c.exp - nowS;
  if (left <= 0) return { check, status: 'fail', detail: `${c.sub ?? 'JWT'}: expired ${duration(left)} ago (${new Date(c.exp * 1000).toISOString()})` };
  if (c.iat !== undefined && c.exp > c.iat && (nowS - c.iat) / (c.exp - c.iat) > 0.8) {
    return { check, status: 'warn', detail: `${c.sub ?? 'JWT'}: expires in ${duration(left)}, past 80% of its lifetime: is the token file being refreshed?` };
  }
  return { check, status: 'ok', detail: `${c.sub ?? 'JWT'}: expires in ${duration(left)}` };
}
