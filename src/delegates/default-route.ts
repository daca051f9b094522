// NPWG §4.1.2.1.9 `default-route`: the selected attachment becomes the pod's default route and
// the default route is cleared from every other attachment. Unlike Multus, several gateways per
// family are kept, one route each with metrics in the order given (the spec's "MAY").
import { CniError, Code } from '../cni/errors';
import { formatResult, parseResult } from '../cni/result';
import type { CniRoute } from '../cni/types';
import type { JsonObject } from '../cni/validate';
import type { AttachmentRecord, JournalRecord } from './journal';

const DEFAULT_DST = { 4: '0.0.0.0/0', 6: '::/0' } as const;

function familyOf(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

function isDefault(dst: string): boolean {
  return dst.endsWith('/0');
}

/** Rewrites the journaled results so DEL, CHECK and network-status see the routes as they are. */
function rewriteResult(att: AttachmentRecord, families: Set<4 | 6>, add: CniRoute[]): void {
  if (!att.result) return;
  const version = typeof att.result.cniVersion === 'string' ? att.result.cniVersion : '1.0.0';
  const r = parseResult(att.result, `network ${att.network} result`);
  const kept = (r.routes ?? []).filter((rt) => !(isDefault(rt.dst) && families.has(familyOf(rt.dst))));
  r.routes = [...kept, ...add];
  att.result = formatResult(r, version) as JsonObject;
}

export async function applyDefaultRoute(rec: JournalRecord): Promise<void> {
  const chosen = rec.attachments.find((a) => a.defaultRoute !== undefined);
  if (!chosen || rec.netns === '') return;
  const gateways = chosen.defaultRoute ?? [];
  const own = parseResult(chosen.result ?? { cniVersion: '1.0.0' }, `network ${chosen.network} result`).routes ?? [];
  // With no gateway listed, the attachment keeps the default route its own IPAM gave it.
  const families = new Set<4 | 6>(gateways.length > 0 ? gateways.map(familyOf) : own.filter((r) => isDefault(r.dst)).map((r) => familyOf(r.dst)));
  if (families.size === 0) return;
  const { Netns, linkByName, listRoutes, delRoute, addRoute } = await import('../netns');
  Netns.with(rec.netns, (ns) => {
    const link = linkByName(ns, chosen.ifname);
    if (!link) throw new CniError(Code.Internal, `default-route: interface ${chosen.ifname} is missing`);
    for (const fam of families) {
      for (const r of listRoutes(ns, { family: fam, table: 254 })) {
        const mine = r.oif === link.index && gateways.length === 0;
        if (isDefault(r.dst) && !mine) delRoute(ns, { dst: r.dst, gateway: r.gateway ?? undefined, oif: r.oif || undefined, table: 254, priority: r.priority ?? undefined });
      }
    }
    gateways.forEach((gw, i) => addRoute(ns, { dst: DEFAULT_DST[familyOf(gw)], gateway: gw, oif: link.index, priority: i }));
  });
  const added: CniRoute[] = gateways.map((gw, i) => ({ dst: DEFAULT_DST[familyOf(gw)], gw, ...(i > 0 ? { priority: i } : {}) }));
  for (const att of rec.attachments) {
    if (att === chosen) {
      if (gateways.length > 0) rewriteResult(att, families, added);
    } else {
      rewriteResult(att, families, []);
    }
  }
}
