// Writing k8s.v1.cni.cncf.io/network-status and the AddedInterface events after ADD.
import { parseResult } from '../cni/result';
import type { JsonObject } from '../cni/validate';
import type { ClusterApi } from './cluster';
import type { AttachmentRecord, JournalRecord, PodRef } from './journal';
import { formatNetworkStatus, networkStatusEntry } from './status';

export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';

function entryOf(a: AttachmentRecord, deviceInfo: JsonObject | undefined) {
  return networkStatusEntry({
    name: a.network,
    isDefault: a.isDefault,
    result: a.result ? parseResult(a.result, `network ${a.network} result`) : undefined,
    deviceInfo,
  });
}

export function statusEntries(rec: JournalRecord, deviceInfo: (a: AttachmentRecord) => JsonObject | undefined) {
  return rec.attachments.map((a) => entryOf(a, deviceInfo(a)));
}

/** Writes network-status; a failure fails the ADD, as consumers rely on it. */
export async function publishNetworkStatus(
  api: ClusterApi,
  pod: PodRef,
  rec: JournalRecord,
  deviceInfo: (a: AttachmentRecord) => JsonObject | undefined,
): Promise<void> {
  await api.patchPodAnnotations(pod, { [NETWORK_STATUS_ANNOTATION]: formatNetworkStatus(statusEntries(rec, deviceInfo)) });
}

/**
 * The AddedInterface event of one attachment, sent as soon as its delegate is done (Multus's
 * order), so the POST overlaps the next delegates instead of queueing after network-status.
 * Events are informational: failures are ignored and nobody waits for them. A one-shot process
 * still sends them before it exits (the socket keeps it alive); the daemon sends them after
 * answering.
 */
export function announceAttachment(api: ClusterApi, pod: PodRef, a: AttachmentRecord): void {
  const e = entryOf(a, undefined);
  if (!e.interface) return;
  void api
    .podEvent(pod, { type: 'Normal', reason: 'AddedInterface', message: `Add ${a.ifname} [${(e.ips ?? []).join(',')}] from ${a.network}` })
    .catch(() => undefined);
}
