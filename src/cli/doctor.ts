// `plexus doctor`: is this node set up so that the runtime runs plexus and plexus can do its job?
// Config order and parse, the cluster network, every plugin the configs name (VERSION probe), the
// daemon, the API and the token, stale journals. Exit 1 when any check fails (warnings do not).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { asCniError } from '../cni/errors';
import type { NetworkConfig } from '../cni/netconf';
import type { PlexusConf } from '../delegates/config';
import { inlineDelegate, namedNetwork } from '../delegates/networks';
import type { ClusterApi } from '../delegates/cluster';
import { SOCKET_NAME } from '../daemon/protocol';
import { confFiles, confOrder, pluginTypes, plexusConf, probePlugins, staleJournals, tokenExpiry, type Check } from './doctor-checks';
import { EXIT, parseOptions, table, UsageError, type Io } from './output';

const OPTIONS = {
  'conf-dir': { type: 'string' },
  'bin-dir': { type: 'string' },
  'cni-dir': { type: 'string' },
  'socket-dir': { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

interface DoctorOptions {
  confDir: string;
  binDir?: string;
  cniDir?: string;
  socketDir?: string;
  kubeconfig?: string;
}

async function networks(conf: PlexusConf, api: ClusterApi | undefined, checks: Check[]): Promise<NetworkConfig[]> {
  const nets: NetworkConfig[] = [];
  const named = conf.delegates.length > 0 ? ['delegates[0]'] : [`clusterNetwork ${JSON.stringify(conf.clusterNetwork)}`];
  try {
    const spec = conf.delegates.length > 0 ? inlineDelegate(conf, 0) : await namedNetwork(conf.clusterNetwork ?? '', conf, api, true, 'clusterNetwork');
    const types = spec.net.plugins.map((p) => String(p.type));
    if (types.some((t) => ['plexus', 'plexus-shim', 'multus', 'multus-shim'].includes(t))) {
      checks.push({ check: 'cluster network', status: 'fail', detail: `${named[0]} is a meta-plugin config (${types.join(', ')}): plexus would call itself` });
    } else {
      checks.push({ check: 'cluster network', status: 'ok', detail: `${spec.net.name} (${types.join(' → ')}), cniVersion ${spec.net.cniVersion}` });
      nets.push(spec.net);
    }
  } catch (err) {
    checks.push({ check: 'cluster network', status: 'fail', detail: `${named[0]}: ${asCniError(err).message}` });
  }
  for (const [i, name] of conf.defaultNetworks.entries()) {
    try {
      nets.push((await namedNetwork(name, conf, api, false, `defaultNetworks[${i}]`)).net);
      checks.push({ check: `default network ${name}`, status: 'ok', detail: 'resolved' });
    } catch (err) {
      checks.push({ check: `default network ${name}`, status: 'fail', detail: asCniError(err).message });
    }
  }
  for (let i = 1; i < conf.delegates.length; i++) {
    try {
      nets.push(inlineDelegate(conf, i).net);
    } catch (err) {
      checks.push({ check: `delegates[${i}]`, status: 'fail', detail: asCniError(err).message });
    }
  }
  return nets;
}

async function daemonCheck(socketDir: string | undefined): Promise<Check> {
  const check = 'daemon';
  if (!socketDir) return { check, status: 'skip', detail: 'one-shot mode: the config names no daemonSocketDir' };
  const socket = join(socketDir, SOCKET_NAME);
  const { forward } = await import('../daemon/shim');
  const reply = await forward(socket, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}', 3000);
  if (!reply) return { check, status: 'fail', detail: `nothing answers on ${socket}: every call pays a one-shot plexus start (the shim's fallback)` };
  if (reply.status !== 0 || !reply.stdout.includes('supportedVersions')) return { check, status: 'fail', detail: `${socket} answered VERSION with status ${reply.status}: ${reply.stdout.trim().slice(0, 200)}` };
  return { check, status: 'ok', detail: `answers VERSION on ${socket}` };
}

/** One GET a plexus ADD makes (a NAD), so reachability, the token and RBAC are all proven. */
async function apiChecks(kubeconfig: string | undefined, conf: PlexusConf | undefined): Promise<Check[]> {
  if (kubeconfig === undefined) return [{ check: 'API', status: 'skip', detail: 'no kubeconfig in the config (only inline delegates run)' }];
  const [{ KubeClient, KubeApiError }, { loadClusterAccess, bearerToken }, { nadPath }] = await Promise.all([import('../k8s/client'), import('../k8s/kubeconfig'), import('../k8s/pods')]);
  let access;
  try {
    access = loadClusterAccess(kubeconfig === '' ? undefined : kubeconfig);
  } catch (err) {
    return [{ check: 'API', status: 'fail', detail: asCniError(err).message }];
  }
  const checks: Check[] = [];
  let token: string | undefined;
  try {
    token = bearerToken(access);
    checks.push(tokenExpiry(token, access.source));
  } catch (err) {
    checks.push({ check: 'token', status: 'fail', detail: asCniError(err).message });
  }
  const ns = conf?.multusNamespace ?? 'kube-system';
  const name = conf?.clusterNetwork && !conf.clusterNetwork.startsWith('/') ? conf.clusterNetwork : 'plexus-doctor-probe';
  const path = nadPath(ns, name);
  const client = new KubeClient(access, { userAgent: 'plexus-doctor' });
  const where = access.server.origin;
  try {
    await client.get(path, { timeoutMs: 3000, budgetMs: 3000 });
    checks.unshift({ check: 'API', status: 'ok', detail: `${where}: read network-attachment-definition ${ns}/${name}` });
  } catch (err) {
    if (!(err instanceof KubeApiError)) throw err;
    if (err.status === 404 && err.statusDetails?.kind === 'network-attachment-definitions') {
      checks.unshift({ check: 'API', status: 'ok', detail: `${where}: token accepted, may read network-attachment-definitions (${ns}/${name} does not exist)` });
    } else if (err.status === 404) {
      checks.unshift({ check: 'API', status: 'fail', detail: `${where}: GET ${path}: ${err.message}: is the NetworkAttachmentDefinition CRD installed (deploy/20-crd-network-attachment-definitions.yaml)?` });
    } else if (err.status === 401) {
      checks.unshift({ check: 'API', status: 'fail', detail: `${where}: the token is not accepted (401 ${err.message})` });
    } else if (err.status === 403) {
      checks.unshift({ check: 'API', status: 'fail', detail: `${where}: forbidden: ${err.message} (apply deploy/10-rbac.yaml)` });
    } else {
      checks.unshift({ check: 'API', status: 'fail', detail: `${where}: ${err.status ? `HTTP ${err.status} ` : ''}${err.message}` });
    }
  } finally {
    const { destroyAgents } = await import('../k8s/client');
    destroyAgents();
  }
  return checks;
}

export async function doctor(o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  let files;
  try {
    files = confFiles(o.confDir);
  } catch (err) {
    return [{ check: 'conf dir', status: 'fail', detail: `${o.confDir}: ${(err as Error).message}` }];
  }
  const order = confOrder(o.confDir, files);
  checks.push(order);
  const ours = files.find((f) => f.types.some((t) => t === 'plexus' || t === 'plexus-shim'));
  let conf: PlexusConf | undefined;
  if (ours) {
    const p = plexusConf(ours);
    checks.push(p.check);
    conf = p.conf;
  }
  const kubeconfig = o.kubeconfig ?? conf?.kubeconfig;
  if (conf) {
    let api: ClusterApi | undefined;
    if (kubeconfig) {
      const { kubeClusterApi } = await import('../k8s/cluster-api');
      try {
        api = kubeClusterApi(kubeconfig, 3000);
      } catch {
        // the API check below says why
      }
    }
    if (conf.readinessIndicatorFile) {
      const f = conf.readinessIndicatorFile;
      checks.push(existsSync(f) ? { check: 'readiness indicator', status: 'ok', detail: `${f} exists` } : { check: 'readiness indicator', status: 'fail', detail: `${f} does not exist: ADD waits for it and STATUS answers 50 (the cluster network is not ready)` });
    }
    const nets = await networks(conf, api, checks);
    const path = [...new Set([...(o.binDir ? [o.binDir] : []), conf.binDir, '/opt/cni/bin'])];
    checks.push(...(await probePlugins(pluginTypes(nets), path)));
  }
  const socketDir = o.socketDir ?? (typeof conf?.raw.daemonSocketDir === 'string' && conf.raw.daemonSocketDir ? conf.raw.daemonSocketDir : undefined);
  checks.push(await daemonCheck(socketDir));
  checks.push(...(await apiChecks(kubeconfig, conf)));
  checks.push(staleJournals(o.cniDir ?? conf?.cniDir ?? '/var/lib/cni/multus'));
  return checks;
}

export async function run(args: string[], io: Io): Promise<number> {
  const { values, positionals, json } = parseOptions(args, OPTIONS);
  if (positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const checks = await doctor({ confDir: str('conf-dir') ?? '/etc/cni/net.d', binDir: str('bin-dir'), cniDir: str('cni-dir'), socketDir: str('socket-dir'), kubeconfig: str('kubeconfig') });
  const failed = checks.filter((c) => c.status === 'fail').length;
  if (json) io.out(JSON.stringify({ ok: failed === 0, checks }, null, 2) + '\n');
  else {
    io.out(table(['CHECK', 'STATUS', 'DETAIL'], checks.map((c) => [c.check, c.status, c.detail])));
    io.out(failed ? `${failed} check(s) failed\n` : 'no problems found\n');
  }
  return failed ? EXIT.problems : EXIT.ok;
}
