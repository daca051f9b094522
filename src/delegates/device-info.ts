// Device-info files (Device Information Specification 1.1), the effectful half: the device
// plugin's file copied to the attachment's CNI file before its delegate runs (DIS §4.2), and the
// CNI file read back after ADD for network-status (DIS §6.1.1).
//
// A missing file is normal (not every device plugin writes one) and is skipped. A file that is
// not valid device-info does not fail the ADD either, as in Multus: the pod's network works, and
// failing it would hold every pod of a resource hostage to one bad file. Unlike Multus, which
// only logs at debug level, the attachment's network-status carries no device-info and the
// problem is reported where the pod's owner looks: a Warning event on the pod and the log.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoOf } from '../cni/errors';
import type { JsonObject } from '../cni/validate';
import { dpDeviceInfoPath, parseDeviceInfo } from './devices';
import type { AttachmentRecord } from './journal';

/** A device-info file that was present but unusable, for the pod's events. */
export interface DeviceInfoProblem {
  attachment: AttachmentRecord;
  message: string;
}

export type Loaded = { info: JsonObject } | { problem: string } | undefined;

/** The file's device-info; undefined when there is no file, a problem when it is unreadable or invalid. */
export function loadDeviceInfo(path: string): Loaded {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    return { problem: `device-info file ${path}: ${(err as Error).message}` };
  }
  try {
    return { info: parseDeviceInfo(text, path) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/**
 * Copies the device plugin's file for the attachment's device to its CNI file (atomically, so a
 * plugin never reads half of it). Returns a problem when the device plugin's file is invalid.
 */
export function copyDevicePluginInfo(dpDir: string, att: AttachmentRecord): DeviceInfoProblem | undefined {
  if (!att.deviceInfoFile || !att.resourceName || !att.deviceID) return undefined;
  const src = dpDeviceInfoPath(dpDir, att.resourceName, att.deviceID);
  const loaded = loadDeviceInfo(src);
  if (loaded === undefined) return undefined;
  if ('problem' in loaded) return { attachment: att, message: `${loaded.problem}; not copied to ${att.deviceInfoFile}` };
  mkdirSync(dirname(att.deviceInfoFile), { recursive: true, mode: 0o755 });
  const tmp = `${att.deviceInfoFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(loaded.info), { mode: 0o444 });
  renameSync(tmp, att.deviceInfoFile);
  return undefined;
}

/** Each attachment's device-info for network-status, and the files that could not be used. */
export function readDeviceInfos(attachments: readonly AttachmentRecord[]): { infos: Map<AttachmentRecord, JsonObject>; problems: DeviceInfoProblem[] } {
  const infos = new Map<AttachmentRecord, JsonObject>();
  const problems: DeviceInfoProblem[] = [];
  for (const att of attachments) {
    if (!att.deviceInfoFile) continue;
    const loaded = loadDeviceInfo(att.deviceInfoFile);
    if (loaded === undefined) continue;
    if ('problem' in loaded) problems.push({ attachment: att, message: loaded.problem });
    else infos.set(att, loaded.info);
  }
  return { infos, problems };
}
