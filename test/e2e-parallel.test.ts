// CNI 1.1 §3 lifecycle: plugins MUST lock shared state against parallel operations of other
// containers. Many pods' ADDs run at once (a runtime starting a node's pods after a reboot), each a
// plexus process of its own with its own namespace, on a shared cluster bridge and a shared
// secondary NAD, both with host-local IPAM; then all their DELs at once. Every pod must get its
// own addresses and interfaces, journal record and network-status, and nothing may be left after.
// Once with one-shot processes, once through plexus-shim and the daemon.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { linksIn, netns, uniq, uplink } from './helpers/host';
import { startDaemon } from './helpers/daemon';
import { named, PLEXUS, requireBuild, requireInProcessDelegates, runPlugin, type Outcome } from './helpers/plexus';
import {
  bridgePorts,
  hostLinksOf,
  hostLocal,
  macvlanConf,
  NETWORKS,
  networkStatus,
  podArgs,
  podLinks,
  putPod,
  reservations,
  world,
  type LinkFacts,
  type PodRef,
  type World,
} from './helpers/world';

requireBuild();
requireInProcessDelegates();

/** Pods whose operations run at once (the test names say it, for docs/conformance.md to cite). */
const PODS = 8;

interface Pod {
  ref: PodRef;
  id: string;
  args: string;
  ns: { name: string; path: string };
}

interface Timed extends Outcome {
  started: number;
  ended: number;
}

const noPrefix = (cidr: string) => cidr.replace(/\/\d+$/, '');

/** Is `cidr`'s address inside the IPv4 `subnet`? */
function inSubnet(cidr: string, subnet: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [net = '', bits = '32'] = subnet.split('/');
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return ((toInt(noPrefix(cidr)) & mask) >>> 0) === ((toInt(net) & mask) >>> 0);
}

/** Every pod's call of `command`, all spawned at once, each timed from spawn to exit. */
async function allAtOnce(pods: Pod[], command: string, stdin: string, bin: string): Promise<Timed[]> {
  return Promise.all(
    pods.map(async (p) => {
      const started = performance.now();
      const out = await runPlugin({ bin, command, containerId: p.id, netns: p.ns.path, ifname: 'eth0', args: p.args, stdin });
      return { ...out, started, ended: performance.now() };
    }),
  );
}

/** The last call was spawned before the first one exited: all of them ran at the same time. */
function assertOverlapped(runs: Timed[], what: string): void {
  const lastStart = Math.max(...runs.map((r) => r.started));
  const firstEnd = Math.min(...runs.map((r) => r.ended));
  assert.ok(lastStart < firstEnd, `${what}: every process was started before the first one finished (last start ${lastStart.toFixed(1)} ms, first end ${firstEnd.toFixed(1)} ms)`);
}

