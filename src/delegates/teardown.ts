// Tearing attachments down in reverse, shared by DEL, a failed ADD's rollback and GC. Every
// attachment is attempted (NPWG §7.2); what could not be removed stays in the journal.
import { existsSync, rmSync } from 'node:fs';
import { delNetwork } from '../cni/api';
import { asCniError, CniError, Code, isTransient, PluginNotFoundError } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
import { log } from '../log';
import type { Context } from './context';
import { runtimeFor } from './context';
import { removeJournal, writeJournal, type AttachmentRecord, type JournalRecord } from './journal';
import { runsInProcess } from './invoke';
import { removeResultCache } from './results-cache';

export interface TeardownFailure {
  attachment: AttachmentRecord;
  error: CniError;
}


/**
 * DELs every attachment of `rec` (in reverse), removes their caches, and rewrites or removes the
 * journal so it holds exactly what is still attached. Returns the failures.
 */
export async function teardown(ctx: Context, rec: JournalRecord, netns: string): Promise<TeardownFailure[]> {
  await deletePodLinksAtOnce(rec, netns);
  const failures: TeardownFailure[] = [];
  const remaining = new Set(rec.attachments);
  const removeOne = async (att: AttachmentRecord): Promise<void> => {
    try {
      const net = parseNetworkConfig(att.config, `journal ${rec.containerId} network ${att.network}`);
      await delNetwork(net, runtimeFor(ctx, att, netns, rec.containerId), ctx.invoke, att.result);
      removeResultCache(ctx.conf.cniDir, net.name, rec.containerId, att.ifname);
      if (att.deviceInfoFile) rmSync(att.deviceInfoFile, { force: true });
      remaining.delete(att);
    } catch (err) {
      const error = asCniError(err);
      if (att.state === 'planned' && (!isTransient(error) || error instanceof PluginNotFoundError)) {
        // Its ADD never succeeded and its plugin rejects the same config on DEL (a master that
        // does not exist, say) or does not exist at all (a NAD naming a plugin this node lacks):
        // keeping it would pin the pod forever for something never created.
        log.error('DEL of an attachment whose ADD had failed was refused; dropping it', { network: att.network, ifname: att.ifname, code: error.code, error: error.message });
        remaining.delete(att);
        return;
      }
      log.error('delegate DEL failed', { network: att.network, ifname: att.ifname, code: error.code, error: error.message });
      failures.push({ attachment: att, error });
    }
  };
  const inProcess = (att: AttachmentRecord) => {
    const path = runtimeFor(ctx, att, netns, rec.containerId).path;
    const types = pluginTypes(att.config);
    return types.length > 0 && types.every((t) => runsInProcess(t, path));
  };
  for (const batch of delBatches([...rec.attachments].reverse(), inProcess)) {
    await Promise.all(batch.map(removeOne));
  }
  // In the journal's (reverse) order whatever order concurrent DELs failed in.
  failures.sort((a, b) => rec.attachments.indexOf(b.attachment) - rec.attachments.indexOf(a.attachment));
  if (remaining.size === 0) {
    removeJournal(ctx.conf.cniDir, rec.containerId);
  } else {
    writeJournal(ctx.conf.cniDir, { ...rec, attachments: rec.attachments.filter((a) => remaining.has(a)) });
  }
  return failures;
}

/**
 * Groups attachments (already in DEL order) into batches whose DELs may run together: a run of
 * neighbours that `together` accepts forms one batch, anything else is a batch of its own.
 * Attachments run wholly by plexus's own plugins in this process share nothing (each has its own
 * links, and IPAM locks its store), so their DELs, mostly waiting on IPAM plugins, overlap. A
 * plugin exec'd keeps Multus's one-at-a-time reverse order, which foreign plugins may rely on.
 */
export function delBatches<T>(ordered: readonly T[], together: (item: T) => boolean): T[][] {
  const batches: T[][] = [];
  let run: T[] = [];
  for (const item of ordered) {
    if (together(item)) {
      run.push(item);
      continue;
    }
    if (run.length > 0) batches.push(run);
    run = [];
    batches.push([item]);
  }
  if (run.length > 0) batches.push(run);
  return batches;
}

function pluginTypes(config: string): string[] {
  try {
    return parseNetworkConfig(config, 'journal').plugins.map((p) => (typeof p.type === 'string' ? p.type : ''));
  } catch {
    return [''];
  }
}

