// Tearing attachments down in reverse, shared by DEL, a failed ADD's rollback and GC. Every
// attachment is attempted (NPWG §7.2); what could not be removed stays in the journal.
import { rmSync } from 'node:fs';
import { delNetwork } from '../cni/api';
import { asCniError, CniError, Code, isTransient } from '../cni/errors';
import { parseNetworkConfig } from '../cni/netconf';
import { log } from '../log';
import type { Context } from './context';
import { runtimeFor } from './context';
import { removeJournal, writeJournal, type AttachmentRecord, type JournalRecord } from './journal';
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
        log.error('DEL of an attachment whose ADD had failed was refused; dropping it', { network: att.network, ifname: att.ifname, code: error.code, msg: error.message });
        remaining.delete(att);
        continue;
      }
      log.error('delegate DEL failed', { network: att.network, ifname: att.ifname, code: error.code, msg: error.message });
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

/** One error for the runtime naming every attachment that could not be removed. */
export function teardownError(failures: TeardownFailure[], what: string): CniError {
  const first = failures[0];
  if (!first) return new CniError(Code.Internal, `${what}: no failure recorded`);
  const parts = failures.map((f) => `${f.attachment.network} (${f.attachment.ifname}): ${f.error.message}`);
  const code = failures.some((f) => isTransient(f.error)) ? Code.TryAgainLater : first.error.code;
  return new CniError(code, `${what}: ${failures.length} attachment(s) could not be removed and stay journaled for a retry: ${parts.join('; ')}`);
}
