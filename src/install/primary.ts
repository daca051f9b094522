// Which config in the CNI conf dir is the node's primary (cluster) network. Pure: the directory's
// files and a "does this plugin binary exist" answer in, a choice or the reason there is none out.
//
// Multus takes the alphabetically first file, so a leftover `10-containerd-net.conflist` or a
// second CNI's file wins by its name (features.md §7 row 5). The rule here (docs/decisions.md):
// a config is a candidate only if it is loadable, is not a meta-plugin's (ours, Multus's), and
// every plugin it names is installed in the bin dir; the current primary stays while it is still
// a candidate; otherwise exactly one candidate is chosen and several are refused, naming them.
import { CniError } from '../cni/errors';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';

export const OWN_FILE = '00-plexus.conflist';

/** libcni's ConfFiles extensions: what a runtime would load from the conf dir. */
const CONF_EXT = /\.(conf|conflist|json)$/;
/** Plugin types that are themselves meta-plugins: never the cluster network. */
const META_TYPES = new Set(['plexus', 'plexus-shim', 'multus', 'multus-shim']);

export interface ConfFile {
  name: string;
  text: string;
}

export interface Candidate {
  file: string;
  net: NetworkConfig;
}

export interface Skipped {
  file: string;
  why: string;
  parseError?: boolean;
}

export type Selection =
  | { ok: true; primary: Candidate; skipped: Skipped[] }
  /** `keep`: the current primary is there but unreadable (mid-rewrite by a non-atomic writer): keep the config as it is. */
  | { ok: false; problem: string; skipped: Skipped[]; keep?: boolean };

export interface SelectOptions {
  /** The operator's pinned file name (`--master-cni-file`). */
  explicit?: string;
  /** The file the current 00-plexus.conflist points at: kept while it is still a candidate. */
  current?: string;
  hasBinary(type: string): boolean;
}

function parse(f: ConfFile): Candidate | Skipped {
  try {
    return { file: f.name, net: parseNetworkConfig(f.text, f.name) };
  } catch (err) {
    return { file: f.name, why: err instanceof CniError ? err.message : String(err), parseError: true };
  }
}

const isSkipped = (c: Candidate | Skipped): c is Skipped => 'why' in c;

export function selectPrimary(files: readonly ConfFile[], o: SelectOptions): Selection {
  const confs = files.filter((f) => CONF_EXT.test(f.name) && !f.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name));
  if (o.explicit !== undefined) {
    const f = confs.find((c) => c.name === o.explicit);
    if (!f) return { ok: false, problem: `the primary config ${o.explicit} (--master-cni-file) is not there yet`, skipped: [] };
    const c = parse(f);
    if (isSkipped(c)) return { ok: false, problem: `the primary config ${o.explicit} (--master-cni-file) is not loadable: ${c.why}`, skipped: [] };
    const meta = c.net.plugins.find((p) => META_TYPES.has(String(p.type)));
    if (meta) return { ok: false, problem: `the primary config ${o.explicit} (--master-cni-file) is a meta-plugin's (type ${String(meta.type)}), not a cluster network`, skipped: [] };
    return { ok: true, primary: c, skipped: [] };
  }
  const skipped: Skipped[] = [];
  const candidates: Candidate[] = [];
  for (const f of confs) {
    if (f.name === OWN_FILE) continue;
    if (/^00-multus\./.test(f.name)) {
      skipped.push({ file: f.name, why: "Multus's config" });
      continue;
    }
    const c = parse(f);
    if (isSkipped(c)) {
      skipped.push(c);
      continue;
    }
    const types = c.net.plugins.map((p) => String(p.type));
    const meta = types.find((t) => META_TYPES.has(t));
    if (meta) {
      skipped.push({ file: f.name, why: `a meta-plugin's config (type ${meta})` });
      continue;
    }
    const missing = types.filter((t) => !o.hasBinary(t));
    if (missing.length > 0) {
      skipped.push({ file: f.name, why: `plugin ${missing.join(', ')} not installed in the bin dir` });
      continue;
    }
    candidates.push(c);
  }
  const current = o.current !== undefined ? candidates.find((c) => c.file === o.current) : undefined;
  if (current) return { ok: true, primary: current, skipped };
  // A primary rewritten in place (truncate, then write) is briefly half a file. Switching away or
  // removing the config for that moment would flap the node's network; the file is still there.
  const unreadable = o.current !== undefined ? skipped.find((k) => k.file === o.current && k.parseError) : undefined;
  if (unreadable) return { ok: false, problem: `the primary ${unreadable.file} is not loadable right now (${unreadable.why}): config kept`, skipped, keep: true };
  if (candidates.length === 1) return { ok: true, primary: candidates[0]!, skipped };
  if (candidates.length === 0) return { ok: false, problem: 'no primary CNI config yet', skipped };
  return {
    ok: false,
    problem: `several configs could be the primary (${candidates.map((c) => c.file).join(', ')}): name one with --master-cni-file`,
    skipped,
  };
}

/** One line for a person: why nothing was chosen, and what was looked at. */
export function describeSelection(s: Selection & { ok: false }): string {
  if (s.skipped.length === 0) return s.problem;
  return `${s.problem}; ignored: ${s.skipped.map((k) => `${k.file} (${k.why})`).join('; ')}`;
}
