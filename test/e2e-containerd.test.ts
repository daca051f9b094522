// A real container runtime: Debian's containerd, driven through its CRI API as the kubelet drives
// it, with plexus installed by `plexus install` into containerd's CNI dirs over a primary bridge
// conflist. Pods exist in the test API with their annotations (a NAD network); containerd hands
// the annotations to plexus, plexus writes network-status, and the sandbox's netns holds the
// interfaces it reports. In daemon mode the daemon is killed mid-run and every cycle still ends
// with nothing left: links, netns mounts, host-local reservations, journal, libcni cache.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FakeApi } from './apiserver/server';
import { networkReady, startContainerd, type Containerd } from './helpers/containerd';
import { sandboxNetns, type SandboxSpec } from './helpers/cri';
import { restoreHostSysctlsAfter, uniq } from './helpers/host';
import { runInstall, startInstall, until } from './helpers/install';
import { checkDelegateLog, DELEGATES, named, PLEXUS, REFERENCE_PLUGINS, requireBuild, requireInProcessDelegates } from './helpers/plexus';
import { apiServer, bridgeConf, bridgePorts, hostBridge, hostLocal, NETWORKS, networkStatus, putPod, reservations, type PodRef } from './helpers/world';

requireBuild();
requireInProcessDelegates();

const NS = 'ctd';
const CLUSTER_SUBNET = '10.199.10.0/24';
const NET1_SUBNET = '10.199.11.0/24';
/** libcni's result cache, hard-wired in containerd 1.6. */
const LIBCNI_CACHE = '/var/lib/cni/results';

interface Env {
  ctd: Containerd;
  api: FakeApi;
  dir: string;
  cniDir: string;
  ipamDir: string;
  logFile: string;
  bridges: string[];
  installFlags: string[];
}

// File-wide resources, removed after the last test (last made, first removed), pass or fail.
const cleanups: (() => unknown)[] = [];
/**
 * A plugin that runs `bridge` from the bin dir, except for the one call the test armed
 * (`<gateDir>/arm-<VERB>`): that one records its pid in `held-<VERB>` and stops itself, so the
 * daemon that ran it is provably in the middle of that call until the test kills both. Every call
 * is listed in `<gateDir>/calls` with the pid of the process that ran it (daemon or one-shot).
 */
function gatePlugin(gateDir: string, binDir: string): string {
  return `#!/bin/sh
echo "$PPID $CNI_COMMAND" >> "${gateDir}/calls"
if mv "${gateDir}/arm-$CNI_COMMAND" "${gateDir}/held-$CNI_COMMAND.tmp" 2>/dev/null; then
  echo $$ > "${gateDir}/held-$CNI_COMMAND.tmp" && mv "${gateDir}/held-$CNI_COMMAND.tmp" "${gateDir}/held-$CNI_COMMAND"
  kill -STOP $$
fi
exec "${binDir}/bridge"
`;
}

