// Everything a verb needs from the outside world, gathered in one place so the effects stay at
// the edges: plugin execution, the Kubernetes API (loaded lazily) and the namespace probe.
import type { PluginInvoker, RuntimeConf } from '../cni/api';
import type { CniEnv } from '../cni/env';
import type { ClusterApi } from './cluster';
import type { PlexusConf } from './config';
import type { AttachmentRecord } from './journal';

export interface Context {
  env: CniEnv;
  conf: PlexusConf;
  invoke: PluginInvoker;
  /** The API client, created on first use; undefined when no kubeconfig is configured. */
  api(): Promise<ClusterApi | undefined>;
  /** Names of the links in a network namespace (to refuse an ifname that is taken). */
  linkNames(netnsPath: string): Set<string>;
}

export function runtimeFor(ctx: Context, att: AttachmentRecord, netns: string, containerId: string): RuntimeConf {
  return {
    containerId,
    netns,
    ifname: att.ifname,
    args: att.args,
    capabilityArgs: att.capabilityArgs,
    cniArgs: att.cniArgs,
    // Multus prepends binDir to CNI_PATH for its delegates.
    path: [ctx.conf.binDir, ...ctx.env.path.filter((p) => p !== ctx.conf.binDir)],
  };
}
