// Tearing attachments down in reverse, shared by DEL, a failed ADD's rollback and GC. Every
// attachment is attempted (NPWG §7.2); what could not be removed stays in the journal.
import { existsSync, rmSync } from 'node:fs';
import { delNetwork } from '../cni/api';
import { asCniError, CniError, Code, isTransient } from '../cni/errors';
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
  await deletePodLinksAtOnce(ctx, rec, netns);
  const failures: TeardownFailure[] = [];
  const remaining = new Set(rec.attachments);
  for (const att of [...rec.attachments].reverse()) {
    try {
      const net = parseNetworkConfig(att.config, `journal ${rec.containerId} network ${att.network}`);
      await delNetwork(net, runtimeFor(ctx, att, netns, rec.containerId), ctx.invoke, att.result);
      removeResultCache(ctx.conf.cniDir, net.name, rec.containerId, att.ifname);
      if (att.deviceInfoFile) rmSync(att.deviceInfoFile, { force: true });
      remaining.delete(att);
    } catch (err) {
      const error = asCniError(err);
      if (att.state === 'planned' && !isTransient(error)) {
        // Its ADD never succeeded and its plugin rejects the same config on DEL (a master that
        // does not exist, say): keeping it would pin the pod forever for something never created.
        log.error('DEL of an attachment whose ADD had failed was refused; dropping it', { network: att.network, ifname: att.ifname, code: error.code, error: error.message });
        remaining.delete(att);
        continue;
      }
      log.error('delegate DEL failed', { network: att.network, ifname: att.ifname, code: error.code, error: error.message });
      failures.push({ attachment: att, error });
    }
  }
  if (remaining.size === 0) {
    removeJournal(ctx.conf.cniDir, rec.containerId);
  } else {
    writeJournal(ctx.conf.cniDir, { ...rec, attachments: rec.attachments.filter((a) => remaining.has(a)) });
  }
  return failures;
}

function pluginTypes(config: string): string[] {
  try {
    return parseNetworkConfig(config, 'journal').plugins.map((p) => (typeof p.type === 'string' ? p.type : ''));
  } catch {
    return [''];
  }
}

/**
 * When two or more attachments are made only of built-in plugins running in this process, their
 * container-side links (tagged with POD_LINK_GROUP at ADD) go in ONE RTM_DELLINK: the kernel's
 * per-device teardown is then paid once. Each plugin's own DEL still runs afterwards, finds its
 * link gone (which DEL tolerates) and releases the rest (IPAM, rules). Host-device is never
 * tagged, so a physical device is given back, not destroyed.
 */
async function deletePodLinksAtOnce(ctx: Context, rec: JournalRecord, netns: string): Promise<void> {
  if (netns === '' || !existsSync(netns)) return;
  const path = [ctx.conf.binDir, ...ctx.env.path];
  const grouped = rec.attachments.filter((a) => pluginTypes(a.config).every((t) => t !== 'host-device' && runsInProcess(t, path)));
  if (grouped.length < 2) return;
  const [{ Netns, deleteLinksInGroup }, { POD_LINK_GROUP }] = await Promise.all([import('../netns'), import('../../plugins/common/group')]);
  try {
    Netns.with(netns, (ns) => deleteLinksInGroup(ns, POD_LINK_GROUP));
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