const fileScope = { after: (fn: () => unknown) => void cleanups.push(fn) };
after(async () => {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`e2e-containerd cleanup: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
});
let env: Env;

before(async () => {
  // The primary network's isGateway bridge turns on the host's forwarding: put it back last.
  restoreHostSysctlsAfter(fileScope);
  // Made first, removed last: containerd's cleanup stops leftover sandboxes, and their DELs need
  // the journal, the host-local files and the log that live here.
  const dir = mkdtempSync(join(tmpdir(), 'plexus-ctd-e2e-'));
  fileScope.after(() => rmSync(dir, { recursive: true, force: true }));
  const api = await apiServer(fileScope);
  const saDir = join(dir, 'sa');
  mkdirSync(saDir);
  writeFileSync(join(saDir, 'token'), 'plexus-e2e-token');
  writeFileSync(join(saDir, 'ca.crt'), api.caPem ?? '');
  const ipamDir = join(dir, 'ipam');
  const cluster = hostBridge(fileScope);
  const net1 = hostBridge(fileScope);
  const ctd = await startContainerd(fileScope);
  // what the primary CNI's installer leaves: its conflist and its plugins; containerd's loopback
  const plugins = DELEGATES === 'builtin' ? ['loopback', 'host-local'] : ['loopback', 'host-local', 'bridge'];
  for (const p of plugins) copyFileSync(join(REFERENCE_PLUGINS, p), join(ctd.binDir, p));
  const primary = {
    cniVersion: '1.0.0',
    name: 'ctd-cluster',
    plugins: [{ type: 'bridge', bridge: cluster, isGateway: true, ipam: hostLocal(ipamDir, CLUSTER_SUBNET, { routes: [{ dst: '0.0.0.0/0' }] }) }],
  };
  writeFileSync(join(ctd.confDir, '.10-cluster.tmp'), JSON.stringify(primary));
  execFileSync('mv', [join(ctd.confDir, '.10-cluster.tmp'), join(ctd.confDir, '10-cluster.conflist')]);
  api.putNad(NS, 'ctd-net1', bridgeConf('ctd-net1', net1, hostLocal(ipamDir, NET1_SUBNET)));
  // the same network through `gate`, which can hold one call mid-flight for the daemon test
  const gateDir = join(dir, 'gate');
  mkdirSync(gateDir);
  writeFileSync(join(ctd.binDir, 'gate'), gatePlugin(gateDir, ctd.binDir), { mode: 0o755 });
  api.putNad(NS, 'ctd-gated', JSON.stringify({ cniVersion: '1.0.0', name: 'ctd-gated', type: 'gate', bridge: net1, ipam: hostLocal(ipamDir, NET1_SUBNET) }));
  const logFile = join(dir, 'plexus.log');
  env = {
    ctd,
    api,
    dir,
    cniDir: join(dir, 'cni'),
    ipamDir,
    logFile,
    bridges: [cluster, net1],
    installFlags: [
      '--host-root', '/',
      '--cni-bin-dir', ctd.binDir,
      '--cni-conf-dir', ctd.confDir,
      '--service-account-dir', saDir,
      '--api-server', api.url,
      '--cni-dir', join(dir, 'cni'),
      '--log-level', 'debug',
      '--log-file', logFile,
      '--wait-timeout', '10',
      ...(DELEGATES === 'builtin' ? [] : ['--skip-plugin-links']),
    ],
  };
});

interface LoadedPlugin {
  type?: string;
  capabilities?: Record<string, boolean>;
}
interface CniConfigInfo {
  Networks?: { IFName?: string; Config?: { Plugins?: { Network?: LoadedPlugin }[] } }[];
}

/**
 * Waits until the first plugin of the config containerd uses for eth0 satisfies `ok`
 * (containerd reloads conf_dir on fsnotify, on its own schedule).
 */
async function untilLoaded(what: string, ok: (p: LoadedPlugin) => boolean): Promise<LoadedPlugin> {
  await networkReady(env.ctd);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const raw = (await env.ctd.cri.statusInfo()).cniconfig ?? '{}';
    const eth0 = (JSON.parse(raw) as CniConfigInfo).Networks?.find((n) => n.IFName === 'eth0');
    const plugin = eth0?.Config?.Plugins?.[0]?.Network ?? {};
    if (ok(plugin)) return plugin;
    if (Date.now() > deadline) throw new Error(`containerd did not load ${what} for eth0: ${raw}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The delegate log of every call containerd made during a test (in-process in the built-in pass,
 * never plexus exec'd), checked before the file's in-process count is.
 */
function checkCallLog(from: number): void {
  if (!existsSync(env.logFile)) return;
  checkDelegateLog(readFileSync(env.logFile).subarray(from).toString('utf8'), 'plexus under containerd');
}

const logSize = () => (existsSync(env.logFile) ? statSync(env.logFile).size : 0);

const loaded = (type: string) => untilLoaded(`a ${type} config`, (p) => p.type === type);

function pod(name: string, network = 'ctd-net1'): { ref: PodRef; network: string; spec: (attempt: number) => SandboxSpec } {
  const annotations = { [NETWORKS]: network };
  const ref = putPod(env.api, NS, name, annotations);
  const logDirectory = join(env.dir, 'pods', name);
  return { ref, network, spec: (attempt) => ({ name, namespace: NS, uid: ref.uid, attempt, annotations, logDirectory }) };
}

interface Addr {
  ifname: string;
  address?: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

function sandboxLinks(netnsPath: string): Addr[] {
  return JSON.parse(execFileSync('nsenter', [`--net=${netnsPath}`, 'ip', '-j', 'addr', 'show'], { encoding: 'utf8' })) as Addr[];
}

const v4 = (a: Addr | undefined) => a?.addr_info.filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`) ?? [];
const inSubnet = (ip: string, subnet: string) => ip.startsWith(subnet.split('.').slice(0, 3).join('.') + '.');

/** The sandbox as it stands: its interfaces agree with the CRI pod IP and with network-status. */
async function checkPod(id: string, ref: PodRef, network = 'ctd-net1'): Promise<string> {
  const st = await env.ctd.cri.podSandboxStatus(id);
  assert.equal(st.state, 0, 'SANDBOX_READY');
  const path = sandboxNetns(st);
  assert.ok(path.startsWith(env.ctd.stateDir), `netns under containerd's state dir: ${path}`);
  const links = sandboxLinks(path);
  const eth0 = links.find((l) => l.ifname === 'eth0');
  const net1 = links.find((l) => l.ifname === 'net1');
  assert.deepEqual(links.map((l) => l.ifname).sort(), ['eth0', 'lo', 'net1']);
  assert.deepEqual(v4(eth0), [`${st.ip}/24`], 'the pod IP containerd reports is eth0\'s, from the primary network');
  assert.ok(inSubnet(st.ip, CLUSTER_SUBNET), st.ip);
  assert.equal(v4(net1).length, 1);
  assert.ok(inSubnet(v4(net1)[0]!, NET1_SUBNET), v4(net1)[0]);
  const status = networkStatus(env.api, ref);
  assert.deepEqual(
    status.map((s) => ({ name: s.name, interface: s.interface, ips: s.ips, mac: s.mac, default: s.default })),
    [
      { name: 'ctd-cluster', interface: 'eth0', ips: [st.ip], mac: eth0!.address, default: true },
      { name: `${NS}/${network}`, interface: 'net1', ips: [v4(net1)[0]!.split('/')[0]!], mac: net1!.address, default: false },
    ],
  );
  return path;
}

/** Nothing of any sandbox left: bridge ports, reservations, journal, netns mounts, libcni cache. */
function checkClean(ids: string[]): void {
  for (const b of env.bridges) assert.deepEqual(bridgePorts(b), [], `ports left on ${b}`);
  assert.deepEqual(reservations(env.ipamDir), [], 'host-local reservations left');
  const journal = join(env.cniDir, '_plexus');
  assert.deepEqual(existsSync(journal) ? readdirSync(journal) : [], [], 'journal records left');
  const netnsDir = join(env.ctd.stateDir, 'io.containerd.grpc.v1.cri', 'netns');
  assert.deepEqual(existsSync(netnsDir) ? readdirSync(netnsDir) : [], [], 'netns mounts left');
  const cached = existsSync(LIBCNI_CACHE) ? readdirSync(LIBCNI_CACHE).filter((f) => ids.some((id) => f.includes(id))) : [];
  assert.deepEqual(cached, [], 'libcni cache entries left');
}

test(named('containerd runs a pod through plexus installed by plexus install: network-status matches the sandbox, and nothing is left'), async () => {
  const from = logSize();
  const r = await runInstall(fileScope, env.installFlags);
  assert.equal(r.status, 0, r.stderr);
  await loaded('plexus');
  const p = pod(uniq('ctdpod'));
  const id = await env.ctd.cri.runPodSandbox(p.spec(0));
  const path = await checkPod(id, p.ref);
  await env.ctd.cri.stopPodSandbox(id);
  assert.ok(!existsSync(path), 'containerd removed the netns after the DELs');
  await env.ctd.cri.removePodSandbox(id);
  assert.deepEqual(await env.ctd.cri.listPodSandboxes(), []);
  checkClean([id]);
  checkCallLog(from);
});

interface Daemon {
  pid: number;
  kill(): void;
  stop(): Promise<void>;
  log(): string;
}

function startDaemon(sockDir: string): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const d = spawn(PLEXUS, ['daemon', sockDir], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let err = '';
    const closed = new Promise<void>((done) => d.once('close', () => done()));
    const stop = async () => {
      if (d.exitCode === null && d.signalCode === null) d.kill('SIGTERM');
      await closed;
    };
    d.stderr!.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      if (err.includes('listening on')) resolve({ pid: d.pid!, kill: () => d.kill('SIGKILL'), stop, log: () => err });
    });
    d.on('exit', (code, sig) => reject(new Error(`daemon exited with ${code ?? sig}: ${err}`)));
  });
}

