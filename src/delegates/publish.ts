// Writing k8s.v1.cni.cncf.io/network-status and the AddedInterface events after ADD.
import { parseResult } from '../cni/result';
import type { JsonObject } from '../cni/validate';
import type { ClusterApi } from './cluster';
import type { AttachmentRecord, JournalRecord, PodRef } from './journal';
import { formatNetworkStatus, networkStatusEntry } from './status';

export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';

export function statusEntries(rec: JournalRecord, deviceInfo: (a: AttachmentRecord) => JsonObject | undefined) {
  return rec.attachments.map((a) =>
    networkStatusEntry({
      name: a.network,
      isDefault: a.isDefault,
      result: a.result ? parseResult(a.result, `network ${a.network} result`) : undefined,
      deviceInfo: deviceInfo(a),
    }),
  );
}

export async function publishNetworkStatus(
  api: ClusterApi,
  pod: PodRef,
  rec: JournalRecord,
  deviceInfo: (a: AttachmentRecord) => JsonObject | undefined,
): Promise<void> {
  const entries = statusEntries(rec, deviceInfo);
  // The status is what consumers rely on, and a failure to write it fails the ADD: it goes first.
  await api.patchPodAnnotations(pod, { [NETWORK_STATUS_ANNOTATION]: formatNetworkStatus(entries) });
  const events = rec.attachments
    .map((a, i) => ({ a, e: entries[i] }))
    .filter(({ e }) => e && e.interface)
    .map(({ a, e }) =>
      api
        .podEvent(pod, { type: 'Normal', reason: 'AddedInterface', message: `Add ${a.ifname} [${(e?.ips ?? []).join(',')}] from ${a.network}` })
        .catch(() => undefined),
    );
  // Events are informational: their failures are ignored and the result does not wait for them.
  // A one-shot process still finishes sending them before it exits (the sockets keep it alive);
  // the daemon answers the runtime at once and sends them after.
  void Promise.all(events);
}
