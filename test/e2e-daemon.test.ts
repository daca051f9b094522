// Daemon mode: the per-call plexus forwards to a resident `plexus daemon`, and does the work itself
// when the daemon is gone, so a stopped daemon never blocks attaching or tearing down a pod.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addrsIn, linkNamesIn, netns, removeLinkAfter, tempDir, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { startDaemon } from './helpers/daemon';
import { DELEGATES, named, PLEXUS, requireBuild, requireInProcessDelegates, runPlugin } from './helpers/plexus';

requireBuild();
requireInProcessDelegates();

test(named('ADD goes through the daemon; DEL falls back to the one-shot path once the daemon is stopped'), async (t) => {
  const dir = tempDir(t);
  const sockDir = join(dir, 'run');
  const ipamDir = join(dir, 'ipam');
  const ns = netns(t);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  const daemon = await startDaemon(sockDir);
  t.after(() => daemon.stop());
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'plexus-net',
    type: 'plexus',
    daemonSocketDir: sockDir,
    cniDir: join(dir, 'cni'),
    logLevel: 'debug',
    delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: ipamDir, subnet: '10.196.0.0/24' } }],
  });
  const id = uniq('dctr');
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.equal(add.stderr, '', 'the per-call process only forwarded: the daemon did the work and logged there');
  assert.match(addrsIn(ns.name, 'eth0')[0] ?? '', /^10\.196\.0\.\d+\/24$/);
  assert.ok(existsSync(join(dir, 'cni', '_plexus', `${id}.json`)));

  await daemon.stop();
  assert.ok(!existsSync(join(sockDir, 'plexus.sock')), 'the daemon removed its socket');
  if (DELEGATES === 'builtin') assert.match(daemon.log(), /"msg":"delegate runs in-process"/, 'the daemon ran the bridge in-process');
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.match(del.stderr, /phase config parsed/, 'the per-call process did the DEL itself');
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(ipamDir, 'cluster'), []);
});

test(named('errors from the daemon reach the runtime exactly as a one-shot call prints them'), async (t) => {
  const dir = tempDir(t);
  const sockDir = join(dir, 'run');
  const daemon = await startDaemon(sockDir);
  t.after(() => daemon.stop());
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'plexus', daemonSocketDir: sockDir, logLevel: 'nonsense', delegates: [{ type: 'bridge', name: 'x' }] });
  const viaDaemon = await runPlugin({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/none', ifname: 'eth0', stdin: conf });
  const direct = await runPlugin({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/none', ifname: 'eth0', stdin: conf.replace(sockDir, join(dir, 'nowhere')) });
  assert.equal(viaDaemon.status, 1);
  assert.deepEqual(viaDaemon.json(), direct.json());
  assert.equal(viaDaemon.json().code, 7);
  assert.match(String(viaDaemon.json().msg), /^logLevel: /);
});

test(named('plexus-shim (C) forwards to the daemon, and runs plexus itself when the daemon is gone'), async (t) => {
  const dir = tempDir(t);
  const sockDir = join(dir, 'run');
  const ipamDir = join(dir, 'ipam');
  const ns = netns(t);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  const shim = join(PLEXUS, '..', 'plexus-shim');
  const daemon = await startDaemon(sockDir);
  t.after(() => daemon.stop());
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'plexus-net',
    type: 'plexus-shim',
    daemonSocketDir: sockDir,
    cniDir: join(dir, 'cni'),
    logLevel: 'debug',
    delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: ipamDir, subnet: '10.196.1.0/24' } }],
  });
  const version = await runPlugin({ bin: shim, command: 'VERSION', stdin: '{"cniVersion":"1.0.0"}' });
  assert.equal(version.status, 0);
  assert.ok((version.json().supportedVersions as string[]).includes('1.1.0'), 'VERSION is answered by plexus itself');

  const id = uniq('sctr');
  const add = await runPlugin({ bin: shim, command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.equal(add.stderr, '', 'the daemon did the work: nothing was logged by a local plexus');
  assert.equal((add.json().interfaces as { name: string }[])[0]?.name, bridge);
  assert.match(addrsIn(ns.name, 'eth0')[0] ?? '', /^10\.196\.1\.\d+\/24$/);

  await daemon.stop();
  if (DELEGATES === 'builtin') assert.match(daemon.log(), /"msg":"delegate runs in-process"/, 'the daemon ran the bridge in-process');
  const del = await runPlugin({ bin: shim, command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.match(del.stderr, /phase config parsed/, 'the shim exec-ed plexus, which did the DEL');
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(ipamDir, 'cluster'), []);

  const bad = await runPlugin({ bin: shim, command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: '{"cniVersion":"1.0.0","daemonSocketDir":' });
  assert.equal(bad.status, 1, 'malformed config reaches plexus, which reports it');
  assert.equal(bad.json().code, 6);
});
