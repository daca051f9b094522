// host-local keeps one file per reserved IP under <dataDir>/<network>/: counting them tells
// whether an attachment leaked its address.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cni, type CniRun, type JsonObject } from './oracle';
import { REFERENCE_PLUGINS, ROOT } from './plexus';

export function reservedIps(dataDir: string, network: string): string[] {
  try {
    return readdirSync(join(dataDir, network)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  } catch {
    return [];
  }
}

// --- differential runs of IPAM plugins (plugins/host-local, plugins/static) ----------------------

export const IPAM_BINS = {
  'host-local': { ref: join(REFERENCE_PLUGINS, 'host-local'), ours: join(ROOT, 'dist', 'bin', 'host-local') },
  static: { ref: join(REFERENCE_PLUGINS, 'static'), ours: join(ROOT, 'dist', 'bin', 'static') },
} as const;

/** A CNI_NETNS that exists nowhere: IPAM plugins never enter it, and it is not our own. */
export const NO_NETNS = '/run/netns/plexus-ipam-test-absent';

export interface IpamCall {
  command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';
  id?: string;
  ifname?: string;
  args?: string;
}

/** One call of an IPAM binary, as a runtime (or a plugin's pkg/ipam) makes it. */
export function ipamCall(bin: string, call: IpamCall, stdin: string): Promise<CniRun> {
  return cni(bin, { command: call.command, containerId: call.id ?? 'c1', netns: NO_NETNS, ifname: call.ifname ?? 'eth0', args: call.args ?? '', stdin, path: REFERENCE_PLUGINS });
}

/**
 * What a call answered, comparable across the two implementations: the exit status and stdout as
 * JSON. The 1.1.1 binaries print errors without cniVersion (plexus adds it, as the 1.x spec asks).
 */
export function outcome(r: CniRun): { status: number | null; out: JsonObject | string } {
  if (!r.out) return { status: r.status, out: r.stdout };
  const out = { ...r.out };
  if (r.status !== 0) delete out.cniVersion;
  return { status: r.status, out };
}

/** Every file below dir (recursively): relative path → "mode content", for byte-for-byte diffs. */
export function storeTree(dir: string, base = dir, out: Record<string, string> = {}): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const p = join(dir, n);
    const st = lstatSync(p);
    const rel = p.slice(base.length + 1);
    if (st.isDirectory()) {
      out[`${rel}/`] = (st.mode & 0o7777).toString(8);
      storeTree(p, base, out);
    } else {
      out[rel] = `${(st.mode & 0o7777).toString(8)} ${JSON.stringify(readFileSync(p, 'latin1'))}`;
    }
  }
  return out;
}
