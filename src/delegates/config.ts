// The meta-plugin's own configuration: a Multus thin-plugin config works with only `type` changed.
import { CniError, Code } from '../cni/errors';
import { Fields, isObject, parseObject, type Json, type JsonObject } from '../cni/validate';
import { isLevel, type Level } from '../log';
import type { RotateOptions } from '../log-rotate';
import type { CapabilityCheck } from './plan';

export interface PlexusConf {
  raw: JsonObject;
  cniVersion: string;
  name: string;
  type: string;
  clusterNetwork?: string;
  defaultNetworks: string[];
  /** Inline delegate configs (conf or conflist); the first is the cluster network. */
  delegates: JsonObject[];
  kubeconfig?: string;
  confDir: string;
  cniDir: string;
  binDir: string;
  namespaceIsolation: boolean;
  globalNamespaces: string[];
  multusNamespace: string;
  systemNamespaces: string[];
  readinessIndicatorFile?: string;
  readinessTimeoutMs: number;
  logFile?: string;
  logLevel: Level;
  logToStderr: boolean;
  /** Multus's logOptions: rotation of logFile. */
  logOptions?: RotateOptions;
  deviceInfoDir: string;
  /** Where device plugins leave their device-info files (DIS §4.1). */
  dpDeviceInfoDir: string;
  /** The kubelet's PodResources socket, asked for NADs that name a resource. */
  podResourcesSocket: string;
  podResourcesTimeoutMs: number;
  apiTimeoutMs: number;
  /** What an undeclared ips/mac/... request does: fail (strict, the default) or pass as Multus does. */
  capabilityCheck: CapabilityCheck;
  runtimeConfig: JsonObject;
  prevResult?: JsonObject;
  validAttachments?: { containerId: string; ifname: string }[];
}

export const DEFAULTS = {
  confDir: '/etc/cni/multus/net.d',
  cniDir: '/var/lib/cni/multus',
  binDir: '/opt/cni/bin',
  multusNamespace: 'kube-system',
  deviceInfoDir: '/var/run/k8s.cni.cncf.io/devinfo/cni',
  dpDeviceInfoDir: '/var/run/k8s.cni.cncf.io/devinfo/dp',
  podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
} as const;

function splitNamespaces(v: Json | undefined, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  // Multus documents globalNamespaces as a comma-separated string; accept a list too.
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (Array.isArray(v) && v.every((s): s is string => typeof s === 'string')) return v;
  throw new CniError(Code.InvalidConfig, `${field}: must be a comma-separated string or a list of strings`);
}

function validAttachments(f: Fields): { containerId: string; ifname: string }[] | undefined {
  // libcni sends both keys: the spec-v1.1.0 tag named it cni.dev/attachments (erratum #1101).
  const lists = ['cni.dev/valid-attachments', 'cni.dev/attachments'].filter((k) => f.has(k));
  if (lists.length === 0) return undefined;
  const out: { containerId: string; ifname: string }[] = [];
  for (const key of lists) {
    f.arr(key).forEach((item, i) => {
      if (!isObject(item)) throw new CniError(Code.InvalidConfig, `${key}[${i}]: must be an object`);
      const it = new Fields(item, `${key}[${i}]`);
      out.push({ containerId: it.str('containerID'), ifname: it.str('ifname') });
    });
  }
  return out;
}

/** Multus's logOptions (lumberjack): maxAge days, maxSize MB, maxBackups, compress. */
export function parseLogOptions(f: Fields): RotateOptions | undefined {
  const o = f.optObj('logOptions');
  if (!o) return undefined;
  const out: RotateOptions = {};
  const maxAge = o.optInt('maxAge', 0, 36500);
  const maxSize = o.optInt('maxSize', 0, 1024 * 1024);
  const maxBackups = o.optInt('maxBackups', 0, 100000);
  if (maxAge !== undefined) out.maxAge = maxAge;
  if (maxSize !== undefined) out.maxSize = maxSize;
  if (maxBackups !== undefined) out.maxBackups = maxBackups;
  if (o.has('compress')) out.compress = o.bool('compress', false);
  return out;
}