/**
 * Arms the gate for `verb`: the next such call of the gated network stops inside the daemon.
 * `kill()` then SIGKILLs the daemon with it, as a killed agent container's cgroup goes.
 */
function armGate(verb: 'ADD' | 'DEL'): { held: () => boolean; kill(d: Daemon): void } {
  const gateDir = join(env.dir, 'gate');
  rmSync(join(gateDir, `held-${verb}`), { force: true });
  writeFileSync(join(gateDir, `arm-${verb}`), '');
  return {
    held: () => existsSync(join(gateDir, `held-${verb}`)),
    kill(d) {
      d.kill();
      process.kill(Number(readFileSync(join(gateDir, `held-${verb}`), 'utf8')), 'SIGKILL');
    },
  };
}

/** What the kubelet does: a failed call is retried (a failed RunPodSandbox with the next attempt). */
async function retried<T>(what: string, fn: (attempt: number) => Promise<T>, failures: string[]): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      if (attempt >= 3) throw err;
    }
  }
}

test(named('daemon mode under containerd: the daemon killed inside an ADD and inside a DEL, every pod cycle still completes and nothing leaks'), async (t) => {
  const from = logSize();
  const sockDir = join(env.dir, 'run-plexus');
  const daemons: Daemon[] = [await startDaemon(sockDir)];
  t.after(() => Promise.all(daemons.map((d) => d.stop())));
  const r = await runInstall(t, [...env.installFlags, '--daemon-socket-dir', sockDir]);
  assert.equal(r.status, 0, r.stderr);
  await loaded('plexus-shim');

  const ids: string[] = [];
  const failures: string[] = [];
  const served = (d: Daemon, verb: string) => readFileSync(join(env.dir, 'gate', 'calls'), 'utf8').split('\n').includes(`${d.pid} ${verb}`);
  // cycle 0 and 3: through a live daemon; 1: daemon killed inside an ADD; 2: inside a DEL
  for (let i = 0; i < 4; i++) {
    const daemon = daemons[daemons.length - 1]!;
    const gate = i === 1 ? armGate('ADD') : i === 2 ? armGate('DEL') : undefined;
    const p = pod(uniq('ctdd'), 'ctd-gated');
    const cycle = (async () => {
      const id = await retried('RunPodSandbox', (attempt) => env.ctd.cri.runPodSandbox(p.spec(attempt)), failures);
      ids.push(id);
      await checkPod(id, p.ref, p.network);
      await retried('StopPodSandbox', () => env.ctd.cri.stopPodSandbox(id), failures);
      await retried('RemovePodSandbox', () => env.ctd.cri.removePodSandbox(id), failures);
    })();
    if (gate) {
      // the daemon is now inside the call (its delegate is stopped there): kill it, then let the
      // runtime's retries and the shim's fallback finish the cycle
      await until(`the daemon inside the gated ${i === 1 ? 'ADD' : 'DEL'}`, gate.held, 60_000);
      gate.kill(daemon);
      await cycle;
      daemons.push(await startDaemon(sockDir)); // as the DaemonSet restarts it
    } else {
      await cycle;
      assert.ok(served(daemon, 'ADD') && served(daemon, 'DEL'), `cycle ${i}: the live daemon served the ADD and the DEL`);
    }
  }
  t.diagnostic(`calls that failed and were retried, as the kubelet would: ${failures.length ? failures.join(' | ') : 'none'}`);
  assert.deepEqual(await env.ctd.cri.listPodSandboxes(), [], 'every sandbox removed (failed RunPodSandbox attempts included)');
  checkClean(ids);
  for (const d of daemons) await d.stop();
  checkCallLog(from);
});

