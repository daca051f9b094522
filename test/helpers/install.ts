// Running `plexus install` (the built executable, as the DaemonSet does) against a host root made
// by the test: its CNI bin and conf dirs and a service-account dir, removed in t.after.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PLEXUS } from './plexus';

type Cleanup = Pick<TestContext, 'after'>;

export interface HostRoot {
  root: string;
  binDir: string;
  confDir: string;
  /** The pod's service-account dir (token, ca.crt), outside the host root as in the DaemonSet. */
  saDir: string;
  /** `--host-root ROOT --service-account-dir SA --api-server URL`, the flags every test needs. */
  flags: string[];
}

/**
 * `installed`: plexus and plexus-shim already in the bin dir (links to the build), as on a node
 * where an earlier install ran, so a --skip-binary-copy run has what its config names.
 */
export function hostRoot(t: Cleanup, o: { installed?: boolean; server?: string } = {}): HostRoot {
  const server = o.server ?? 'https://10.96.0.1:443';
  const dir = mkdtempSync(join(tmpdir(), 'plexus-install-'));
  // Installers first: a --watch one still running would re-create files while the dir is removed.
  t.after(async () => {
    await Promise.all([...live].map(stopInstaller));
    rmSync(dir, { recursive: true, force: true });
  });
  const root = join(dir, 'host');
  const h = { root, binDir: join(root, 'opt/cni/bin'), confDir: join(root, 'etc/cni/net.d'), saDir: join(dir, 'sa') };
  for (const d of [h.binDir, h.confDir, h.saDir]) mkdirSync(d, { recursive: true });
  if (o.installed ?? true) for (const f of ['plexus', 'plexus-shim']) symlinkSync(join(PLEXUS, '..', f), join(h.binDir, f));
  writeFileSync(join(h.saDir, 'token'), 'token-1\n');
  return { ...h, flags: ['--host-root', root, '--service-account-dir', h.saDir, '--api-server', server] };
}

/** A plugin binary as the primary CNI's installer would leave it (its presence is what counts). */
export function fakePlugin(binDir: string, name: string): void {
  writeFileSync(join(binDir, name), '#!/bin/sh\nexit 1\n');
  chmodSync(join(binDir, name), 0o755);
}

const live = new Set<Installer>();

async function stopInstaller(i: Installer): Promise<void> {
  if (i.child.exitCode === null && i.child.signalCode === null) i.child.kill('SIGKILL');
  await i.exited;
}

export interface Installer {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit status (or the signal's name). */
  exited: Promise<number | string>;
}

/** Starts `plexus install ARGS` with a clean environment; killed in t.after if still running. */
export function startInstall(t: Cleanup, args: string[], env: Record<string, string> = {}): Installer {
  const child = spawn(PLEXUS, ['install', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  child.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, sig) => resolve(code ?? sig ?? -1)));
  const i: Installer = { child, stderr: () => err, exited };
  live.add(i);
  void exited.then(() => live.delete(i));
  t.after(() => stopInstaller(i));
  return i;
}

export async function runInstall(t: Cleanup, args: string[], env: Record<string, string> = {}): Promise<{ status: number | string; stderr: string }> {
  const i = startInstall(t, args, env);
  const status = await i.exited;
  return { status, stderr: i.stderr() };
}

/** Resolves once `cond` holds, checking on every tick of `everyMs`; fails after `timeoutMs` naming `what`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
