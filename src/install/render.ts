// The text of what `plexus install` writes: 00-plexus.conflist from the primary config, and the
// kubeconfig. Pure: data in, file content out, so the same inputs always give the same bytes (the
// watch loop rewrites only when they differ).
import { declaredCapabilities, type NetworkConfig } from '../cni/netconf';
import type { JsonObject } from '../cni/validate';
import type { InstallOptions } from './flags';

export const POD_ANNOTATIONS_CAP = 'io.kubernetes.cri.pod-annotations';

export interface ConflistInput {
  primary: NetworkConfig;
  /** Host paths: what the runtime-side plexus opens. */
  primaryPath: string;
  binDir: string;
  kubeconfig?: string;
  readinessIndicatorFile?: string;
}

export function renderConflist(o: InstallOptions, i: ConflistInput): string {
  // The primary's capabilities so the runtime still hands the cluster network its portMappings,
  // bandwidth, …; pod annotations so ADD needs no pod GET.
  const caps: JsonObject = {};
  for (const c of [...declaredCapabilities(i.primary)].sort()) caps[c] = true;
  caps[POD_ANNOTATIONS_CAP] = true;
  const plugin: JsonObject = { type: o.daemonSocketDir ? 'plexus-shim' : 'plexus' };
  if (o.daemonSocketDir) plugin.daemonSocketDir = o.daemonSocketDir;
  if (i.kubeconfig) plugin.kubeconfig = i.kubeconfig;
  plugin.clusterNetwork = i.primaryPath;
  plugin.binDir = i.binDir;
  if (i.readinessIndicatorFile) plugin.readinessindicatorfile = i.readinessIndicatorFile;
  if (o.cniDir) plugin.cniDir = o.cniDir;
  if (o.namespaceIsolation !== undefined) plugin.namespaceIsolation = o.namespaceIsolation;
  if (o.globalNamespaces) plugin.globalNamespaces = o.globalNamespaces;
  if (o.logLevel) plugin.logLevel = o.logLevel;
  if (o.logFile) plugin.logFile = o.logFile;
  plugin.capabilities = caps;
  const conf = { cniVersion: i.primary.cniVersion, name: o.networkName, plugins: [plugin] };
  return JSON.stringify(conf, null, 2) + '\n';
}

/** The plexus file the conflist's clusterNetwork names, so the watch loop can keep it. */
export function clusterNetworkOf(conflistText: string): string | undefined {
  try {
    const v = JSON.parse(conflistText) as { plugins?: { clusterNetwork?: unknown }[] };
    const cn = v.plugins?.[0]?.clusterNetwork;
    return typeof cn === 'string' ? cn : undefined;
  } catch {
    return undefined;
  }
}

export interface KubeconfigInput {
  server: string;
  /** Host path of the CA bundle; absent: the system roots verify the server. */
  caFile?: string;
  /** Host path of the token file: read again on every API call, so rotation needs no rewrite. */
  tokenFile: string;
}

/** YAML a kubectl user can read; every scalar is JSON-quoted, which YAML reads as it is. */
export function renderKubeconfig(k: KubeconfigInput): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    '# Written by plexus install. The token is read from tokenFile on every call (rotation-safe).',
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${q(k.server)}`,
    ...(k.caFile ? [`    certificate-authority: ${q(k.caFile)}`] : []),
    'users:',
    '- name: plexus',
    '  user:',
    `    tokenFile: ${q(k.tokenFile)}`,
    'contexts:',
    '- name: plexus-context',
    '  context:',
    '    cluster: local',
    '    user: plexus',
    'current-context: plexus-context',
    '',
  ].join('\n');
}

/** rest.InClusterConfig's server URL, brackets around an IPv6 host. */
export function inClusterServer(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  if (!host || !port) return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The operator's own config (`--conf-file`) as 00-plexus.conflist: a conflist as it is, a single
 * conf wrapped in one. Its plugin must be plexus's: a Multus config is refused with the one-word fix.
 */
export function ownConflist(net: NetworkConfig, file: string): { text: string } | { problem: string } {
  const type = String(net.plugins[0]?.type);
  if (type === 'multus' || type === 'multus-shim') {
    return { problem: `${file}: "type": "${type}" is Multus's; change it to "${type.replace('multus', 'plexus')}"` };
  }
  if (type !== 'plexus' && type !== 'plexus-shim') return { problem: `${file}: "type": "${type}": the config must be plexus's (plexus or plexus-shim)` };
  if (net.isList) return { text: net.bytes.endsWith('\n') ? net.bytes : `${net.bytes}\n` };
  const { cniVersion, name, ...plugin } = net.plugins[0]!;
  return { text: JSON.stringify({ cniVersion, name, plugins: [plugin] }, null, 2) + '\n' };
}
