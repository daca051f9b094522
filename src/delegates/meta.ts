// The meta-plugin's verbs wired to the outside world. Only what a verb uses is loaded: DEL and
// CHECK never touch the Kubernetes client, and the client itself is created on first use.
import { delegateInvoker } from './invoke';
import type { PluginInvoker } from '../cni/api';
import type { CniEnv } from '../cni/env';
import { formatResult, parseResult } from '../cni/result';
import type { PluginHandlers } from '../cni/skel';
import { bindLog, configureLog, log } from '../log';
import { namingObjects, type ClusterApi } from './cluster';
import { parseConf, type PlexusConf } from './config';
import type { Context } from './context';
import { linkNamesIn } from './probe';

/**
 * Where a verb's Kubernetes reads come from. One-shot: a fresh client per call. The node agent
 * passes its own (watch caches in front of the same client); nothing here knows which it got.
 */
export type ApiSource = (conf: PlexusConf, env: CniEnv) => Promise<ClusterApi | undefined>;

let longLived = false;

export interface MetaOptions {
  /** A long-lived process (the daemon): rotated logs compress in the background. */
  longLived?: boolean;
  /** Wraps delegate execution (the daemon times it per delegate type). */
  invoker?: (inner: PluginInvoker) => PluginInvoker;
}

function contextOf(env: CniEnv, stdin: string, source: ApiSource, invoke: PluginInvoker = delegateInvoker): Context {
  const conf = parseConf(stdin);
  configureLog({ level: conf.logLevel, file: conf.logFile, toStderr: conf.logToStderr, ...(conf.logOptions ? { rotate: conf.logOptions } : {}), ...(longLived ? { background: true } : {}) });
  bindLog({ plugin: 'plexus', cmd: env.command, containerId: env.containerId || undefined, ifname: env.ifname || undefined });
  log.phase('config parsed');
  let api: Promise<ClusterApi | undefined> | undefined;
  return {
    env,
    conf,
    invoke,
    api: () => (api ??= source(conf, env)),
    linkNames: linkNamesIn,
  };
}

export async function loadApi(conf: PlexusConf): Promise<ClusterApi | undefined> {
  if (!conf.kubeconfig) return undefined;
  const { kubeClusterApi } = await import('../k8s/cluster-api');
  const api = namingObjects(kubeClusterApi(conf.kubeconfig, conf.apiTimeoutMs));
  log.phase('API client loaded');
  return api;
}

/** The meta-plugin's verbs reading the cluster through `source`. */
export function metaPluginWith(source: ApiSource, opts: MetaOptions = {}): PluginHandlers {
  if (opts.longLived) longLived = true;
  const invoke = opts.invoker ? opts.invoker(delegateInvoker) : delegateInvoker;
  const contextFor = (env: CniEnv, stdin: string, src: ApiSource) => contextOf(env, stdin, src, invoke);
  return {
    async add(env, stdin) {
      const ctx = contextFor(env, stdin, source);
      const { cmdAdd } = await import('./add');
      const result = await cmdAdd(ctx);
      return JSON.stringify(formatResult(parseResult(result, 'cluster network result'), ctx.conf.cniVersion));
    },
    async del(env, stdin) {
      const { cmdDel } = await import('./del');
      await cmdDel(contextFor(env, stdin, source));
    },
    async check(env, stdin) {
      const { cmdCheck } = await import('./check');
      await cmdCheck(contextFor(env, stdin, source));
    },
    async status(env, stdin) {
      const { cmdStatus } = await import('./status-verb');
      await cmdStatus(contextFor(env, stdin, source));
    },
    async gc(env, stdin) {
      const { cmdGc } = await import('./gc');
      await cmdGc(contextFor(env, stdin, source));
    },
  };
}

export const metaPlugin: PluginHandlers = metaPluginWith((conf) => loadApi(conf));
