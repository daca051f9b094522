// `plexus install`: the DaemonSet's entrypoint, also run by hand. Puts the executables into the
// host's CNI bin dir, a kubeconfig whose token file is re-read on every call, and
// 00-plexus.conflist pointing at the node's primary network; with --watch, keeps that config
// current (primary changed or gone, token rotated) until SIGTERM. Every file goes in atomically
// (files.ts); which config is the primary is decided in primary.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BUILTIN_NAMES } from '../builtin';
import { copyAtomic, isFile, readIfExists, removeStaleTemps, symlinkAtomic, writeAtomic } from './files';
import { hostPath, installUsage, parseInstallArgs, UsageError, type InstallOptions } from './flags';
import { describeSelection, OWN_FILE, selectPrimary, type ConfFile } from './primary';
import { clusterNetworkOf, inClusterServer, ownConflist, renderConflist, renderKubeconfig } from './render';
import { parseNetworkConfig, type NetworkConfig } from '../cni/netconf';

const ADDON = 'plexus_netns.node';
const SHIM = 'plexus-shim';
const CRED_DIR = 'plexus.d';

class InstallError extends Error {}

function say(msg: string): void {
  process.stderr.write(`plexus install: ${msg}\n`);
}

const ownConf = (o: InstallOptions) => join(o.cniConfDir, OWN_FILE);
const credDir = (o: InstallOptions) => join(o.cniConfDir, CRED_DIR);

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** The addon first: a new plexus must never start beside an old addon it cannot load. */
function installBinaries(o: InstallOptions): void {
  const src = (f: string) => join(o.sourceDir, f);
  if (!isFile(src('plexus')) || !isFile(src(ADDON))) {
    throw new InstallError(`${o.sourceDir} holds no plexus and ${ADDON}: run the built executable (dist/bin/plexus) or pass --source-dir`);
  }
  mkdirSync(o.cniBinDir, { recursive: true });
  const copied: string[] = [];
  for (const f of [ADDON, SHIM, 'plexus']) {
    if (!isFile(src(f))) continue; // the shim is optional: without it only "type": "plexus" works
    if (sameFile(src(f), join(o.cniBinDir, f))) continue;
    copyAtomic(src(f), join(o.cniBinDir, f), 0o755);
    copied.push(f);
  }
  const linked: string[] = [];
  if (!o.skipPluginLinks) {
    for (const name of BUILTIN_NAMES) {
      const r = symlinkAtomic('plexus', join(o.cniBinDir, name));
      if (r === 'replaced') say(`${join(o.cniBinDir, name)} was another plugin: now plexus's own ${name} (--skip-plugin-links keeps it)`);
      if (r !== 'kept') linked.push(name);
    }
  }
  say(`installed into ${o.cniBinDir}: ${[...copied, ...linked.map((l) => `${l} -> plexus`)].join(', ') || 'nothing changed'}`);
}

function writeIfChanged(path: string, text: string, mode: number): boolean {
  if (readIfExists(path) === text) return false;
  writeAtomic(path, text, mode);
  return true;
}

let warnedNoCa = false;

/**
 * The kubeconfig's host path, after (re)writing it and its token/CA copies. The service account's
 * token is mirrored into the conf dir because the pod's projected volume has no fixed host path;
 * the watch loop refreshes the copy when the kubelet rotates the token.
 */
function credentials(o: InstallOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (o.noKubeconfig) return undefined;
  if (o.kubeconfig) return o.kubeconfig;
  const server = o.apiServer ?? inClusterServer(env);
  if (!server) {
    throw new InstallError('no API server: KUBERNETES_SERVICE_HOST/PORT are not set; pass --api-server URL, --kubeconfig PATH or --no-kubeconfig');
  }
  const dir = credDir(o);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let tokenFile = o.tokenFileHost;
  if (!tokenFile) {
    const src = join(o.serviceAccountDir, 'token');
    let token: string;
    try {
      token = readFileSync(src, 'utf8');
    } catch (err) {
      throw new InstallError(`service account token ${src} not readable (${(err as NodeJS.ErrnoException).code ?? String(err)}): pass --service-account-dir or --token-file-host`);
    }
    if (writeIfChanged(join(dir, 'token'), token, 0o600)) say(`token copied from ${src}`);
    tokenFile = hostPath(o, join(dir, 'token'));
  }
  let caFile: string | undefined;
  const ca = readIfExists(join(o.serviceAccountDir, 'ca.crt'));
  if (ca !== undefined) {
    writeIfChanged(join(dir, 'ca.crt'), ca, 0o600);
    caFile = hostPath(o, join(dir, 'ca.crt'));
  } else if (!warnedNoCa) {
    warnedNoCa = true;
    say(`no ${join(o.serviceAccountDir, 'ca.crt')}: the kubeconfig trusts the system roots`);
  }
  const path = join(dir, 'plexus.kubeconfig');
  if (writeIfChanged(path, renderKubeconfig({ server, caFile, tokenFile }), 0o600)) say(`wrote ${path} (server ${server})`);
  return hostPath(o, path);
}

