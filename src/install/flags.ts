// `plexus install` flags: Multus's thin-entrypoint names where they mean the same thing
// (features.md §3.4), parsed and checked here so every later step works on validated values.
// Pure: argv and env in, options out.
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isLevel, type Level } from '../log';

export interface InstallOptions {
  /** The host's root as this process sees it (`/host` in the DaemonSet, `/` by hand). */
  hostRoot: string;
  cniBinDir: string;
  cniConfDir: string;
  /** Where plexus, its addon, the shim come from: beside the running executable by default. */
  sourceDir: string;
  skipBinaryCopy: boolean;
  skipPluginLinks: boolean;
  /** The operator's own plexus config (Multus's `--multus-conf-file`), copied instead of generated. */
  confFile?: string;
  /** File name (in cniConfDir) of the primary config, when the operator pins it. */
  masterCniFile?: string;
  readinessIndicatorFile?: string;
  waitTimeoutSeconds: number;
  /** Daemon mode: `type: plexus-shim` with this `daemonSocketDir` (a host path). */
  daemonSocketDir?: string;
  networkName: string;
  /** An existing kubeconfig (host path) to name in the config; none is written then. */
  kubeconfig?: string;
  noKubeconfig: boolean;
  apiServer?: string;
  serviceAccountDir: string;
  /** A token file already on the host (e.g. the kubelet's projected volume): named, not mirrored. */
  tokenFileHost?: string;
  logLevel?: Level;
  logFile?: string;
  namespaceIsolation?: boolean;
  globalNamespaces?: string;
  cniDir?: string;
  watch: boolean;
  recheckSeconds: number;
  cleanupConfigOnExit: boolean;
  uninstall: boolean;
  help: boolean;
}

type Kind = 'string' | 'bool' | 'seconds';
interface Spec {
  key: keyof InstallOptions;
  kind: Kind;
  help: string;
}

const SPECS: Record<string, Spec> = {
  'host-root': { key: 'hostRoot', kind: 'string', help: "the host's / as mounted here; paths written into configs are made relative to it (default /)" },
  'cni-bin-dir': { key: 'cniBinDir', kind: 'string', help: 'where the runtime finds plugins (default <host-root>/opt/cni/bin)' },
  'cni-conf-dir': { key: 'cniConfDir', kind: 'string', help: 'where the runtime reads network configs (default <host-root>/etc/cni/net.d)' },
  'source-dir': { key: 'sourceDir', kind: 'string', help: 'where plexus, plexus_netns.node, plexus-shim are taken from (default: beside this executable)' },
  'skip-binary-copy': { key: 'skipBinaryCopy', kind: 'bool', help: 'install no executables, only the config' },
  'skip-plugin-links': { key: 'skipPluginLinks', kind: 'bool', help: "keep the bin dir's own macvlan/ipvlan/bridge/host-device instead of linking them to plexus" },
  'conf-file': { key: 'confFile', kind: 'string', help: 'auto (default): generate the config; a path: install this plexus config as 00-plexus.conflist instead (Multus: --multus-conf-file)' },
  'master-cni-file': { key: 'masterCniFile', kind: 'string', help: 'file name of the primary config in the conf dir (Multus: --multus-master-cni-file-name)' },
  'readiness-indicator-file': { key: 'readinessIndicatorFile', kind: 'string', help: 'wait for this file before writing the config; also set in the config (host path)' },
  'wait-timeout': { key: 'waitTimeoutSeconds', kind: 'seconds', help: 'how long to wait for the primary config and the readiness file (default 120)' },
  'daemon-socket-dir': { key: 'daemonSocketDir', kind: 'string', help: 'daemon mode: "type": "plexus-shim" forwarding to plexus daemon at this dir (host path)' },
  'network-name': { key: 'networkName', kind: 'string', help: 'the name of the generated network (default multus-cni-network, as Multus names it)' },
  kubeconfig: { key: 'kubeconfig', kind: 'string', help: 'name this existing kubeconfig (host path) in the config; write none' },
  'no-kubeconfig': { key: 'noKubeconfig', kind: 'bool', help: 'no kubeconfig at all (only the cluster network runs)' },
  'api-server': { key: 'apiServer', kind: 'string', help: 'API server URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)' },
  'service-account-dir': { key: 'serviceAccountDir', kind: 'string', help: 'token and ca.crt mirrored for the host (default /var/run/secrets/kubernetes.io/serviceaccount)' },
  'token-file-host': { key: 'tokenFileHost', kind: 'string', help: 'a token file already readable on the host: named as tokenFile instead of a mirrored copy' },
  'log-level': { key: 'logLevel', kind: 'string', help: 'logLevel of the generated config' },
  'log-file': { key: 'logFile', kind: 'string', help: 'logFile of the generated config (host path)' },
  'namespace-isolation': { key: 'namespaceIsolation', kind: 'bool', help: 'namespaceIsolation of the generated config' },
  'global-namespaces': { key: 'globalNamespaces', kind: 'string', help: 'globalNamespaces of the generated config' },
  'cni-dir': { key: 'cniDir', kind: 'string', help: 'cniDir (journal and cache) of the generated config (host path)' },
  watch: { key: 'watch', kind: 'bool', help: 'stay running: regenerate when the primary config, readiness file or token changes' },
  'recheck-interval': { key: 'recheckSeconds', kind: 'seconds', help: 'watch mode: full re-check period besides file events (default 10)' },
  'cleanup-config-on-exit': { key: 'cleanupConfigOnExit', kind: 'bool', help: 'watch mode: remove the config on SIGTERM/SIGINT' },
  uninstall: { key: 'uninstall', kind: 'bool', help: "remove plexus's config and kubeconfig from the host (executables stay)" },
  help: { key: 'help', kind: 'bool', help: 'this text' },
};