export function parseConf(stdin: string): PlexusConf {
  if (stdin.trim() === '') throw new CniError(Code.DecodeFailure, 'network configuration on stdin is empty');
  const raw = parseObject(stdin, 'network configuration on stdin');
  const f = new Fields(raw, '');
  const delegates = (f.optArr('delegates') ?? []).map((d, i) => {
    if (!isObject(d)) throw new CniError(Code.InvalidConfig, `delegates[${i}]: must be an object`);
    if (typeof d.type !== 'string' && !Array.isArray(d.plugins)) {
      throw new CniError(Code.InvalidConfig, `delegates[${i}]: must have "type" (a conf) or "plugins" (a conflist)`);
    }
    return d;
  });
  const clusterNetwork = f.optStr('clusterNetwork');
  if (delegates.length === 0 && (clusterNetwork === undefined || clusterNetwork === '')) {
    throw new CniError(Code.InvalidConfig, 'clusterNetwork or delegates: one is required to attach the cluster default network');
  }
  const logLevel = f.optStr('logLevel') ?? 'error';
  if (!isLevel(logLevel)) throw new CniError(Code.InvalidConfig, `logLevel: unknown level ${JSON.stringify(logLevel)} (debug, verbose, info, warn, error, panic)`);
  const kubeconfig = f.optStr('kubeconfig');
  const capabilityCheck = f.optStr('capabilityCheck') ?? 'strict';
  if (capabilityCheck !== 'strict' && capabilityCheck !== 'lenient') {
    throw new CniError(Code.InvalidConfig, `capabilityCheck: must be "strict" (the default) or "lenient", not ${JSON.stringify(capabilityCheck)}`);
  }
  return {
    raw,
    cniVersion: f.nonEmpty('cniVersion'),
    name: f.nonEmpty('name'),
    type: f.nonEmpty('type'),
    clusterNetwork: delegates.length > 0 ? undefined : clusterNetwork,
    defaultNetworks: f.optStrList('defaultNetworks') ?? [],
    delegates,
    kubeconfig: kubeconfig === '' ? undefined : kubeconfig,
    confDir: f.optStr('confDir') || DEFAULTS.confDir,
    cniDir: f.optStr('cniDir') || DEFAULTS.cniDir,
    binDir: f.optStr('binDir') || DEFAULTS.binDir,
    namespaceIsolation: f.bool('namespaceIsolation', false),
    globalNamespaces: splitNamespaces(raw.globalNamespaces, 'globalNamespaces') ?? ['default'],
    multusNamespace: f.optStr('multusNamespace') || DEFAULTS.multusNamespace,
    systemNamespaces: splitNamespaces(raw.systemNamespaces, 'systemNamespaces') ?? ['kube-system'],
    readinessIndicatorFile: f.optStr('readinessindicatorfile') || undefined,
    readinessTimeoutMs: (f.optInt('readinessTimeoutSeconds', 0, 600) ?? 45) * 1000,
    logFile: f.optStr('logFile') || undefined,
    logLevel,
    logToStderr: f.bool('logToStderr', true),
    logOptions: parseLogOptions(f),
    deviceInfoDir: f.optStr('deviceInfoDir') || DEFAULTS.deviceInfoDir,
    dpDeviceInfoDir: f.optStr('dpDeviceInfoDir') || DEFAULTS.dpDeviceInfoDir,
    podResourcesSocket: f.optStr('podResourcesSocket') || DEFAULTS.podResourcesSocket,
    // Multus gives the kubelet 10 s.
    podResourcesTimeoutMs: (f.optInt('podResourcesTimeoutSeconds', 1, 300) ?? 10) * 1000,
    apiTimeoutMs: (f.optInt('apiTimeoutSeconds', 1, 300) ?? 10) * 1000,
    capabilityCheck,
    runtimeConfig: f.optObj('runtimeConfig')?.obj ?? {},
    prevResult: f.optObj('prevResult')?.obj,
    validAttachments: validAttachments(f),
  };
}
