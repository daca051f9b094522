// `plexus explain`, the pure part: what was recorded for a container (plexus's journal or Multus's
// cache), what is live in its netns and what its network-status says, lined up by interface, with
// every disagreement named. Data in, data out; explain.ts gathers the facts.
import { isObject, type Json, type JsonObject } from '../cni/validate';
import type { JournalRecord } from '../delegates/journal';

export interface IfaceFacts {
  /** CIDRs (live and recorded) or bare addresses (network-status writes them without prefix). */
  ips: string[];
  mac?: string;
}

export interface RecordedAttachment extends IfaceFacts {
  network: string;
  ifname: string;
  isDefault: boolean;
  /** 'added', or 'planned' when ADD never finished it. */
  state: string;
}

export interface Recorded {
  source: 'plexus journal' | 'Multus cache';
  containerId: string;
  netns: string;
  pod?: { namespace: string; name: string; uid?: string };
  attachments: RecordedAttachment[];
}

export interface StatusEntry extends IfaceFacts {
  name: string;
  interface?: string;
  default: boolean;
}

export interface Row {
  ifname: string;
  network: string;
  recorded?: RecordedAttachment;
  live?: IfaceFacts;
  status?: StatusEntry;
  problems: string[];
}

/** The interface `ifname` of a CNI result (0.3.0+): its MAC and the addresses that point at it. */
export function resultFacts(result: JsonObject | undefined, ifname: string): IfaceFacts {
  if (!result) return { ips: [] };
  const ifaces = Array.isArray(result.interfaces) ? result.interfaces : [];
  const idx = ifaces.findIndex((i) => isObject(i) && i.name === ifname && typeof i.sandbox === 'string' && i.sandbox !== '');
  const iface = idx >= 0 ? (ifaces[idx] as JsonObject) : undefined;
  const ips = (Array.isArray(result.ips) ? result.ips : [])
    .filter((ip): ip is JsonObject => isObject(ip) && typeof ip.address === 'string')
    // An address without `interface` belongs to the attachment's only interface.
    .filter((ip) => ip.interface === undefined || ip.interface === idx)
    .map((ip) => ip.address as string);
  const out: IfaceFacts = { ips };
  if (iface && typeof iface.mac === 'string' && iface.mac !== '') out.mac = iface.mac.toLowerCase();
  return out;
}

export function fromJournal(rec: JournalRecord): Recorded {
  return {
    source: 'plexus journal',
    containerId: rec.containerId,
    netns: rec.netns,
    ...(rec.pod ? { pod: rec.pod } : {}),
    attachments: rec.attachments.map((a) => ({ network: a.network, ifname: a.ifname, isDefault: a.isDefault, state: a.state, ...resultFacts(a.result, a.ifname) })),
  };
}

function strings(v: Json | undefined): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/** k8s.v1.cni.cncf.io/network-status as written; entries that are not objects are skipped. */
export function parseNetworkStatus(text: string): StatusEntry[] {
  const v: unknown = JSON.parse(text);
  if (!Array.isArray(v)) throw new Error('network-status is not a JSON list');
  return v.filter(isObject).map((e) => {
    const out: StatusEntry = { name: typeof e.name === 'string' ? e.name : '', ips: strings(e.ips), default: e.default === true };
    if (typeof e.interface === 'string') out.interface = e.interface;
    if (typeof e.mac === 'string') out.mac = e.mac.toLowerCase();
    return out;
  });
}

const bare = (ip: string) => ip.split('/')[0] as string;
const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * One row per interface any source knows. `live` undefined: the netns is gone (every recorded
 * interface is then missing). `status` undefined: network-status was not read.
 */
export function compare(rec: Recorded, live: Map<string, IfaceFacts> | undefined, status: StatusEntry[] | undefined): Row[] {
  const rows: Row[] = [];
  for (const a of rec.attachments) {
    const row: Row = { ifname: a.ifname, network: a.network, recorded: a, problems: [] };
    if (a.state !== 'added') row.problems.push(`ADD did not finish this attachment (state ${a.state})`);
    const l = live?.get(a.ifname);
    if (l) row.live = l;
    if (live && !l) row.problems.push('interface missing from the pod netns');
    if (l) {
      const gone = a.ips.filter((ip) => !l.ips.includes(ip));
      if (gone.length) row.problems.push(`address ${gone.join(', ')} recorded but not on the interface`);
      if (a.mac && l.mac && a.mac !== l.mac) row.problems.push(`MAC differs: recorded ${a.mac}, live ${l.mac}`);
    }
    if (status) {
      const s = status.find((e) => e.interface === a.ifname);
      if (s) {
        row.status = s;
        if (!sameSet(s.ips.map(bare), a.ips.map(bare))) row.problems.push(`network-status ips ${s.ips.join(', ') || 'none'} differ from the recorded ${a.ips.map(bare).join(', ') || 'none'}`);
        if (s.name !== a.network) row.problems.push(`network-status names ${s.name}, the record ${a.network}`);
      } else if (a.state === 'added') row.problems.push('network-status has no entry for this attachment');
    }
    rows.push(row);
  }
  const known = new Set(rec.attachments.map((a) => a.ifname));
  for (const s of status ?? []) {
    if (s.interface !== undefined && known.has(s.interface)) continue;
    known.add(s.interface ?? '');
    rows.push({ ifname: s.interface ?? '-', network: s.name, status: s, ...(s.interface && live?.get(s.interface) ? { live: live.get(s.interface) as IfaceFacts } : {}), problems: ['network-status lists an attachment the record does not have'] });
  }
  for (const [ifname, l] of live ?? []) {
    // Not a problem by itself: a chained plugin or the runtime may add links plexus did not.
    if (!known.has(ifname)) rows.push({ ifname, network: '-', live: l, problems: [] });
  }
  return rows;
}
