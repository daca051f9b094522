// The meta-plugin with plexus's own plugins: when binDir resolves a delegate's type to this same
// executable the plugin runs in-process; a different binary of the same name is still exec'd.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addrsIn, linkNamesIn, linksIn, netns, removeLinkAfter, restoreHostSysctlsAfter, tempDir, uniq, uplink } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { PLEXUS, requireBuild, runPlugin } from './helpers/plexus';

requireBuild();
const OURS = join(PLEXUS, '..');

interface World {
  dir: string;
  confDir: string;
  ipamDir: string;
  conf(binDir: string): string;
}

function world(t: Parameters<typeof tempDir>[0], up: string): World {
  const dir = tempDir(t);
  const confDir = join(dir, 'net.d');
  const ipamDir = join(dir, 'ipam');
  mkdirSync(confDir);
  const br0 = uniq('pxb');
  const br1 = uniq('pxb');
  removeLinkAfter(t, br0);
  removeLinkAfter(t, br1);
  // The cluster network's isGateway bridge turns on the host's forwarding.
  restoreHostSysctlsAfter(t);
  const hl = (subnet: string) => ({ type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet }]] });
  writeFileSync(join(confDir, 'mv.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'mv', type: 'macvlan', master: up, mode: 'bridge', ipam: hl('10.194.1.0/24') }));
  writeFileSync(join(confDir, 'st.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'st', type: 'bridge', bridge: br1, ipam: hl('10.194.2.0/24') }));
  const cluster = { cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge: br0, isGateway: true, ipam: hl('10.194.0.0/24') };
  return {
    dir,
    confDir,
    ipamDir,
    conf: (binDir) =>
      JSON.stringify({ cniVersion: '1.1.0', name: 'plexus-net', type: 'plexus', cniDir: join(dir, 'cni'), confDir, binDir, logLevel: 'debug', defaultNetworks: ['mv', 'st'], delegates: [cluster] }),
  };
}

/** A plugin that is a shell script in dir (made if missing). */
function shellPlugin(dir: string, name: string, body: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

test('built-in plugins run in-process: ADD, CHECK and DEL of a three-network pod', async (t) => {
  const up = uplink(t);
  const w = world(t, up);
  const ns = netns(t);
  const conf = w.conf(OURS);
  const id = uniq('bctr');
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const inProcess = add.stderr.split('\n').filter((l) => l.includes('delegate runs in-process') && l.includes('"verb":"ADD"'));
  assert.equal(inProcess.length, 3, 'bridge, macvlan and bridge ran inside the plexus process');
  assert.doesNotMatch(add.stderr, /"msg":"delegate exec"/);
  const kinds = Object.fromEntries(linksIn(ns.name).map((l) => [l.ifname, l.linkinfo?.info_kind]));
  assert.deepEqual(kinds, { lo: undefined, eth0: 'veth', net1: 'macvlan', net2: 'veth' });
  assert.match(addrsIn(ns.name, 'net1')[0] ?? '', /^10\.194\.1\.\d+\/24$/);

  const check = await runPlugin({ command: 'CHECK', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(check.status, 0, check.stdout + check.stderr);

  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  for (const net of ['cluster', 'mv', 'st']) assert.deepEqual(reservedIps(w.ipamDir, net), [], `${net} released`);
});

test('a foreign binary named like a built-in plugin is exec, not run in-process', async (t) => {
  const up = uplink(t);
  const w = world(t, up);
  const ns = netns(t);
  // A "macvlan" that is not plexus: it records that it ran, then is the reference plugin.
  const bin = join(w.dir, 'bin');
  const marker = join(w.dir, 'foreign-ran');
  shellPlugin(bin, 'macvlan', `echo "$CNI_COMMAND" >> ${marker}\nexec /usr/lib/cni/macvlan`);
  const conf = w.conf(bin);
  const id = uniq('fctr');
  // binDir holds only the foreign macvlan; bridge resolves on CNI_PATH to plexus's own build.
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf, path: OURS + ':/usr/lib/cni' });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.ok(existsSync(marker), 'the foreign macvlan ran');
  assert.ok(
    add.stderr.split('\n').some((l) => l.includes('"msg":"delegate exec"') && l.includes('"type":"macvlan"') && l.includes(join(bin, 'macvlan'))),
    'plexus logged exec of the foreign macvlan',
  );
  assert.equal(add.stderr.split('\n').filter((l) => l.includes('delegate runs in-process') && l.includes('"verb":"ADD"')).length, 2, 'the two bridges ran in-process');
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf, path: OURS + ':/usr/lib/cni' });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), ['ADD', 'DEL']);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
});

test('in-process DELs run together; one failing keeps only its own record, and a retry finishes it', async (t) => {
  const up = uplink(t);
  const w = world(t, up);
  const ns = netns(t);
  // st's IPAM refuses DEL with "try again" while the marker exists, otherwise it is host-local.
  const bin = join(w.dir, 'bin');
  const busy = join(w.dir, 'ipam-busy');
  shellPlugin(bin, 'flaky-ipam', `if [ "$CNI_COMMAND" = DEL ] && [ -e ${busy} ]; then echo '{"cniVersion":"1.0.0","code":11,"msg":"ipam store busy"}'; exit 1; fi\nexec /usr/lib/cni/host-local`);
  const st = JSON.parse(readFileSync(join(w.confDir, 'st.conf'), 'utf8')) as { ipam: Record<string, unknown> };
  writeFileSync(join(w.confDir, 'st.conf'), JSON.stringify({ ...st, ipam: { ...st.ipam, type: 'flaky-ipam' } }));
  const conf = w.conf(bin);
  const id = uniq('cctr');
  const call = (command: string) => runPlugin({ command, containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf, path: OURS + ':/usr/lib/cni' });
  const add = await call('ADD');
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.equal(add.stderr.split('\n').filter((l) => l.includes('delegate runs in-process') && l.includes('"verb":"ADD"')).length, 3);
  assert.equal(reservedIps(w.ipamDir, 'st').length, 1);

  writeFileSync(busy, '');
  const del = await call('DEL');
  assert.equal(del.status, 1, del.stdout + del.stderr);
  const err = del.json();
  assert.equal(err.code, 11);
  assert.match(String(err.msg), /1 attachment\(s\) could not be removed.*st \(net2\): .*ipam store busy/);
  assert.deepEqual(linkNamesIn(ns.name), ['lo'], 'every link went in the one group request');
  for (const net of ['cluster', 'mv']) assert.deepEqual(reservedIps(w.ipamDir, net), [], `${net} released despite st failing`);
  assert.equal(reservedIps(w.ipamDir, 'st').length, 1, 'st still holds its address');
  const journal = JSON.parse(readFileSync(join(w.dir, 'cni', '_plexus', `${id}.json`), 'utf8')) as { attachments: { network: string }[] };
  assert.deepEqual(journal.attachments.map((a) => a.network), ['st'], 'only the failed attachment stays journaled');

  rmSync(busy);
  const retry = await call('DEL');
  assert.equal(retry.status, 0, retry.stdout + retry.stderr);
  assert.deepEqual(reservedIps(w.ipamDir, 'st'), []);
  assert.equal(existsSync(join(w.dir, 'cni', '_plexus', `${id}.json`)), false);
});
