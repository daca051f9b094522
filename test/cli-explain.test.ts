// `plexus explain` on a pod the real meta-plugin attached (cluster bridge + a NAD bridge) in a real
// netns against the test API server: journal, live interfaces and network-status agree; then an
// interface is deleted and network-status tampered with, and explain names both, exit 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { JsonObject } from '../src/cni/validate';
import { writeJournal } from '../src/delegates/journal';
import { formatLibcniCache, libcniCachePath } from '../src/delegates/multus-cache';
import { cli } from './helpers/cli';
import { ip, netns, removeLinkAfter, tempDir, uniq } from './helpers/host';
import { REFERENCE_PLUGINS, requireBuild, runtimeEnv } from './helpers/plexus';
import { bridgeConf, hostBridge, hostLocal, NETWORKS, podLinks, putPod, podArgs, STATUS, world, type StatusEntry } from './helpers/world';

requireBuild();

const CLUSTER = '10.227.0.0/24';

interface Row {
  ifname: string;
  network: string;
  recorded?: { ips: string[]; mac?: string; state: string };
  live?: { ips: string[]; mac?: string };
  status?: { ips: string[]; interface?: string };
  problems: string[];
}
interface Report {
  ok: boolean;
  containers: { containerId: string; source: string; pod?: { namespace: string; name: string }; netns: string; netnsPresent: boolean; networkStatus: string; rows: Row[]; problems: string[] }[];
}

test('explain: a pod attached by the meta-plugin, side by side; a broken state is flagged', { timeout: 180_000 }, async (t) => {
  const w = await world(t, CLUSTER);
  const podNs = uniq('ens');
  const blue = hostBridge(t);
  w.api.putNad(podNs, 'blue', bridgeConf('blue', blue, hostLocal(w.ipamDir, '10.227.1.0/24')));
  const pod = putPod(w.api, podNs, 'web', { [NETWORKS]: 'blue' });
  const id = uniq('ctr') + 'abcdef';
  const args = podArgs(pod, id);
  const conf = w.conf();
  t.after(() => w.run('DEL', id, args, conf));
  const add = await w.run('ADD', id, args, conf);
  assert.equal(add.status, 0, add.stdout + add.stderr);

  const explain = (target: string, json = true) => cli(['explain', target, '--cni-dir', w.cniDir, '--kubeconfig', w.kubeconfig, ...(json ? ['-o', 'json'] : [])]);
  const links = podLinks(w.ns.name);
  const live = (n: string) => ({ ips: links[n]!.addrs, mac: links[n]!.mac });
  const bare = (cidrs: string[]) => cidrs.map((c) => c.replace(/\/\d+$/, ''));

  // 1. all three agree, found by container ID, by a prefix of it, and by namespace/pod
  for (const target of [id, id.slice(0, 6), `${podNs}/web`]) {
    const r = await explain(target);
    assert.equal(r.status, 0, `${target}: ${r.stdout}${r.stderr}`);
    const rep = r.json<Report>();
    assert.equal(rep.ok, true);
    assert.equal(rep.containers.length, 1);
    const [c] = rep.containers;
    assert.deepEqual({ id: c!.containerId, source: c!.source, pod: c!.pod, netns: c!.netns, present: c!.netnsPresent, status: c!.networkStatus, problems: c!.problems }, {
      id,
      source: 'plexus journal',
      pod: { namespace: podNs, name: 'web', uid: pod.uid },
      netns: w.ns.path,
      present: true,
      status: 'read from the API',
      problems: [],
    });
    assert.deepEqual(
      c!.rows.map((row) => [row.ifname, row.network, row.recorded?.ips, row.recorded?.mac, row.live, row.status?.ips, row.problems]),
      [
        ['eth0', 'cluster', live('eth0').ips, live('eth0').mac, live('eth0'), bare(live('eth0').ips), []],
        ['net1', `${podNs}/blue`, live('net1').ips, live('net1').mac, live('net1'), bare(live('net1').ips), []],
      ],
    );
  }
  // On a node: no flags, the cniDir and kubeconfig of plexus's config in the conf dir.
  const confDir = join(w.dir, 'node-net.d');
  mkdirSync(confDir);
  writeFileSync(join(confDir, '00-plexus.conf'), conf);
  const byConf = await cli(['explain', `${podNs}/web`, '--conf-dir', confDir, '-o', 'json']);
  assert.equal(byConf.status, 0, byConf.stdout + byConf.stderr);
  assert.equal(byConf.json<Report>().containers[0]?.networkStatus, 'read from the API');
  const table = await explain(id, false);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`^container ${id} \\(plexus journal\\)  pod ${podNs}/web\\nnetns ${w.ns.path}  network-status: read from the API\\nIFNAME +NETWORK +RECORDED +LIVE +NETWORK-STATUS +VERDICT\\neth0 +cluster +`));
  assert.match(table.stdout, /\njournal, interfaces and network-status agree\n$/);

  // 2. break it: net1 gone from the netns, network-status naming another address for eth0
  ip('-n', w.ns.name, 'link', 'del', 'net1');
  const stored = w.api.getPod(podNs, 'web') as JsonObject;
  const annotations = (stored.metadata as JsonObject).annotations as Record<string, string>;
  const entries = JSON.parse(annotations[STATUS]!) as StatusEntry[];
  entries[0]!.ips = ['10.227.0.250'];
  w.api.putPod({ ...stored, metadata: { ...(stored.metadata as JsonObject), annotations: { ...annotations, [STATUS]: JSON.stringify(entries) } } });
  const r = await explain(`${podNs}/web`);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const rep = r.json<Report>();
  assert.equal(rep.ok, false);
  assert.deepEqual(
    rep.containers[0]!.rows.map((row) => [row.ifname, row.live === undefined, row.problems]),
    [
      ['eth0', false, [`network-status ips 10.227.0.250 differ from the recorded ${bare(live('eth0').ips).join(', ')}`]],
      ['net1', true, ['interface missing from the pod netns']],
    ],
  );
  const text = await explain(id, false);
  assert.equal(text.status, 1);
  assert.match(text.stdout, /\nnet1 +\S+\/blue +10\.227\.1\.\d+\/24 \S+ +MISSING +10\.227\.1\.\d+ +interface missing from the pod netns\n/);
  assert.match(text.stdout, /\nmismatches found\n$/);
});

