// What one periodic sweep costs (DECISION.md for the agent's ipam gc): a pool of N entries whose
// pods are all distinct, a tenth of them leaked, against the test API server, through the same
// election and gcCluster the agent runs. Prints the API requests by kind and the sweep's time.
// Run: node --import tsx bench/ipam-gc-sweep.ts [N]
import type { JsonObject } from '../src/cni/validate';
import { KubeClient, destroyAgents } from '../src/k8s/client';
import { loadClusterAccess } from '../src/k8s/kubeconfig';
import { LeaseElector } from '../src/k8s/lease';
import { gcCluster } from '../src/ipam/pool/gc';
import { encodeExtra, extraKey } from '../src/ipam/pool/layout';
import { PoolApi } from '../src/ipam/pool/store';
import { startApiServer } from '../test/apiserver/server';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200);
  const api = await startApiServer({ tls: true, token: 'tok' });
  const dir = mkdtempSync(join(tmpdir(), 'plexus-gc-bench-'));
  try {
    api.writeKubeconfig(join(dir, 'kubeconfig'));
    const pool: JsonObject = { metadata: { name: 'bench-10.199.0.0-16', namespace: 'kube-system', annotations: {} }, spec: { range: '10.199.0.0/16', allocations: {} } };
    const allocs = (pool.spec as JsonObject).allocations as JsonObject;
    const notes = (pool.metadata as JsonObject).annotations as JsonObject;
    let leaks = 0;
    for (let i = 1; i <= n; i++) {
      const id = `bench-${String(i).padStart(20, '0')}`;
      const leaked = i % 10 === 0;
      const uid = leaked ? `gone-${i}` : String((api.putPod({ metadata: { name: `p${i}`, namespace: 'bench' } }).metadata as JsonObject).uid);
      if (leaked) leaks += 1;
      allocs[String(i)] = { id, podref: `bench/p${i}`, ifname: 'net1' };
      notes[extraKey(BigInt(i))] = encodeExtra({ cid: id.slice(0, 12), if: 'net1', uid, node: 'n1' });
    }
    api.putObject('ippools', pool);
    const client = new KubeClient(loadClusterAccess(join(dir, 'kubeconfig')), { userAgent: 'bench' });
    api.clearRequests();
    const t0 = performance.now();
    await new LeaseElector(client, 'kube-system', 'plexus-ipam-gc', 'n1', 600).tryAcquireOrRenew();
    const report = await gcCluster(new PoolApi(client, 'kube-system', 30_000), { dryRun: false, graceMs: 120_000 });
    const ms = performance.now() - t0;
    const byKind = new Map<string, number>();
    for (const r of api.requests()) {
      const kind = `${r.method} ${r.path.replace(/\/namespaces\/[^/]+/, '/namespaces/*').replace(/\/pods\/[^/]+$/, '/pods/{name}').replace(/\/leases\/[^/]+$/, '/leases/{name}').replace(/\/ippools\/[^/]+$/, '/ippools/{name}')}`;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    process.stdout.write(`${n} entries (${leaks} leaked, ${n} distinct pods): ${api.requests().length} API requests, sweep (election included) ${ms.toFixed(0)} ms, freed ${report.freed.length}, kept ${report.kept}\n`);
    for (const [k, v] of [...byKind].sort((x, y) => y[1] - x[1])) process.stdout.write(`  ${String(v).padStart(5)}  ${k}\n`);
    destroyAgents();
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
