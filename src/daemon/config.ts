// `plexus daemon --config FILE`: Multus's thick daemon-config.json, read the way Multus reads it.
// Daemon-only keys configure the process; every other key overrides the same key of each
// request's CNI configuration (Multus's overrideCNIConfigWithServerConfig), so one file steers
// confDir, namespaceIsolation, logging ... for every pod on the node.
import { CniError, Code } from '../cni/errors';
import { Fields, parseObject, type JsonObject } from '../cni/validate';
import { parseLogOptions } from '../delegates/config';
import { isLevel, type Level } from '../log';
import type { RotateOptions } from '../log-rotate';
import type { Consistency } from './caches';

export interface DaemonConfig {
  socketDir: string;
  /** Requests handled at once; more wait in a queue (Multus: connectionLimit). */
  connectionLimit: number;
  metricsPort?: number;
  metricsAddress: string;
  /** /metrics, /healthz, /readyz on a unix socket too (or instead of a port). */
  metricsSocket?: string;
  nodeName?: string;
  watchCaches: boolean;
  cacheConsistency: Consistency;
  /** For the caches at start; requests still use their own conf's kubeconfig. */
  kubeconfig?: string;
  readinessIndicatorFile?: string;
  logLevel: Level;
  logFile?: string;
  logToStderr: boolean;
  logOptions?: RotateOptions;
  /** The periodic pool leak sweep (ipam-gc.ts); absent when ipamGcIntervalSeconds is 0. */
  ipamGc?: IpamGcConfig;
  /** Keys merged over every request's CNI configuration. */
  overrides: JsonObject;
  /** Keys accepted for Multus compatibility that this process does not act on, with why. */
  ignored: string[];
}

export interface IpamGcConfig {
  intervalSeconds: number;
  /** The pools' namespace; unset: the kubeconfig context's, else kube-system (as `plexus ipam gc`). */
  namespace?: string;
  graceSeconds: number;
}

// Keys of the daemon itself (Multus's and plexus's): never copied into a request's conf.
const DAEMON_ONLY = new Set([
  'socketDir', 'metricsPort', 'metricsAddress', 'metricsSocket', 'enablePprof', 'connectionLimit', 'perNodeCertificate', 'chrootDir',
  'cniConfigDir', 'multusConfigFile', 'multusAutoconfigDir', 'multusMasterCNI', 'forceCNIVersion', 'overrideNetworkName',
  'nodeName', 'watchCaches', 'cacheConsistency', 'watchTimeoutSeconds',
  'ipamGcIntervalSeconds', 'ipamGcNamespace', 'ipamGcGraceSeconds',
  // A request keeps its own identity and result format.
  'cniVersion', 'name', 'type',
]);

// Acted on by `plexus install` (config generation), not by the daemon.
const INSTALL_KEYS = ['cniConfigDir', 'multusConfigFile', 'multusAutoconfigDir', 'multusMasterCNI', 'forceCNIVersion', 'overrideNetworkName'];

// ipamGcIntervalSeconds: see docs/configuration.md for why 5 minutes; grace as `plexus ipam gc`.
export const DAEMON_DEFAULTS = { socketDir: '/run/plexus', connectionLimit: 32, metricsAddress: '127.0.0.1', ipamGcIntervalSeconds: 300, ipamGcGraceSeconds: 120 } as const;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function parseIpamGc(f: Fields, where: string): IpamGcConfig | undefined {
  const intervalSeconds = f.optInt('ipamGcIntervalSeconds', 0, 7 * 86_400) ?? DAEMON_DEFAULTS.ipamGcIntervalSeconds;
  const graceSeconds = f.optInt('ipamGcGraceSeconds', 0, 86_400) ?? DAEMON_DEFAULTS.ipamGcGraceSeconds;
  const namespace = f.optStr('ipamGcNamespace');
  if (namespace !== undefined && !DNS1123_LABEL.test(namespace)) {
    throw new CniError(Code.InvalidConfig, `${where}: ipamGcNamespace: ${JSON.stringify(namespace)} is not a namespace name (a DNS-1123 label: lower-case letters, digits and '-', at most 63)`);
  }
  if (intervalSeconds === 0) return undefined;
  return { intervalSeconds, graceSeconds, ...(namespace ? { namespace } : {}) };
}