async function parallelPods(t: Parameters<typeof world>[0], w: World, conf: string, bin: string, sideSubnet: string, clusterSubnet: string): Promise<{ runs: Timed[]; ids: string[] }> {
  const podNs = uniq('pns');
  const up = uplink(t);
  w.api.putNad(podNs, 'side', macvlanConf('side', up, hostLocal(w.ipamDir, sideSubnet)));
  const pods: Pod[] = [];
  for (let i = 0; i < PODS; i++) {
    const ref = putPod(w.api, podNs, `par-${i}`, { [NETWORKS]: 'side' });
    const id = uniq('par');
    const p = { ref, id, args: podArgs(ref, id), ns: netns(t) };
    pods.push(p);
    // Torn down even when an assertion fails half-way (a repeated DEL is harmless).
    t.after(() => runPlugin({ bin, command: 'DEL', containerId: p.id, netns: p.ns.path, ifname: 'eth0', args: p.args, stdin: conf }));
  }

  const adds = await allAtOnce(pods, 'ADD', conf, bin);
  for (const [i, a] of adds.entries()) assert.equal(a.status, 0, `ADD of pod ${i}: ${a.stdout}${a.stderr}`);
  assertOverlapped(adds, 'ADD');

  // Interfaces: eth0 on the cluster network, net1 on the secondary, one address each in its subnet.
  const links: Record<string, LinkFacts>[] = pods.map((p) => podLinks(p.ns.name));
  for (const [i, l] of links.entries()) {
    assert.deepEqual(Object.keys(l).sort(), ['eth0', 'net1'], `pod ${i}'s interfaces`);
    assert.equal(l.eth0?.kind, 'veth', `pod ${i} eth0`);
    assert.equal(l.net1?.kind, 'macvlan', `pod ${i} net1`);
    assert.equal(l.eth0?.addrs.length, 1, `pod ${i} eth0 addresses: ${l.eth0?.addrs}`);
    assert.equal(l.net1?.addrs.length, 1, `pod ${i} net1 addresses: ${l.net1?.addrs}`);
    assert.ok(inSubnet(l.eth0!.addrs[0]!, clusterSubnet), `pod ${i} eth0 ${l.eth0?.addrs[0]} in ${clusterSubnet}`);
    assert.ok(inSubnet(l.net1!.addrs[0]!, sideSubnet), `pod ${i} net1 ${l.net1?.addrs[0]} in ${sideSubnet}`);
  }
  const eth0s = links.map((l) => l.eth0!.addrs[0]!);
  const net1s = links.map((l) => l.net1!.addrs[0]!);
  assert.equal(new Set(eth0s).size, PODS, `distinct cluster addresses: ${eth0s.join(' ')}`);
  assert.equal(new Set(net1s).size, PODS, `distinct secondary addresses: ${net1s.join(' ')}`);
  assert.equal(new Set(links.map((l) => l.net1!.mac)).size, PODS, 'distinct macvlan MACs');
  assert.equal(bridgePorts(w.clusterBridge).length, PODS, 'one cluster bridge port per pod');

  // The result each runtime call got is that pod's own cluster address.
  for (const [i, a] of adds.entries()) {
    assert.deepEqual((a.json().ips as { address: string }[]).map((x) => x.address), [eth0s[i]], `pod ${i}'s ADD result`);
  }

  // host-local: exactly one reservation per attachment, held by that container and interface,
  // for the address its interface has.
  const expected = pods.flatMap((p, i) => [
    ['cluster', `${noPrefix(eth0s[i]!)}`, p.id, 'eth0'],
    ['side', `${noPrefix(net1s[i]!)}`, p.id, 'net1'],
  ]);
  const key = (r: string[]) => r.join(' ');
  assert.deepEqual(
    reservations(w.ipamDir).map((r) => key([r.network, r.ip, r.containerId, r.ifname])).sort(),
    expected.map(key).sort(),
  );

  // A journal record per container, and network-status per pod, each naming its own addresses.
  for (const [i, p] of pods.entries()) {
    const journal = JSON.parse(readFileSync(join(w.cniDir, '_plexus', `${p.id}.json`), 'utf8')) as {
      pod: { namespace: string; name: string; uid: string };
      attachments: { network: string; ifname: string; state: string }[];
    };
    assert.deepEqual(journal.pod, { namespace: p.ref.namespace, name: p.ref.name, uid: p.ref.uid }, `pod ${i}'s journal`);
    assert.deepEqual(journal.attachments.map((a) => [a.network, a.ifname, a.state]), [['cluster', 'eth0', 'added'], [`${podNs}/side`, 'net1', 'added']]);
    assert.deepEqual(
      networkStatus(w.api, p.ref).map((s) => [s.name, s.interface, s.ips, s.mac, s.default]),
      [
        ['cluster', 'eth0', [noPrefix(eth0s[i]!)], links[i]!.eth0!.mac, true],
        [`${podNs}/side`, 'net1', [noPrefix(net1s[i]!)], links[i]!.net1!.mac, false],
      ],
      `pod ${i}'s network-status`,
    );
  }
  assert.equal(w.footprint([up]).cache.length, 2 * PODS, 'a cached result per attachment');

  const dels = await allAtOnce(pods, 'DEL', conf, bin);
  for (const [i, d] of dels.entries()) assert.equal(d.status, 0, `DEL of pod ${i}: ${d.stdout}${d.stderr}`);
  assertOverlapped(dels, 'DEL');
  for (const p of pods) assert.deepEqual(linksIn(p.ns.name).map((l) => l.ifname), ['lo'], `${p.id}'s namespace is empty`);
  assert.deepEqual(hostLinksOf([w.clusterBridge, up]), [], 'no host link left on the bridge or the uplink');
  assert.deepEqual(reservations(w.ipamDir), [], 'every address released');
  const left = w.footprint([up]);
  assert.deepEqual([left.journal, left.cache, left.cniDir], [[], [], []], 'no journal record, cached result or other file left');
  for (const p of pods) assert.ok(!existsSync(join(w.cniDir, '_plexus', `${p.id}.json`)));
  return { runs: [...adds, ...dels], ids: pods.map((p) => p.id) };
}

test(named("8 pods' ADDs at once, each its own plexus process: distinct addresses, every record and status; all DELs at once leave nothing"), async (t) => {
  const clusterSubnet = '10.221.0.0/24';
  const w = await world(t, clusterSubnet);
  await parallelPods(t, w, w.conf(), PLEXUS, '10.221.1.0/24', clusterSubnet);
});

test(named("8 pods' ADDs and DELs at once through plexus-shim and the daemon: the same guarantees"), async (t) => {
  const clusterSubnet = '10.221.2.0/24';
  const w = await world(t, clusterSubnet);
  const sockDir = join(w.dir, 'run');
  const daemon = await startDaemon(sockDir);
  t.after(() => daemon.stop());
  const shim = join(PLEXUS, '..', 'plexus-shim');
  // logLevel debug: the daemon logs which delegates ran in-process (checked when it stops).
  const conf = JSON.stringify({ ...JSON.parse(w.conf()), type: 'plexus-shim', daemonSocketDir: sockDir, logLevel: 'debug' });
  const { runs, ids } = await parallelPods(t, w, conf, shim, '10.221.3.0/24', clusterSubnet);
  // The per-call processes only forwarded: had one done the work itself, it would have logged.
  for (const r of runs) assert.equal(r.stderr, '', 'the daemon served every call');
  const served = new Set<string>();
  for (const line of daemon.log().split('\n')) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { cmd?: string; containerId?: string; msg?: string };
    if (l.msg === 'phase config parsed') served.add(`${l.cmd} ${l.containerId}`);
  }
  assert.deepEqual([...served].sort(), ids.flatMap((id) => [`ADD ${id}`, `DEL ${id}`]).sort(), 'the daemon handled every ADD and DEL');
});
