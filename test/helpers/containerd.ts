// Debian's containerd, started by a test on its own socket, root and state dirs, with the config
// this machine needs (reference/containerd-cni-calls.md): restrict_oom_score_adj (no
// CAP_SYS_RESOURCE here), cgroupfs, netns mounts under the state dir, and a sandbox image made on
// the spot (no registry is reachable): a static pause binary in a one-layer docker-archive,
// imported with ctr. Everything it leaves (sandboxes, shims, mounts, dirs) is removed in t.after.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { CriClient } from './cri';
import { until } from './install';

type Cleanup = Pick<TestContext, 'after'>;

export const PAUSE_IMAGE = 'localhost/plexus-pause:1';

export interface Containerd {
  dir: string;
  socket: string;
  binDir: string;
  confDir: string;
  stateDir: string;
  cri: CriClient;
  /** containerd's own log so far, for failure messages. */
  log(): string;
}

const PAUSE_C = `#include <signal.h>
#include <unistd.h>
static void bye(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGTERM, bye); signal(SIGINT, bye); for (;;) pause(); }
`;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A docker-archive tarball (`docker save` layout) holding /pause, tagged PAUSE_IMAGE. */
function pauseImage(dir: string): string {
  const work = join(dir, 'image');
  mkdirSync(join(work, 'rootfs'), { recursive: true });
  writeFileSync(join(work, 'pause.c'), PAUSE_C);
  execFileSync('gcc', ['-static', '-Os', '-s', '-o', join(work, 'rootfs', 'pause'), join(work, 'pause.c')]);
  const layerTar = join(work, 'layer.tar');
  execFileSync('tar', ['-C', join(work, 'rootfs'), '--owner=0', '--group=0', '--numeric-owner', '-cf', layerTar, 'pause']);
  const layerSha = sha256(readFileSync(layerTar));
  const out = join(work, 'archive');
  mkdirSync(join(out, layerSha), { recursive: true });
  renameSync(layerTar, join(out, layerSha, 'layer.tar'));
  const config = JSON.stringify({
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: { Entrypoint: ['/pause'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerSha}`] },
  });
  const configName = `${sha256(config)}.json`;
  writeFileSync(join(out, configName), config);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [PAUSE_IMAGE], Layers: [`${layerSha}/layer.tar`] }]));
  const tarball = join(work, 'pause.tar');
  execFileSync('tar', ['-C', out, '-cf', tarball, 'manifest.json', configName, layerSha]);
  return tarball;
}

function configToml(d: { dir: string; root: string; state: string; socket: string; binDir: string; confDir: string }): string {
  return `version = 2
root = "${d.root}"
state = "${d.state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${d.socket}"
[ttrpc]
  address = "${d.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${d.dir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${d.binDir}"
    conf_dir = "${d.confDir}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
`;
}

/** Mount points under `dir`, deepest first (overlay rootfs, netns bind mounts, shm). */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp && mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Pids of containerd shims serving this containerd (their command line names its socket). */
function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if ((cmd[0] ?? '').includes('containerd-shim') && cmd.includes(socket)) pids.push(Number(p));
  }
  return pids;
}

export async function startContainerd(t: Cleanup): Promise<Containerd> {
  // not under the shared /tmp tempDir helper: cleanup must unmount before it removes
  const dir = mkdtempSync(join(tmpdir(), 'plexus-ctd-'));
  const d = { dir, root: join(dir, 'root'), state: join(dir, 'state'), socket: join(dir, 'containerd.sock'), binDir: join(dir, 'bin'), confDir: join(dir, 'net.d') };
  for (const p of [d.root, d.state, d.binDir, d.confDir]) mkdirSync(p, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), configToml(d));
  const logPath = join(dir, 'containerd.log');
  const logFd = openSync(logPath, 'a');
  const proc = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', logFd, logFd], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, cwd: dir });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const cri = new CriClient(d.socket);

  t.after(async () => {
    // sandboxes first, through the runtime, so their CNI DELs run as in a cluster
    try {
      for (const id of await cri.listPodSandboxes()) {
        await cri.stopPodSandbox(id).catch(() => undefined);
        await cri.removePodSandbox(id).catch(() => undefined);
      }
    } catch {
      // containerd already gone: what it left is removed below
    }
    cri.close();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    for (const pid of shimPids(d.socket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const mp of mountsUnder(dir)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  let startError: Error | undefined;
  proc.once('error', (err) => (startError = err));
  await until(
    'containerd to answer on its CRI socket',
    () => {
      if (startError) throw new Error(`containerd did not start: ${startError.message}`);
      if (proc.exitCode !== null) throw new Error(`containerd exited with ${proc.exitCode}:\n${log().slice(-3000)}`);
      return existsSync(d.socket);
    },
    20_000,
    50,
  );
  const image = pauseImage(dir);
  execFileSync('ctr', ['--address', d.socket, '-n', 'k8s.io', 'images', 'import', image], { stdio: 'pipe' });
  return { dir, socket: d.socket, binDir: d.binDir, confDir: d.confDir, stateDir: d.state, cri, log };
}

/** Waits until the runtime reports NetworkReady (a loadable CNI config): before, RunPodSandbox fails and leaves a NotReady sandbox. */
export async function networkReady(c: Containerd, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const conds = await c.cri.status();
    const net = conds.find((x) => x.type === 'NetworkReady');
    if (net?.status) return;
    last = `${net?.reason ?? '?'}: ${net?.message ?? ''}`;
    if (Date.now() > deadline) throw new Error(`containerd's NetworkReady stayed false: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