/**
 * Whether an attachment's link may go in the pod-wide delete before its plugins' DELs run: every
 * plugin of its chain only deletes the link on DEL (LINK_ONLY_DEL), and no plugin's IPAM needs the
 * link for its own DEL (dhcp sends its release through it: plugins/common/ipam-link.ts). Those
 * attachments keep their link until their plugin's DEL, which runs IPAM before deleting it.
 */
function linkGoesFirst(config: string, ipamNeedsLink: (type: string | undefined) => boolean): boolean {
  let plugins;
  try {
    plugins = parseNetworkConfig(config, 'journal').plugins;
  } catch {
    return false;
  }
  return plugins.every((p) => {
    const ipam = p.ipam;
    const ipamType = ipam !== null && typeof ipam === 'object' && !Array.isArray(ipam) && typeof ipam.type === 'string' ? ipam.type : undefined;
    return typeof p.type === 'string' && LINK_ONLY_DEL.has(p.type) && !ipamNeedsLink(ipamType);
  });
}

// Plugins whose DEL deletes the container interface and tolerates finding it already gone: the
// reference plugins of these names and plexus's own. A chain with anything else (tuning restores
// a backup onto the link, bandwidth needs the host veth) keeps its links for its own DEL.
const LINK_ONLY_DEL = new Set(['macvlan', 'ipvlan', 'bridge', 'ptp', 'vlan']);
// Virtual kinds whose deletion is what the plugin's DEL does anyway. A physical device or a VF
// (no kind) must be given back to the host, never deleted.
const DELETABLE_KINDS = new Set(['veth', 'macvlan', 'ipvlan', 'vlan', 'macvtap']);

/**
 * The kernel pays its per-device teardown (synchronize_net, an RCU barrier) once per delete
 * request, so a pod's container-side links go in ONE RTM_DELLINK by netdev group before the
 * delegates' DELs run: four veths take ~12 ms that way against ~57 ms one by one. And DEL goes on
 * as soon as the kernel has announced the links gone, a few ms in, while it finishes freeing them
 * on a threadpool thread (deleteLinksInGroupEarly). Each delegate's DEL still runs afterwards,
 * finds its link gone (which DEL must tolerate) and releases the rest (IPAM, rules). The result is
 * what the runtime's own deletion of the namespace would do to these links a moment later.
 */
async function deletePodLinksAtOnce(rec: JournalRecord, netns: string): Promise<void> {
  if (netns === '' || !existsSync(netns)) return;
  const { ipamNeedsLink } = await import('../../plugins/common/ipam-link');
  const names = new Set(rec.attachments.filter((a) => linkGoesFirst(a.config, ipamNeedsLink)).map((a) => a.ifname));
  if (names.size === 0) return;
  const [{ Netns, listLinks, setGroup, deleteLinksInGroupEarly }, { TEARDOWN_GROUP }] = await Promise.all([import('../netns'), import('../../plugins/common/group')]);
  try {
    const deletion = Netns.with(netns, (ns) => {
      const tagged: number[] = [];
      for (const link of listLinks(ns)) {
        if (!names.has(link.name) || link.kind === null || !DELETABLE_KINDS.has(link.kind)) continue;
        setGroup(ns, link.index, TEARDOWN_GROUP);
        tagged.push(link.index);
      }
      return tagged.length > 0 ? deleteLinksInGroupEarly(ns, TEARDOWN_GROUP, tagged) : undefined;
    });
    if (!deletion) return;
    // `gone` carries any failure; this only logs when the kernel is done.
    deletion.finished.then(
      () => log.phase('kernel finished deleting pod links'),
      () => undefined,
    );
    await deletion.gone;
    log.phase('pod links deleted in one request', { links: names.size });
  } catch (err) {
    log.warn('group delete of pod links failed; each plugin deletes its own', { netns, error: (err as Error).message });
  }
}

/** One error for the runtime naming every attachment that could not be removed. */
export function teardownError(failures: TeardownFailure[], what: string): CniError {
  const first = failures[0];
  if (!first) return new CniError(Code.Internal, `${what}: no failure recorded`);
  const parts = failures.map((f) => `${f.attachment.network} (${f.attachment.ifname}): ${f.error.message}`);
  const code = failures.some((f) => isTransient(f.error)) ? Code.TryAgainLater : first.error.code;
  return new CniError(code, `${what}: ${failures.length} attachment(s) could not be removed and stay journaled for a retry: ${parts.join('; ')}`);
}
