// Planning the attachments of a pod: pure, from the resolved networks to the ordered list of
// (network, ifname, capability args, cni-args) that the journal records and the runner executes.
import { CniError, Code } from '../cni/errors';
import { ifnameProblem } from '../cni/env';
import { declaredCapabilities } from '../cni/netconf';
import type { JsonObject } from '../cni/validate';
import type { AttachmentRecord } from './journal';
import type { NetworkSpec } from './networks';

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
  podNamespace?: string;
  podName?: string;
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

// NPWG §4.1.2.1.3-10: a request for one of these MUST fail when no plugin of the network declares it.
const VERIFIED = ['ips', 'mac', 'portMappings', 'bandwidth', 'infinibandGUID'];

/**
 * Requests the network's plugins do not declare, as runtimeConfig keys. Strict (NPWG §4.1.2.1.3-10)
 * fails the attachment on any; lenient passes them the way Multus does (see MULTUS_CNI_ARGS).
 */
export function undeclaredRequests(spec: NetworkSpec): string[] {
  if (spec.isDefault) return [];
  const declared = declaredCapabilities(spec.net);
  const requested = requestedCapabilities(spec);
  return VERIFIED.filter((key) => requested[key] !== undefined && !declared.has(key));
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

export function deviceInfoPath(dir: string, podNamespace: string, podName: string, containerId: string, ifname: string): string {
  return `${dir}/${podNamespace}-${podName}-${containerId}_${ifname}`;
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
        const key = JSON.stringify(undeclared[0]);
        throw new CniError(Code.UnsupportedField, `network ${spec.network}: the pod requests ${key} but no plugin of this network declares the ${key} capability`);
      }
      for (const key of undeclared) {
        const route = MULTUS_CNI_ARGS[key];
        if (route) attArgs = `${attArgs};${route(capabilityArgs[key])}`;
        delete capabilityArgs[key];
      }
    }
    let deviceInfoFile: string | undefined;
    if (declared.has('CNIDeviceInfoFile') && input.podNamespace && input.podName) {
      deviceInfoFile = deviceInfoPath(input.deviceInfoDir, input.podNamespace, input.podName, input.containerId, ifname);
      capabilityArgs.CNIDeviceInfoFile = deviceInfoFile;
    }
    const cniArgs = spec.selection?.cniArgs;
    return {
      index,
      network: spec.network,
      ifname,
      isDefault: spec.isDefault,
      config: spec.net.bytes,
      capabilityArgs,
      cniArgs: cniArgs && Object.keys(cniArgs).length > 0 ? cniArgs : undefined,
      args: attArgs,
      state: 'planned',
      deviceInfoFile,
      defaultRoute: spec.selection?.defaultRoute,
    };
  });
}
