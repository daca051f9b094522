// The meta-plugin end to end with a NAD whose ipam is `whereabouts`: the delegate (the delegate
// set under test) execs plexus's pool IPAM found on binDir, which allocates from an IPPool on the
// test apiserver; the pod's interface carries the address and network-status names it; DEL frees it.
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from './helpers/daemon';
import { netns, uniq, uplink } from './helpers/host';
import { DELEGATES, named, PLEXUS, requireBuild, runPlugin } from './helpers/plexus';
import { macvlanConf, networkStatus, NETWORKS, podArgs, podLinks, putPod, world } from './helpers/world';

requireBuild();

test(named('a macvlan NAD with ipam whereabouts: address from the cluster pool, recorded with the pod, freed on DEL'), async (t) => {
  const w = await world(t, '10.213.0.0/24');
  symlinkSync(join(PLEXUS, '..', 'whereabouts'), join(w.binDir, 'whereabouts'));
  const up = uplink(t);
  const podNs = uniq('pns');
  const kubeconfig = join(w.dir, 'whereabouts.kubeconfig');
  w.api.writeKubeconfig(kubeconfig, { namespace: 'whereabouts' });
  const ipam = { type: 'whereabouts', range: '10.213.8.0/24', gateway: '10.213.8.1', network_name: 'shared', kubernetes: { kubeconfig } };
  w.api.putNad(podNs, 'pooled', macvlanConf('pooled', up, ipam));
  const pod = putPod(w.api, podNs, 'web', { [NETWORKS]: 'pooled' });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));

  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const net1 = podLinks(w.ns.name).net1;
  assert.equal(net1?.addrs.length, 1);
  const [addr] = net1?.addrs ?? [];
  assert.match(addr ?? '', /^10\.213\.8\.\d+\/24$/);
  assert.notEqual(addr, '10.213.8.1/24', 'never the gateway');
  const status = networkStatus(w.api, pod);
  assert.deepEqual(status.find((s) => s.interface === 'net1')?.ips, [addr?.split('/')[0]]);
  const pool = w.api.getObject('ippools', 'whereabouts', 'shared-10.213.8.0-24');
  assert.ok(pool, 'the pool lives in the kubeconfig context’s namespace');
  const allocs = Object.values((pool.spec as { allocations: Record<string, { id: string; podref: string; ifname: string }> }).allocations);
  assert.deepEqual(allocs, [{ id, podref: `${podNs}/web`, ifname: 'net1' }]);
  const extra = Object.values((pool.metadata as { annotations: Record<string, string> }).annotations);
  assert.equal((JSON.parse(extra[0] ?? '{}') as { uid?: string }).uid, pod.uid, 'the pod UID is recorded for leak cleanup');

  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual((w.api.getObject('ippools', 'whereabouts', 'shared-10.213.8.0-24')?.spec as { allocations: object }).allocations, {});
});

test(named('ipam-claim-reference in the selection reaches the pool IPAM: the claim’s status.ips is the pod’s address'), async (t) => {
  const w = await world(t, '10.214.0.0/24');
  symlinkSync(join(PLEXUS, '..', 'whereabouts'), join(w.binDir, 'whereabouts'));
  const up = uplink(t);
  const podNs = uniq('pns');
  const ipam = { type: 'whereabouts', range: '10.214.8.0/24', kubernetes: { kubeconfig: w.kubeconfig } };
  w.api.putNad(podNs, 'sticky', macvlanConf('sticky', up, ipam));
  w.api.putObject('ipamclaims', { metadata: { name: 'vm1.net1', namespace: podNs }, spec: { network: 'sticky', interface: 'net1' } });
  const pod = putPod(w.api, podNs, 'virt-launcher-vm1', { [NETWORKS]: JSON.stringify([{ name: 'sticky', 'ipam-claim-reference': 'vm1.net1' }]) });
  const id = uniq('ctr');
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const [addr] = podLinks(w.ns.name).net1?.addrs ?? [];
  const claim = w.api.getObject('ipamclaims', podNs, 'vm1.net1');
  assert.deepEqual((claim?.status as { ips?: string[]; ownerPod?: { name: string } }).ips, [addr]);
  assert.deepEqual((claim?.status as { ownerPod?: { name: string } }).ownerPod, { name: 'virt-launcher-vm1' });
  const del = await w.run('DEL', id, args, conf);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  const left = (w.api.getObject('ippools', 'kube-system', '10.214.8.0-24')?.spec as { allocations: object }).allocations;
  assert.equal(Object.keys(left).length, 1, 'the claim keeps the address after the pod’s DEL');
});

test(named('through the node agent, a burst of pods reads the pool once (its IPAM in-process keeps a view); each one-shot IPAM reads it'), async (t) => {
  const w = await world(t, '10.214.0.0/24');
  symlinkSync(join(PLEXUS, '..', 'whereabouts'), join(w.binDir, 'whereabouts'));
  const up = uplink(t);
  const podNs = uniq('pns');
  const kubeconfig = join(w.dir, 'whereabouts.kubeconfig');
  w.api.writeKubeconfig(kubeconfig);
  w.api.putNad(podNs, 'pooled', macvlanConf('pooled', up, { type: 'whereabouts', range: '10.214.8.0/24', kubernetes: { kubeconfig } }));
  const daemon = await startDaemon(join(w.dir, 'run'));
  t.after(() => daemon.stop());
  const conf = w.conf({ daemonSocketDir: join(w.dir, 'run') });
  const pods = [0, 1, 2].map((i) => {
    const pod = putPod(w.api, podNs, `web${i}`, { [NETWORKS]: 'pooled' });
    const id = uniq('ctr');
    const ns = i === 0 ? w.ns : netns(t);
    const run = (command: string) => runPlugin({ command, containerId: id, netns: ns.path, ifname: 'eth0', args: podArgs(pod, id), stdin: conf });
    t.after(() => run('DEL'));
    return { id, ns, run };
  });
  w.api.clearRequests();
  for (const p of pods) {
    const add = await p.run('ADD');
    assert.equal(add.status, 0, add.stdout + add.stderr);
  }
  const poolPath = '/apis/whereabouts.cni.cncf.io/v1alpha1/namespaces/kube-system/ippools/10.214.8.0-24';
  const reads = w.api.requests().filter((r) => r.method === 'GET' && r.path === poolPath).length;
  // Built-in delegates run the IPAM inside the agent; the reference macvlan execs it, a process each.
  assert.equal(reads, DELEGATES === 'builtin' ? 1 : pods.length);
  const addrs = pods.map((p) => podLinks(p.ns.name).net1?.addrs[0] ?? '');
  assert.equal(new Set(addrs).size, pods.length, `distinct addresses: ${addrs.join(' ')}`);
  const spec = w.api.getObject('ippools', 'kube-system', '10.214.8.0-24')?.spec as { allocations: Record<string, { id: string }> };
  assert.deepEqual(Object.values(spec.allocations).map((a) => a.id).sort(), pods.map((p) => p.id).sort());
  for (const p of pods) {
    const del = await p.run('DEL');
    assert.equal(del.status, 0, del.stdout + del.stderr);
  }
  assert.deepEqual((w.api.getObject('ippools', 'kube-system', '10.214.8.0-24')?.spec as { allocations: object }).allocations, {});
});