export function nodeNameFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  return env.PLEXUS_NODE_NAME || env.MULTUS_NODE_NAME || undefined;
}

export function parseDaemonConfig(text: string, where: string, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const raw = parseObject(text, where, Code.InvalidConfig);
  const f = new Fields(raw, '', Code.InvalidConfig);
  const logLevel = f.optStr('logLevel') ?? 'error';
  if (!isLevel(logLevel)) throw new CniError(Code.InvalidConfig, `${where}: logLevel: unknown level ${JSON.stringify(logLevel)} (debug, verbose, info, warn, error, panic)`);
  const consistency = f.optStr('cacheConsistency') ?? 'pod';
  if (consistency !== 'pod' && consistency !== 'watch') throw new CniError(Code.InvalidConfig, `${where}: cacheConsistency: must be "pod" or "watch"`);
  const limit = f.optInt('connectionLimit', 1, 4096);
  const overrides: JsonObject = {};
  for (const [k, v] of Object.entries(raw)) if (!DAEMON_ONLY.has(k)) overrides[k] = v;
  const ignored = INSTALL_KEYS.filter((k) => f.has(k)).map((k) => `${k} (read by plexus install)`);
  if (f.has('chrootDir')) ignored.push('chrootDir (delegates run in the daemon\'s mount namespace: mount the host\'s CNI dirs at the same paths)');
  if (f.has('enablePprof')) ignored.push('enablePprof');
  if (f.has('perNodeCertificate')) ignored.push('perNodeCertificate');
  const cfg: DaemonConfig = {
    socketDir: f.optStr('socketDir') || DAEMON_DEFAULTS.socketDir,
    connectionLimit: limit ?? DAEMON_DEFAULTS.connectionLimit,
    metricsAddress: f.optStr('metricsAddress') || DAEMON_DEFAULTS.metricsAddress,
    watchCaches: f.bool('watchCaches', true),
    cacheConsistency: consistency,
    logLevel,
    logToStderr: f.bool('logToStderr', true),
    overrides,
    ignored,
  };
  const port = f.optInt('metricsPort', 0, 65535);
  if (port !== undefined) cfg.metricsPort = port;
  const sock = f.optStr('metricsSocket');
  if (sock) cfg.metricsSocket = sock;
  const node = nodeNameFromEnv(env) ?? f.optStr('nodeName');
  if (node) cfg.nodeName = node;
  const kc = f.optStr('kubeconfig');
  if (kc) cfg.kubeconfig = kc;
  const ready = f.optStr('readinessindicatorfile');
  if (ready) cfg.readinessIndicatorFile = ready;
  const file = f.optStr('logFile');
  if (file) cfg.logFile = file;
  const lo = parseLogOptions(f);
  if (lo) cfg.logOptions = lo;
  const gc = parseIpamGc(f, where);
  if (gc) cfg.ipamGc = gc;
  return cfg;
}

/** The daemon with no config file (`plexus daemon [socketDir]`): today's behaviour plus caches. */
export function defaultDaemonConfig(socketDir: string, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return parseDaemonConfig(JSON.stringify({ socketDir }), 'defaults', env);
}

/** The request's CNI configuration with the daemon's keys laid over it (objects replaced whole, as Multus does). */
export function withOverrides(stdin: string, overrides: JsonObject): string {
  if (Object.keys(overrides).length === 0) return stdin;
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return stdin; // the meta-plugin reports the malformed configuration itself
  }
  if (conf === null || typeof conf !== 'object' || Array.isArray(conf)) return stdin;
  return JSON.stringify({ ...(conf as JsonObject), ...overrides });
}
