// `plexus daemon`: the node agent. The meta-plugin resident, so the API client, its TLS session,
// the code and the watch caches (caches.ts) are loaded once instead of on every pod operation.
// Each request runs exactly the code a one-shot call runs (the same skel dispatch); only the
// process, the reads' source and the scheduling are shared: at most `connectionLimit` requests
// run at once, and the requests of one container run one after another, in arrival order.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { PluginInvoker } from '../cni/api';
import { readEnv } from '../cni/env';
import { asCniError, Code } from '../cni/errors';
import { dispatch } from '../cni/skel';
import { LATEST_VERSION, SUPPORTED_VERSIONS } from '../cni/version';
import type { ClusterApi } from '../delegates/cluster';
import { loadApi, metaPluginWith, type ApiSource } from '../delegates/meta';
import { namingObjects } from '../delegates/cluster';
import { configureLog, log, withLogScope } from '../log';
import { observeRequests } from '../k8s/client';
import { ClusterCache } from './caches';
import { defaultDaemonConfig, withOverrides, type DaemonConfig } from './config';
import { startIpamGc, type IpamGcLoop } from './ipam-gc';
import { Registry } from './metrics';
import { formatReply, parseRequest, SOCKET_NAME, type DaemonReply } from './protocol';
import { Scheduler } from './queue';

