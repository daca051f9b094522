// Device-plugin networks, the pure half: which attachment gets which of the pod's devices, how the
// deviceID goes into the delegate's config, where the device-info files live, and what a valid
// device-info file is (Device Information Specification 1.1). The kubelet lookup is in
// src/k8s/pod-resources.ts, the file copies in device-info.ts.
import { join } from 'node:path';
import { CniError, Code } from '../cni/errors';
import { describe, isObject, type JsonObject } from '../cni/validate';
import type { NetworkSpec } from './networks';

export const RESOURCE_NAME_ANNOTATION = 'k8s.v1.cni.cncf.io/resourceName';

/** Device IDs the pod holds, by resource name (sorted, as Multus's SortDeviceIDs does). */
export type HeldDevices = ReadonlyMap<string, readonly string[]>;

export function needsDevices(specs: readonly NetworkSpec[]): boolean {
  return specs.some((s) => s.resourceName !== undefined && s.resourceName !== '');
}

/**
 * The deviceID of each network, in order: the n-th network naming a resource gets that resource's
 * n-th device (Multus: entry.Index++), so two attachments of one resource get distinct devices and
 * the same ones on every ADD. A network the pod holds no device for is an error: the delegate
 * would otherwise run without the device its NAD exists to hand out (Multus runs it without one
 * and lets the plugin fail with a less helpful message).
 */
export function assignDevices(specs: readonly NetworkSpec[], held: HeldDevices, pod: string): (string | undefined)[] {
  const used = new Map<string, number>();
  return specs.map((spec) => {
    const resource = spec.resourceName;
    if (resource === undefined || resource === '') return undefined;
    const ids = held.get(resource) ?? [];
    const n = used.get(resource) ?? 0;
    const id = ids[n];
    if (id === undefined) {
      const had = ids.length === 0 ? 'holds no device of it' : `holds ${ids.length} device(s) of it, all taken by earlier networks of the same resource`;
      throw new CniError(
        Code.InvalidConfig,
        `network ${spec.network}: its network-attachment-definition names resource ${JSON.stringify(resource)} (${RESOURCE_NAME_ANNOTATION}), but pod ${pod} ${had}: request the resource in the pod's containers`,
      );
    }
    used.set(resource, n + 1);
    return id;
  });
}

/**
 * The delegate config with `deviceID` and `pciBusID` set in the conf, or in every plugin of a
 * conflist, as Multus does (pkg/types/conf.go delegateAddDeviceID, addDeviceIDInConfList): SR-IOV
 * and host-device read one or the other.
 */
export function withDeviceID(config: string, deviceID: string): string {
  const obj = JSON.parse(config) as JsonObject;
  const plugins = Array.isArray(obj.plugins) ? obj.plugins.filter(isObject) : [obj];
  for (const p of plugins) {
    p.deviceID = deviceID;
    p.pciBusID = deviceID;
  }
  return JSON.stringify(obj);
}

/** Multus's CNI file name: `<ns>-<nad>-<containerID>_<ifname>` (NAD client GetCNIDeviceInfoPath, `/` → `-`). */
export function cniDeviceInfoPath(dir: string, network: string, containerId: string, ifname: string): string {
  return join(dir, `${network}-${containerId}_${ifname}`.replaceAll('/', '-'));
}

/** Where the device plugin leaves its file (DIS §4.1; NAD client getDPDeviceInfoPath). */
export function dpDeviceInfoPath(dir: string, resourceName: string, deviceID: string): string {
  return join(dir, `${resourceName.replaceAll('/', '-')}-${deviceID.replaceAll('/', '-')}-device.json`);
}

const TYPES = ['pci', 'vdpa', 'vhost-user', 'memif'];

/**
 * A device-info file's content, checked as far as DIS §3 requires: a JSON object with `type` and
 * `version`, and the object its type names. Fields it does not know are kept: a newer spec's
 * fields belong in network-status as the plugin wrote them.
 */
export function parseDeviceInfo(text: string, path: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(Code.DecodeFailure, `device-info file ${path}: not JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new CniError(Code.DecodeFailure, `device-info file ${path}: must be a JSON object, got ${describe(v)}`);
  const type = v.type;
  if (typeof type !== 'string' || !TYPES.includes(type)) {
    throw new CniError(Code.DecodeFailure, `device-info file ${path}: type: must be one of ${TYPES.join(', ')}, got ${describe(type)}`);
  }
  if (typeof v.version !== 'string' || v.version === '') {
    throw new CniError(Code.DecodeFailure, `device-info file ${path}: version: must be a non-empty string, got ${describe(v.version)}`);
  }
  const detail = v[type];
  if (detail !== undefined && !isObject(detail)) {
    throw new CniError(Code.DecodeFailure, `device-info file ${path}: ${type}: must be an object, got ${describe(detail)}`);
  }
  if (type === 'pci' && (!isObject(detail) || typeof detail['pci-address'] !== 'string' || detail['pci-address'] === '')) {
    throw new CniError(Code.DecodeFailure, `device-info file ${path}: pci.pci-address: required for type pci`);
  }
  return v;
}
