// A pod attached by Multus before plexus replaced it: plexus's DEL finds no journal record and
// tears the pod down from Multus's own scratch file and libcni's result cache.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatLibcniCache, libcniCachePath } from '../src/delegates/multus-cache';
import { linkNamesIn, netns, removeLinkAfter, tempDir, uniq, uplink } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { named, REFERENCE_PLUGINS, requireBuild, requireInProcessDelegates, runPlugin, runtimeEnv } from './helpers/plexus';

requireBuild();
requireInProcessDelegates();

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Runs a reference plugin directly, as Multus (through libcni) did, whichever set plexus's DEL then uses. */
function reference(type: string, command: string, id: string, nsPath: string, ifname: string, args: string, conf: string): string {
  const r = spawnSync(join(REFERENCE_PLUGINS, type), [], {
    input: conf,
    encoding: 'utf8',
    env: runtimeEnv({ command, containerId: id, netns: nsPath, ifname, args, path: REFERENCE_PLUGINS, stdin: conf }),
  });
  assert.equal(r.status, 0, `${type} ${command}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

test(named('DEL tears down a pod that Multus attached, from its scratch file and libcni cache'), async (t) => {
  const dir = tempDir(t);
  const cniDir = join(dir, 'multus');
  const ipamDir = join(dir, 'ipam');
  mkdirSync(join(cniDir, 'results'), { recursive: true });
  const ns = netns(t);
  const up = uplink(t);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  const id = uniq('mctr');
  const args = `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=old-pod;K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=1234`;
  const clusterConf = JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: ipamDir, subnet: '10.197.0.0/24' } });
  const nadConf = JSON.stringify({ cniVersion: '1.0.0', name: 'macvlan-conf', type: 'macvlan', master: up, ipam: { type: 'host-local', dataDir: ipamDir, subnet: '10.197.1.0/24' } });

  const r0 = reference('bridge', 'ADD', id, ns.path, 'eth0', args, clusterConf);
  const r1 = reference('macvlan', 'ADD', id, ns.path, 'net1', args, nadConf);
  // What Multus v4 leaves on disk (layout documented in src/delegates/multus-cache.ts).
  writeFileSync(
    join(cniDir, id),
    JSON.stringify([
      { Conf: { cniVersion: '1.0.0', name: 'cbr0', type: 'bridge', ipam: { type: 'host-local' }, dns: {} }, ConfList: {}, Name: 'cbr0', IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(clusterConf) },
      { Conf: { cniVersion: '1.0.0', name: 'macvlan-conf', type: 'macvlan', ipam: { type: 'host-local' }, dns: {} }, ConfList: {}, Name: 'default/macvlan-conf', IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(nadConf) },
    ]),
    { mode: 0o600 },
  );
  for (const [net, ifname, conf, out] of [['cbr0', 'eth0', clusterConf, r0], ['macvlan-conf', 'net1', nadConf, r1]] as const) {
    writeFileSync(
      libcniCachePath(cniDir, net, id, ifname),
      formatLibcniCache({ containerId: id, ifName: ifname, networkName: net, netns: ns.path, config: conf, cniArgs: args.split(';').map((kv) => kv.split('=') as [string, string]), capabilityArgs: {}, result: JSON.parse(out) as Record<string, never> }),
    );
  }
  assert.deepEqual(linkNamesIn(ns.name).sort(), ['eth0', 'lo', 'net1']);

  const plexusConf = JSON.stringify({ cniVersion: '1.0.0', name: 'multus-cni-network', type: 'plexus', cniDir, delegates: [JSON.parse(clusterConf)] });
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', args, stdin: plexusConf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(ipamDir, 'cbr0'), []);
  assert.deepEqual(reservedIps(ipamDir, 'macvlan-conf'), []);
  assert.ok(!existsSync(join(cniDir, id)), 'Multus scratch file removed once everything is gone');
  assert.deepEqual(readdirSync(join(cniDir, 'results')), []);
});