function readConfDir(dir: string): ConfFile[] {
  const out: ConfFile[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/\.(conf|conflist|json)$/.test(name) || name.startsWith('.')) continue;
    const text = readIfExists(join(dir, name));
    if (text !== undefined) out.push({ name, text });
  }
  return out;
}

type Desired = { ok: true; text: string; primary: string } | { ok: false; reason: string; keep?: boolean };

/** What 00-plexus.conflist should hold now, or why it cannot be written; never throws (it runs in watch callbacks). */
function desired(o: InstallOptions, kubeconfig: string | undefined): Desired {
  try {
    return desiredNow(o, kubeconfig);
  } catch (err) {
    return { ok: false, reason: `cannot read the node's CNI files: ${(err as Error).message}`, keep: true };
  }
}

function desiredNow(o: InstallOptions, kubeconfig: string | undefined): Desired {
  if (o.readinessIndicatorFile && readIfExists(o.readinessIndicatorFile) === undefined) {
    return { ok: false, reason: `readiness indicator file ${o.readinessIndicatorFile} does not exist yet` };
  }
  if (o.confFile) return fromConfFile(o, o.confFile);
  const own = readIfExists(ownConf(o));
  const pointed = own !== undefined ? clusterNetworkOf(own) : undefined;
  const current = pointed !== undefined && dirname(pointed) === hostPath(o, o.cniConfDir) ? basename(pointed) : undefined;
  const sel = selectPrimary(readConfDir(o.cniConfDir), { explicit: o.masterCniFile, current, hasBinary: (t) => !t.includes('/') && isFile(join(o.cniBinDir, t)) });
  if (!sel.ok) return { ok: false, reason: `${describeSelection(sel)} (in ${o.cniConfDir})`, keep: sel.keep };
  const text = renderConflist(o, {
    primary: sel.primary.net,
    primaryPath: hostPath(o, join(o.cniConfDir, sel.primary.file)),
    binDir: hostPath(o, o.cniBinDir),
    kubeconfig,
    readinessIndicatorFile: o.readinessIndicatorFile ? hostPath(o, o.readinessIndicatorFile) : undefined,
  });
  return { ok: true, text, primary: sel.primary.file };
}

/** `--conf-file`: the operator's config, checked, with the plugin it names present in the bin dir. */
function fromConfFile(o: InstallOptions, file: string): Desired {
  const text = readIfExists(file);
  if (text === undefined) return { ok: false, reason: `the config ${file} (--conf-file) does not exist yet` };
  let net: NetworkConfig;
  try {
    net = parseNetworkConfig(text, file);
  } catch (err) {
    return { ok: false, reason: `the config ${file} (--conf-file) is not loadable: ${(err as Error).message}`, keep: true };
  }
  const out = ownConflist(net, file);
  if ('problem' in out) return { ok: false, reason: out.problem };
  const type = String(net.plugins[0]!.type);
  if (!isFile(join(o.cniBinDir, type))) return { ok: false, reason: `${file} names plugin ${type}, which is not in ${o.cniBinDir}` };
  return { ok: true, text: out.text, primary: `${file} (--conf-file)` };
}

/** Writes or removes 00-plexus.conflist to match `d`; says what changed. */
function apply(o: InstallOptions, d: Desired): void {
  const path = ownConf(o);
  if (d.ok) {
    if (writeIfChanged(path, d.text, 0o644)) say(`wrote ${path} (primary ${d.primary})`);
    return;
  }
  if (!d.keep && readIfExists(path) !== undefined) {
    rmSync(path, { force: true });
    say(`removed ${path} so that no pod is sent to a network that is not there: ${d.reason}`);
  }
}

/** Calls `check` on every change in `dirs` and every `periodMs`; resolves when it returns true. */
function watchDirs(dirs: string[], periodMs: number, check: () => boolean | void): { stop(): void } {
  const watchers: FSWatcher[] = [];
  let pending = false;
  let stopped = false;
  const run = () => {
    if (pending || stopped) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      // a check queued before stop() must not run after it (it would rewrite a removed config)
      if (!stopped) check();
    });
  };
  for (const d of new Set(dirs)) {
    try {
      const w = watch(d, run);
      w.on('error', () => undefined); // a removed dir: the periodic check carries on
      watchers.push(w);
    } catch {
      // not there (yet): the periodic check covers it
    }
  }
  const timer = setInterval(run, periodMs);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      for (const w of watchers) w.close();
    },
  };
}

