// Planning the attachments of a pod: pure, from the resolved networks to the ordered list of
// (network, ifname, capability args, cni-args) that the journal records and the runner executes.
import { CniError, Code } from '../cni/errors';
import { ifnameProblem } from '../cni/env';
import { declaredCapabilities } from '../cni/netconf';
import type { JsonObject } from '../cni/validate';
import { cniDeviceInfoPath, withDeviceID } from './devices';
import type { AttachmentRecord } from './journal';
import type { NetworkSpec } from './networks';
import { npwg } from './selection';

export interface PlanInput {
  containerId: string;
  /** The runtime's CNI_IFNAME: the cluster network's interface. */
  ifname: string;
  /** CNI_ARGS as the runtime gave them. */
  args: string;
  /** The kubelet's runtimeConfig; only the cluster network receives it (NPWG §7.5). */
  runtimeConfig: JsonObject;
  networks: NetworkSpec[];
  deviceInfoDir: string;
  /** `lenient`: an undeclared request is passed as Multus passes it instead of failing (config key capabilityCheck). */
  capabilityCheck?: CapabilityCheck;
}

export type CapabilityCheck = 'strict' | 'lenient';

/** Capability args a selection element asks for, keyed as the CNI conventions name them. */
function requestedCapabilities(spec: NetworkSpec): JsonObject {
  const s = spec.selection;
  const out: JsonObject = {};
  if (!s) return out;
  if (s.ips) out.ips = s.ips;
  if (s.mac) out.mac = s.mac;
  if (s.portMappings) out.portMappings = s.portMappings.map((p) => ({ ...p }));
  if (s.bandwidth) out.bandwidth = { ...s.bandwidth };
  if (s.infinibandGuid) out.infinibandGUID = s.infinibandGuid;
  if (s.deviceID) out.deviceID = s.deviceID;
  return out;
}

// NPWG §4.1.2.1.3-10: a request for one of these MUST fail when no plugin of the network declares
// it; the section of each key, cited in the error.
const VERIFIED: Record<string, string> = { ips: '4.1.2.1.3', mac: '4.1.2.1.4', portMappings: '4.1.2.1.7', bandwidth: '4.1.2.1.8', infinibandGUID: '4.1.2.1.10' };

/**
 * Requests the network's plugins do not declare, as runtimeConfig keys. Strict (NPWG §4.1.2.1.3-10)
 * fails the attachment on any; lenient passes them the way Multus does (see MULTUS_CNI_ARGS).
 */
export function undeclaredRequests(spec: NetworkSpec): string[] {
  if (spec.isDefault) return [];
  const declared = declaredCapabilities(spec.net);
  const requested = requestedCapabilities(spec);
  return Object.keys(VERIFIED).filter((key) => requested[key] !== undefined && !declared.has(key));
}

// Multus adds CNI_ARGS IP=<ips joined by ","> and MAC=<mac> to every delegate "for backward
// compatibility", besides runtimeConfig, which libcni filters to declared capabilities. So, under
// Multus, an undeclared ips/mac request reaches the plugin through CNI_ARGS only (static appends
// IP= to its addresses, host-local asks for it, bridge/macvlan set MAC=), and an undeclared
// portMappings, bandwidth or infinibandGUID reaches nothing. Lenient mode does exactly that.
const MULTUS_CNI_ARGS: Record<string, (v: unknown) => string> = {
  ips: (v) => `IP=${(v as string[]).join(',')}`,
  mac: (v) => `MAC=${String(v)}`,
};

/** How lenient mode passes an undeclared request, for the warning event. */
export function lenientRoute(key: string): string {
  return key === 'ips' ? 'CNI_ARGS IP=' : key === 'mac' ? 'CNI_ARGS MAC=' : 'dropped, as libcni drops it under Multus';
}

/** Delegates parse CNI_ARGS strictly unless IgnoreUnknown is set, and ours carry K8S_POD_*. */
export function delegateArgs(args: string): string {
  if (/(^|;)IgnoreUnknown=/i.test(args)) return args;
  return args === '' ? 'IgnoreUnknown=1' : `IgnoreUnknown=1;${args}`;
}

export function planAttachments(input: PlanInput): AttachmentRecord[] {
  const used = new Map<string, string>();
  const args = delegateArgs(input.args);
  return input.networks.map((spec, index): AttachmentRecord => {
    const ifname = spec.isDefault ? input.ifname : (spec.selection?.interface ?? `net${index}`);
    const problem = ifnameProblem(ifname);
    if (problem) throw new CniError(Code.InvalidConfig, `network ${spec.network}: interface name ${JSON.stringify(ifname)} ${problem}`);
    const clash = used.get(ifname);
    if (clash !== undefined) {
      throw new CniError(Code.InvalidConfig, `network ${spec.network}: interface name ${JSON.stringify(ifname)} is already used by network ${clash}`);
    }
    used.set(ifname, spec.network);

    const declared = declaredCapabilities(spec.net);
    let capabilityArgs: JsonObject;
    let attArgs = args;
    if (spec.isDefault) {
      capabilityArgs = { ...input.runtimeConfig };
    } else {
      capabilityArgs = requestedCapabilities(spec);
      const undeclared = undeclaredRequests(spec);
      if (undeclared.length > 0 && input.capabilityCheck !== 'lenient') {
        const key = undeclared[0]!;
        throw new CniError(
          Code.UnsupportedField,
          `network ${spec.network}: the pod requests ${JSON.stringify(key)} but no plugin of this network declares the ${JSON.stringify(key)} capability (${npwg(VERIFIED[key]!)})`,
        );
      }
      for (const key of undeclared) {
        const route = MULTUS_CNI_ARGS[key];
        if (route) attArgs = `${attArgs};${route(capabilityArgs[key])}`;
        delete capabilityArgs[key];
      }
    }
    // A device of the NAD's resource wins over a deviceID the selection element asked for, as in
    // Multus. The journal keeps the injected bytes, so DEL hands the plugin the same device.
    if (spec.deviceID !== undefined) capabilityArgs.deviceID = spec.deviceID;
    // A file per attachment for DIS: offered to plugins that declare the capability, and (as
    // Multus does) made for every attachment with a device, whose plugin may know nothing of it.
    let deviceInfoFile: string | undefined;
    if (declared.has('CNIDeviceInfoFile') || spec.deviceID !== undefined) {
      deviceInfoFile = cniDeviceInfoPath(input.deviceInfoDir, spec.network, input.containerId, ifname);
      capabilityArgs.CNIDeviceInfoFile = deviceInfoFile;
    }
    // NPWG v1.3 §8: the IPAM is told the claim through args.cni (plexus's pool IPAM reads it there;
    // plugins that do not know the key ignore it, as they ignore any unknown args.cni key).
    const claim = spec.selection?.ipamClaimReference;
    const cniArgs = claim ? { ...(spec.selection?.cniArgs ?? {}), 'ipam-claim-reference': claim } : spec.selection?.cniArgs;
    return {
      index,
      network: spec.network,
      ifname,
      isDefault: spec.isDefault,
      config: spec.deviceID !== undefined ? withDeviceID(spec.net.bytes, spec.deviceID) : spec.net.bytes,
      capabilityArgs,
      cniArgs: cniArgs && Object.keys(cniArgs).length > 0 ? cniArgs : undefined,
      args: attArgs,
      state: 'planned',
      deviceInfoFile,
      ...(spec.deviceID !== undefined ? { resourceName: spec.resourceName, deviceID: spec.deviceID } : {}),
      defaultRoute: spec.selection?.defaultRoute,
    };
  });
}
