// The pool IPAM (dist/bin/whereabouts) against the test apiserver: a kubeconfig in a temp dir,
// network configs with a whereabouts ipam section, and runs of the built binary as a runtime
// would make them (a fresh process, CNI_* in a clean environment).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startApiServer, type FakeApi } from '../apiserver/server';
import { PLEXUS, runPlugin, type Outcome } from './plexus';

export const WHEREABOUTS = join(PLEXUS, '..', 'whereabouts');
export const POOL_NS = 'kube-system';

export interface PoolWorld {
  api: FakeApi;
  dir: string;
  kubeconfig: string;
  conf(ipam: Record<string, unknown>, extra?: Record<string, unknown>): string;
  run(command: string, containerId: string, conf: string, o?: { ifname?: string; pod?: string; ns?: string; uid?: string; env?: Record<string, string>; args?: string }): Promise<Outcome>;
  pools(): Record<string, unknown>[];
  allocations(pool: string): Record<string, { id: string; podref: string; ifname?: string }>;
}

export async function poolWorld(t: TestContext, o: { tls?: boolean } = {}): Promise<PoolWorld> {
  const api = await startApiServer({ tls: o.tls ?? true, token: 'pool-token' });
  const dir = mkdtempSync(join(tmpdir(), 'plexus-pool-'));
  t.after(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  return {
    api,
    dir,
    kubeconfig,
    conf: (ipam, extra = {}) =>
      JSON.stringify({ cniVersion: '1.0.0', name: 'poolnet', type: 'macvlan', ...extra, ipam: { type: 'whereabouts', kubernetes: { kubeconfig }, ...ipam } }),
    run: (command, containerId, conf, r = {}) =>
      runPlugin({
        command,
        containerId,
        netns: '/var/run/netns/none',
        ifname: r.ifname ?? 'net1',
        args: r.args ?? `IgnoreUnknown=1;K8S_POD_NAMESPACE=${r.ns ?? 'default'};K8S_POD_NAME=${r.pod ?? containerId};K8S_POD_UID=${r.uid ?? `uid-${containerId}`}`,
        stdin: conf,
        bin: WHEREABOUTS,
        env: { NODENAME: 'node-a', ...(r.env ?? {}) },
      }),
    pools: () => api.listObjects('ippools'),
    allocations: (pool) => {
      const p = api.getObject('ippools', POOL_NS, pool);
      const spec = (p?.spec ?? {}) as { allocations?: Record<string, { id: string; podref: string; ifname?: string }> };
      return spec.allocations ?? {};
    },
  };
}

/** The address part of a result's ips[i].address. */
export function ipsOf(out: Outcome): string[] {
  const r = out.json() as { ips?: Array<{ address: string }> };
  return (r.ips ?? []).map((i) => i.address);
}

/** `plexus <args>` as a child process, async: the test apiserver lives in this process. */
export function plexusCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PLEXUS, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