function watchedDirs(o: InstallOptions): string[] {
  const dirs = [o.cniConfDir, o.cniBinDir];
  if (o.readinessIndicatorFile) dirs.push(dirname(o.readinessIndicatorFile));
  if (o.confFile) dirs.push(dirname(o.confFile));
  if (!o.noKubeconfig && !o.kubeconfig && !o.tokenFileHost) dirs.push(o.serviceAccountDir);
  return dirs;
}

/** Bounded wait for the readiness file and the primary config, saying what it waits for. */
async function waitForPrimary(o: InstallOptions, kubeconfig: string | undefined): Promise<Desired & { ok: true }> {
  let last = '';
  const check = (): Desired => {
    const d = desired(o, kubeconfig);
    if (!d.ok && d.reason !== last) {
      last = d.reason;
      say(`waiting up to ${o.waitTimeoutSeconds} s: ${d.reason}`);
    }
    return d;
  };
  const first = check();
  if (first.ok) return first;
  return new Promise((resolve, reject) => {
    const w = watchDirs(watchedDirs(o), 1000, () => {
      const d = check();
      if (d.ok) {
        finish();
        resolve(d);
      }
    });
    const timer = setTimeout(() => {
      finish();
      reject(new InstallError(`gave up after ${o.waitTimeoutSeconds} s: ${last}`));
    }, o.waitTimeoutSeconds * 1000);
    function finish() {
      clearTimeout(timer);
      w.stop();
    }
  });
}

function uninstall(o: InstallOptions): void {
  const removed: string[] = [];
  for (const p of [ownConf(o), credDir(o)]) {
    if (existsSync(p)) removed.push(p);
    rmSync(p, { recursive: true, force: true });
  }
  say(removed.length ? `removed ${removed.join(', ')} (the executables in ${o.cniBinDir} stay: no runtime execs them without a config)` : 'nothing to remove');
}

/** Keeps the config current until SIGTERM/SIGINT. */
function watchLoop(o: InstallOptions, env: NodeJS.ProcessEnv): Promise<number> {
  say(`watching ${watchedDirs(o).join(', ')} (full re-check every ${o.recheckSeconds} s)`);
  let lastProblem = '';
  return new Promise((resolve) => {
    const w = watchDirs(watchedDirs(o), o.recheckSeconds * 1000, () => {
      let problem = '';
      try {
        const d = desired(o, credentials(o, env));
        apply(o, d);
        if (!d.ok) problem = d.keep ? d.reason : `no config: ${d.reason}`;
      } catch (err) {
        problem = `re-check failed, will retry: ${(err as Error).message}`;
      }
      // said once per change, not on every periodic re-check
      if (problem && problem !== lastProblem) say(problem);
      lastProblem = problem;
    });
    const stop = (sig: string) => {
      w.stop();
      if (o.cleanupConfigOnExit) {
        rmSync(ownConf(o), { force: true });
        say(`${sig}: removed ${ownConf(o)} (--cleanup-config-on-exit)`);
      } else {
        say(`${sig}: exiting, ${ownConf(o)} stays`);
      }
      resolve(0);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export async function runInstall(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o: InstallOptions;
  try {
    o = parseInstallArgs(argv, process.execPath);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    say(err.message);
    return 2;
  }
  if (o.help) {
    process.stdout.write(installUsage());
    return 0;
  }
  try {
    if (o.uninstall) {
      uninstall(o);
      return 0;
    }
    mkdirSync(o.cniConfDir, { recursive: true });
    for (const d of [o.cniBinDir, o.cniConfDir, credDir(o)]) {
      const gone = removeStaleTemps(d);
      if (gone.length) say(`removed ${gone.length} temp file(s) an interrupted install left in ${d}`);
    }
    if (!o.skipBinaryCopy) installBinaries(o);
    // the config must not name a plugin the runtime cannot find (a --skip-binary-copy run on a bare node)
    const self = o.daemonSocketDir ? SHIM : 'plexus';
    if (!o.confFile && !isFile(join(o.cniBinDir, self))) {
      throw new InstallError(`${join(o.cniBinDir, self)} does not exist: the config would name a plugin the runtime cannot run (install without --skip-binary-copy${self === SHIM ? ', from a build that has plexus-shim' : ''})`);
    }
    const kubeconfig = credentials(o, env);
    const d = await waitForPrimary(o, kubeconfig);
    apply(o, d);
    if (readdirSync(o.cniConfDir).some((f) => /^00-multus\.conf(list)?$/.test(f))) {
      say(`warning: ${o.cniConfDir} still holds Multus's 00-multus config, which sorts before ${OWN_FILE}: the runtime uses Multus until it is removed`);
    }
    return o.watch ? await watchLoop(o, env) : 0;
  } catch (err) {
    if (err instanceof InstallError) {
      say(err.message);
      return 1;
    }
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