test(named('plexus install --watch under containerd: a changed primary reaches the runtime, and after SIGTERM the runtime is back on the primary alone'), async (t) => {
  const from = logSize();
  const inst = startInstall(t, [...env.installFlags, '--watch', '--cleanup-config-on-exit', '--recheck-interval', '1']);
  await loaded('plexus');
  const p = pod(uniq('ctdw'));
  const id = await env.ctd.cri.runPodSandbox(p.spec(0));
  await checkPod(id, p.ref);

  // the primary CNI's installer rewrites its config: a new capability, which containerd must now
  // hand over for the cluster network through plexus's regenerated config
  const primaryPath = join(env.ctd.confDir, '10-cluster.conflist');
  const primary = JSON.parse(readFileSync(primaryPath, 'utf8')) as { plugins: Record<string, unknown>[] };
  primary.plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  copyFileSync(join(REFERENCE_PLUGINS, 'portmap'), join(env.ctd.binDir, 'portmap'));
  writeFileSync(`${primaryPath}.new`, JSON.stringify(primary));
  execFileSync('mv', [`${primaryPath}.new`, primaryPath]);
  const caps = (await untilLoaded("plexus's regenerated config", (p) => p.type === 'plexus' && p.capabilities?.portMappings === true)).capabilities;
  assert.equal(caps?.['io.kubernetes.cri.pod-annotations'], true);
  // containerd may load the new file before the installer's line about it reaches us
  const writes = () => inst.stderr().match(/wrote .*00-plexus\.conflist \(primary 10-cluster\.conflist\)/g)?.length ?? 0;
  await until('the regeneration reported', () => writes() >= 2);
  assert.equal(writes(), 2, 'written once, then regenerated once');
  // the pod attached under the old config is torn down under the new one, as containerd does
  await env.ctd.cri.stopPodSandbox(id);
  await env.ctd.cri.removePodSandbox(id);
  checkClean([id]);

  inst.child.kill('SIGTERM');
  assert.equal(await inst.exited, 0, inst.stderr());
  assert.ok(!existsSync(join(env.ctd.confDir, '00-plexus.conflist')));
  // the primary is still there: containerd falls back to it, never to a plexus config without its agent
  await loaded('bridge');
  checkCallLog(from);
});