function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && SUPPORTED_VERSIONS.includes(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

export interface Daemon {
  socket: string;
  metricsUrl?: string;
  metricsSocket?: string;
  /** Stops accepting, fails /readyz, finishes every request taken, then closes everything. */
  stop(): Promise<void>;
  registry: Registry;
  caches: Map<string, ClusterCache>;
}

function metricsOf(registry: Registry) {
  return {
    requests: registry.counter('plexus_requests_total', 'CNI requests handled, by verb and CNI result code (0 = success).'),
    duration: registry.histogram('plexus_request_duration_seconds', 'Time to answer a CNI request, queueing included, by verb.'),
    delegate: registry.histogram('plexus_delegate_duration_seconds', 'Time of one delegate plugin call, by plugin type and verb.'),
    api: registry.counter('plexus_api_requests_total', 'Kubernetes API requests, by method (WATCH = a watch stream opened) and HTTP status (0 = no answer).'),
    retries: registry.counter('plexus_api_retries_total', 'Kubernetes API attempts that failed and were retried, by method.'),
  };
}

export async function startDaemon(cfg: DaemonConfig): Promise<Daemon> {
  configureLog({ level: cfg.logLevel, toStderr: cfg.logToStderr, background: true, ...(cfg.logFile ? { file: cfg.logFile } : {}), ...(cfg.logOptions ? { rotate: cfg.logOptions } : {}) });
  for (const k of cfg.ignored) log.warn('daemon config key accepted but not acted on', { key: k });
  const registry = new Registry();
  const m = metricsOf(registry);
  const caches = new Map<string, ClusterCache>();
  const scheduler = new Scheduler(cfg.connectionLimit);
  let stopping = false;

  observeRequests((e) => {
    if (e.retry) m.retries.inc({ method: e.method });
    else m.api.inc({ method: e.method, status: String(e.status) });
  });

  const cacheFor = (kubeconfig: string | undefined): ClusterCache => {
    const key = kubeconfig ?? '';
    let c = caches.get(key);
    if (!c) {
      c = new ClusterCache(kubeconfig, cfg.nodeName, cfg.cacheConsistency);
      c.start();
      caches.set(key, c);
    }
    return c;
  };
  if (cfg.watchCaches && cfg.kubeconfig) cacheFor(cfg.kubeconfig);
  if (cfg.watchCaches && !cfg.nodeName) log.warn('no node name (PLEXUS_NODE_NAME or MULTUS_NODE_NAME): pods are read from the API, not watched');

  const source: ApiSource = cfg.watchCaches
    ? async (conf, env): Promise<ClusterApi | undefined> => (conf.kubeconfig ? namingObjects(cacheFor(conf.kubeconfig).forRequest(env, conf.apiTimeoutMs)) : undefined)
    : (conf) => loadApi(conf);
  const timed = (inner: PluginInvoker): PluginInvoker => async (type, verb, run, stdin) => {
    const t0 = performance.now();
    try {
      return await inner(type, verb, run, stdin);
    } finally {
      m.delegate.observe({ type, verb }, (performance.now() - t0) / 1000);
    }
  };
  const plugin = metaPluginWith(source, { longLived: true, invoker: timed });

  const handle = async (data: string): Promise<DaemonReply> => {
    const req = parseRequest(data);
    if (!req) return { status: 1, stdout: JSON.stringify({ cniVersion: LATEST_VERSION, code: Code.DecodeFailure, msg: 'plexus daemon: malformed request' }) + '\n' };
    const verb = req.env.CNI_COMMAND ?? '';
    const t0 = performance.now();
    const reply = await scheduler.run(req.env.CNI_CONTAINERID ?? '', () =>
      withLogScope(async (): Promise<DaemonReply> => {
        try {
          const env = readEnv(req.env);
          return { status: 0, stdout: await dispatch(plugin, env, withOverrides(req.stdin, cfg.overrides), { env: req.env }) };
        } catch (err) {
          return { status: 1, stdout: JSON.stringify(asCniError(err).toJSON(versionOf(req.stdin))) + '\n' };
        }
      }),
    );
    let code = '0';
    if (reply.status !== 0) {
      try {
        code = String((JSON.parse(reply.stdout) as { code?: unknown }).code ?? 'unknown');
      } catch {
        code = 'unknown';
      }
    }
    m.requests.inc({ verb, code });
    m.duration.observe({ verb }, (performance.now() - t0) / 1000);
    return reply;
  };

  registry.gauge('plexus_inflight_requests', 'CNI requests running now.', () => [[{}, scheduler.running]]);
  registry.gauge('plexus_queued_requests', 'CNI requests waiting for a slot or for an earlier request of the same container.', () => [[{}, scheduler.waiting]]);
  registry.gauge('plexus_connection_limit', 'Requests run at once at most (connectionLimit).', () => [[{}, cfg.connectionLimit]]);
  const eachInformer = (f: (name: string, i: ClusterCache['nads']) => number): Array<[Record<string, string>, number]> => {
    const out: Array<[Record<string, string>, number]> = [];
    for (const c of caches.values()) {
      out.push([{ cache: 'networkattachmentdefinitions' }, f('nads', c.nads)]);
      if (c.pods) out.push([{ cache: 'pods' }, f('pods', c.pods as unknown as ClusterCache['nads'])]);
    }
    return out;
  };
  registry.gauge('plexus_cache_age_seconds', 'Seconds since the cache last heard from the API server (list, event or bookmark).', () =>
    eachInformer((_, i) => (i.heardAt ? (Date.now() - i.heardAt) / 1000 : -1)),
  );
  registry.gauge('plexus_cache_live', '1 while the cache is listed and its watch is open.', () => eachInformer((_, i) => (i.live ? 1 : 0)));
  registry.gauge('plexus_cache_objects', 'Objects in the cache.', () => eachInformer((_, i) => i.size()));
  registry.gauge('plexus_cache_relists_total', 'Full lists (start, 410 Expired, consistency refresh).', () => eachInformer((_, i) => i.stats.lists));
  registry.gauge('plexus_cache_watch_restarts_total', 'Watch streams opened.', () => eachInformer((_, i) => i.stats.watches));
  registry.gauge('plexus_cache_lookups_total', 'Cache lookups by cache and result.', () => {
    const out: Array<[Record<string, string>, number]> = [];
    for (const c of caches.values()) {
      const k = c.counters;
      out.push([{ cache: 'pods', result: 'hit' }, k.podHits], [{ cache: 'pods', result: 'miss' }, k.podMisses]);
      out.push([{ cache: 'networkattachmentdefinitions', result: 'hit' }, k.nadHits], [{ cache: 'networkattachmentdefinitions', result: 'miss' }, k.nadMisses]);
      out.push([{ cache: 'networkattachmentdefinitions', result: 'refresh' }, k.fenceRefreshes]);
    }
    return out;
  });

  const ready = (): string | undefined => {
    if (stopping) return 'stopping';
    if (cfg.readinessIndicatorFile && !existsSync(cfg.readinessIndicatorFile)) return `readiness indicator file ${cfg.readinessIndicatorFile} is absent`;
    for (const c of caches.values()) if (!c.synced()) return 'watch caches not yet listed';
    return undefined;
  };
  const http = createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string, type = 'text/plain; charset=utf-8') => res.writeHead(code, { 'Content-Type': type }).end(body);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n');
    if (path === '/metrics') return text(200, registry.render(), 'text/plain; version=0.0.4; charset=utf-8');
    if (path === '/healthz') return text(200, 'ok\n');
    if (path === '/readyz') {
      const why = ready();
      return why ? text(503, `not ready: ${why}\n`) : text(200, 'ok\n');
    }
    return text(404, 'not found\n');
  });
  const listens: Array<Promise<void>> = [];
  let metricsUrl: string | undefined;
  const httpServers: HttpServer[] = [];
  if (cfg.metricsPort !== undefined) {
    listens.push(
      new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(cfg.metricsPort, cfg.metricsAddress, () => {
          const a = http.address();
          const port = typeof a === 'object' && a ? a.port : cfg.metricsPort;
          metricsUrl = `http://${cfg.metricsAddress.includes(':') ? `[${cfg.metricsAddress}]` : cfg.metricsAddress}:${port}`;
          resolve();
        });
      }),
    );
    httpServers.push(http);
  }
  let metricsSocket: string | undefined;
  if (cfg.metricsSocket) {
    const s2 = createHttpServer((req, res) => http.emit('request', req, res));
    rmSync(cfg.metricsSocket, { force: true });
    listens.push(new Promise<void>((resolve, reject) => s2.once('error', reject).listen(cfg.metricsSocket, () => resolve())));
    metricsSocket = cfg.metricsSocket;
    httpServers.push(s2);
  }
  await Promise.all(listens);

  mkdirSync(cfg.socketDir, { recursive: true, mode: 0o700 });
  const path = join(cfg.socketDir, SOCKET_NAME);
  rmSync(path, { force: true });
  const conns = new Set<Socket>();
  const serve = (sock: Socket): void => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    // The request ends where the shim half-closes its side.
    sock.on('end', () => {
      void handle(Buffer.concat(chunks).toString('utf8')).then((reply) => sock.end(formatReply(reply)));
    });
    sock.on('error', () => undefined);
  };
  // The shim half-closes after its request; the answer still has to go back on the same socket.
  const server: Server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  log.info('plexus daemon listening', { socket: path, metrics: metricsUrl, connectionLimit: cfg.connectionLimit, nodeName: cfg.nodeName, watchCaches: cfg.watchCaches });
  process.stderr.write(`plexus daemon: listening on ${path}\n`);

  let ipamGc: IpamGcLoop | undefined;
  if (cfg.ipamGc && !cfg.kubeconfig && !process.env.KUBERNETES_SERVICE_HOST) {
    log.info('ipam gc: periodic sweep off: no kubeconfig in the daemon config and not in a cluster');
  } else if (cfg.ipamGc) {
    if (!cfg.nodeName) log.warn('ipam gc: no node name (PLEXUS_NODE_NAME or MULTUS_NODE_NAME): the sweeper Lease names this host instead', { identity: hostname() });
    ipamGc = startIpamGc({ cfg: cfg.ipamGc, identity: cfg.nodeName ?? hostname(), kubeconfig: cfg.kubeconfig, registry });
  }

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      stopping = true;
      // Cut a sweep short between two entries instead of waiting for it (or for the next interval).
      const gcStopped = ipamGc?.stop();
      // No new connection from here on: a shim that finds no socket runs the call itself.
      rmSync(path, { force: true });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Requests already received (running or queued) finish and are answered.
      await scheduler.idle();
      // Connections accepted but whose request is still arriving are served too: wait for them.
      await closed;
      await gcStopped;
      await Promise.all([...caches.values()].map((c) => c.stop()));
      observeRequests(undefined);
      await Promise.all(httpServers.map((h) => new Promise<void>((resolve) => { h.closeAllConnections(); h.close(() => resolve()); })));
      if (metricsSocket) rmSync(metricsSocket, { force: true });
    })());
  return { socket: path, metricsUrl, metricsSocket, stop, registry, caches };
}

/** `plexus daemon [socketDir]` and `plexus daemon --config FILE`. */
export async function runDaemon(args: string[]): Promise<void> {
  let cfg: DaemonConfig;
  const i = args.indexOf('--config');
  if (i >= 0) {
    const file = args[i + 1];
    if (!file) throw new Error('plexus daemon: --config needs a file');
    const { parseDaemonConfig } = await import('./config');
    cfg = parseDaemonConfig(readFileSync(file, 'utf8'), file);
  } else cfg = defaultDaemonConfig(args[0] ?? '/run/plexus');
  const d = await startDaemon(cfg);
  let signalled = false;
  const onSignal = (sig: string) => {
    if (signalled) return;
    signalled = true;
    log.info('plexus daemon stopping: finishing requests in flight', { signal: sig });
    void d.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
