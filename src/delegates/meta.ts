// The meta-plugin's verbs wired to the outside world. Only what a verb uses is loaded: DEL and
// CHECK never touch the Kubernetes client, and the client itself is created on first use.
import { delegateInvoker } from './invoke';
import type { CniEnv } from '../cni/env';
import { formatResult, parseResult } from '../cni/result';
import type { PluginHandlers } from '../cni/skel';
import { bindLog, configureLog, log } from '../log';
import { namingObjects, type ClusterApi } from './cluster';
import { parseConf, type PlexusConf } from './config';
import type { Context } from './context';
import { linkNamesIn } from './probe';

function contextFor(env: CniEnv, stdin: string): Context {
  const conf = parseConf(stdin);
  configureLog({ level: conf.logLevel, file: conf.logFile, toStderr: conf.logToStderr });
  bindLog({ plugin: 'plexus', cmd: env.command, containerId: env.containerId || undefined, ifname: env.ifname || undefined });
  log.phase('config parsed');
  let api: Promise<ClusterApi | undefined> | undefined;
  return {
    env,
    conf,
    invoke: delegateInvoker,
    api: () => (api ??= loadApi(conf)),
    linkNames: linkNamesIn,
  };
}

async function loadApi(conf: PlexusConf): Promise<ClusterApi | undefined> {
  if (!conf.kubeconfig) return undefined;
  const { kubeClusterApi } = await import('../k8s/cluster-api');
  const api = namingObjects(kubeClusterApi(conf.kubeconfig, conf.apiTimeoutMs));
  log.phase('API client loaded');
  return api;
}

export const metaPlugin: PluginHandlers = {
  async add(env, stdin) {
    const ctx = contextFor(env, stdin);
    const { cmdAdd } = await import('./add');
    const result = await cmdAdd(ctx);
    return JSON.stringify(formatResult(parseResult(result, 'cluster network result'), ctx.conf.cniVersion));
  },
  async del(env, stdin) {
    const { cmdDel } = await import('./del');
    await cmdDel(contextFor(env, stdin));
  },
  async check(env, stdin) {
    const { cmdCheck } = await import('./check');
    await cmdCheck(contextFor(env, stdin));
  },
  async status(env, stdin) {
    const { cmdStatus } = await import('./status-verb');
    await cmdStatus(contextFor(env, stdin));
  },
  async gc(env, stdin) {
    const { cmdGc } = await import('./gc');
    await cmdGc(contextFor(env, stdin));
  },
};