/** Multus's flag names that mean exactly one of ours. */
const ALIASES: Record<string, string> = {
  'multus-master-cni-file-name': 'master-cni-file',
  'skip-multus-binary-copy': 'skip-binary-copy',
  'multus-conf-file': 'conf-file',
};

export class UsageError extends Error {}

export function installUsage(): string {
  const lines = Object.entries(SPECS).map(([name, s]) => `  --${name}${s.kind === 'bool' ? '' : ` ${s.kind === 'seconds' ? 'SECONDS' : 'VALUE'}`}\n      ${s.help}`);
  return `usage: plexus install [flags]\n\nInstalls plexus on a node and writes 00-plexus.conflist from the primary CNI config.\n\n${lines.join('\n')}\n`;
}

function boolOf(name: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`--${name}: expected true or false, got ${JSON.stringify(v)}`);
}

function secondsOf(name: string, v: string): number {
  const n = Number(v);
  if (v === '' || !Number.isFinite(n) || n < 0 || n > 86400) throw new UsageError(`--${name}: expected seconds from 0 to 86400, got ${JSON.stringify(v)}`);
  return n;
}

/** `--flag value`, `--flag=value`, `--bool`, `--bool=false`. */
export function parseInstallArgs(argv: readonly string[], execPath: string): InstallOptions {
  const raw: Partial<Record<keyof InstallOptions, string | boolean | number>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (flags start with --)`);
    const name = ALIASES[m[1]!] ?? m[1]!;
    const spec = SPECS[name];
    if (!spec) throw new UsageError(`unknown flag --${m[1]} (plexus install --help lists them)`);
    let value = m[2];
    if (spec.kind === 'bool') {
      raw[spec.key] = value === undefined ? true : boolOf(name, value);
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name}: needs a value`);
    }
    raw[spec.key] = spec.kind === 'seconds' ? secondsOf(name, value) : value;
  }
  const str = (k: keyof InstallOptions) => (typeof raw[k] === 'string' && raw[k] !== '' ? (raw[k] as string) : undefined);
  const abs = (k: keyof InstallOptions, flag: string) => {
    const v = str(k);
    if (v !== undefined && !isAbsolute(v)) throw new UsageError(`--${flag}: must be an absolute path, got ${JSON.stringify(v)}`);
    return v;
  };
  const hostRoot = resolve(abs('hostRoot', 'host-root') ?? '/');
  const master = str('masterCniFile');
  if (master !== undefined && (master.includes('/') || master === '.' || master === '..')) {
    throw new UsageError(`--master-cni-file: a file name in the conf dir, not a path: ${JSON.stringify(master)}`);
  }
  const confFile = str('confFile') === 'auto' ? undefined : abs('confFile', 'conf-file');
  const level = str('logLevel');
  if (level !== undefined && !isLevel(level)) throw new UsageError(`--log-level: one of debug, verbose, info, warn, error, panic; got ${JSON.stringify(level)}`);
  const apiServer = str('apiServer');
  if (apiServer !== undefined && !/^https?:\/\/[^/]/.test(apiServer)) throw new UsageError(`--api-server: an http(s) URL, got ${JSON.stringify(apiServer)}`);
  const name = str('networkName') ?? 'multus-cni-network';
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new UsageError(`--network-name: ${JSON.stringify(name)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  const opts: InstallOptions = {
    hostRoot,
    cniBinDir: abs('cniBinDir', 'cni-bin-dir') ?? join(hostRoot, 'opt/cni/bin'),
    cniConfDir: abs('cniConfDir', 'cni-conf-dir') ?? join(hostRoot, 'etc/cni/net.d'),
    sourceDir: abs('sourceDir', 'source-dir') ?? resolve(execPath, '..'),
    skipBinaryCopy: raw.skipBinaryCopy === true,
    skipPluginLinks: raw.skipPluginLinks === true,
    confFile,
    masterCniFile: master,
    readinessIndicatorFile: abs('readinessIndicatorFile', 'readiness-indicator-file'),
    waitTimeoutSeconds: typeof raw.waitTimeoutSeconds === 'number' ? raw.waitTimeoutSeconds : 120,
    daemonSocketDir: abs('daemonSocketDir', 'daemon-socket-dir'),
    networkName: name,
    kubeconfig: abs('kubeconfig', 'kubeconfig'),
    noKubeconfig: raw.noKubeconfig === true,
    apiServer,
    serviceAccountDir: abs('serviceAccountDir', 'service-account-dir') ?? '/var/run/secrets/kubernetes.io/serviceaccount',
    tokenFileHost: abs('tokenFileHost', 'token-file-host'),
    logLevel: level as Level | undefined,
    logFile: abs('logFile', 'log-file'),
    namespaceIsolation: typeof raw.namespaceIsolation === 'boolean' ? raw.namespaceIsolation : undefined,
    globalNamespaces: str('globalNamespaces'),
    cniDir: abs('cniDir', 'cni-dir'),
    watch: raw.watch === true,
    recheckSeconds: typeof raw.recheckSeconds === 'number' && raw.recheckSeconds > 0 ? raw.recheckSeconds : 10,
    cleanupConfigOnExit: raw.cleanupConfigOnExit === true,
    uninstall: raw.uninstall === true,
    help: raw.help === true,
  };
  if (opts.kubeconfig && opts.noKubeconfig) throw new UsageError('--kubeconfig and --no-kubeconfig exclude each other');
  if (opts.cleanupConfigOnExit && !opts.watch) throw new UsageError('--cleanup-config-on-exit: only with --watch (a one-shot install has no exit to clean up at)');
  return opts;
}

/**
 * The path the runtime (on the host) uses for a file this process sees at `p`: `p` without the
 * host-root prefix. A path outside the host root is already a host path (e.g. in tests).
 */
export function hostPath(opts: Pick<InstallOptions, 'hostRoot'>, p: string): string {
  const rel = relative(opts.hostRoot, p);
  if (rel === '') return '/';
  if (rel.startsWith('..') || isAbsolute(rel)) return p;
  return `/${rel}`;
}