test('explain: nothing recorded is exit 1; an ambiguous prefix is a usage error', async (t) => {
  const dir = tempDir(t);
  const r = await cli(['explain', 'nosuchcontainer', '--cni-dir', dir]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, `nothing recorded for nosuchcontainer in ${dir} (plexus journal or Multus cache)\n`);
  for (const id of ['abc111', 'abc222']) writeJournal(dir, { kind: 'plexusJournal', version: 1, containerId: id, netns: '', ifname: 'eth0', cniVersion: '1.1.0', attachments: [] });
  const amb = await cli(['explain', 'abc', '--cni-dir', dir]);
  assert.equal(amb.status, 2);
  assert.match(amb.stderr, /^plexus explain: "abc" matches 2 containers: abc111, abc222\n/);
});

test('explain: a pod Multus attached is read from its scratch file and libcni cache', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const cniDir = join(dir, 'multus');
  mkdirSync(join(cniDir, 'results'), { recursive: true });
  const ns = netns(t);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  const id = uniq('mctr');
  const args = `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=old-pod;K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=1234`;
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), subnet: '10.227.9.0/24' } });
  // Multus ran the reference bridge plugin through libcni; what it leaves on disk:
  const add = spawnSync(join(REFERENCE_PLUGINS, 'bridge'), [], { input: conf, encoding: 'utf8', env: runtimeEnv({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', args, path: REFERENCE_PLUGINS, stdin: conf }) });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(join(cniDir, id), JSON.stringify([{ Conf: { cniVersion: '1.0.0', name: 'cbr0', type: 'bridge' }, ConfList: {}, Name: 'cbr0', IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(conf) }]));
  writeFileSync(
    libcniCachePath(cniDir, 'cbr0', id, 'eth0'),
    formatLibcniCache({ containerId: id, ifName: 'eth0', networkName: 'cbr0', netns: ns.path, config: conf, cniArgs: args.split(';').map((kv) => kv.split('=') as [string, string]), capabilityArgs: {}, result: JSON.parse(add.stdout) as Record<string, never> }),
  );
  const links = podLinks(ns.name);
  for (const target of [id, 'default/old-pod']) {
    const r = await cli(['explain', target, '--cni-dir', cniDir, '--conf-dir', join(dir, 'no-conf'), '-o', 'json']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const c = r.json<Report>().containers[0]!;
    assert.deepEqual([c.source, c.pod, c.netns, c.networkStatus], ['Multus cache', { namespace: 'default', name: 'old-pod' }, ns.path, 'not read: no kubeconfig (--kubeconfig, or plexus config in --conf-dir)']);
    assert.deepEqual(c.rows.map((row) => [row.ifname, row.network, row.recorded?.ips, row.live?.ips, row.problems]), [['eth0', 'cbr0', links.eth0!.addrs, links.eth0!.addrs, []]]);
  }
});
