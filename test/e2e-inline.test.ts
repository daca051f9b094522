// The meta-plugin end to end without the Kubernetes API: inline and file-based networks, run by
// the delegate set under test (helpers/plexus.ts DELEGATES) in real namespaces, exactly as a
// runtime would call plexus.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addrsIn, ip, linkNamesIn, netns, removeLinkAfter, restoreHostSysctlsAfter, tempDir, tryIp, uniq, uplink } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { DELEGATES, named, REFERENCE_PLUGINS, requireBuild, requireInProcessDelegates, runPlugin } from './helpers/plexus';

requireBuild();
requireInProcessDelegates();

interface Setup {
  dir: string;
  cniDir: string;
  confDir: string;
  ipamDir: string;
  bridge: string;
  conf(extra?: Record<string, unknown>): string;
}

function setup(t: Parameters<typeof tempDir>[0], cniVersion = '1.1.0'): Setup {
  const dir = tempDir(t);
  const cniDir = join(dir, 'cni');
  const confDir = join(dir, 'net.d');
  const ipamDir = join(dir, 'ipam');
  mkdirSync(confDir);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  // isGateway turns on the host's forwarding.
  restoreHostSysctlsAfter(t);
  const cluster = {
    cniVersion: '1.0.0',
    name: 'cluster',
    type: 'bridge',
    bridge,
    isGateway: true,
    ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.199.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  return {
    dir,
    cniDir,
    confDir,
    ipamDir,
    bridge,
    conf: (extra = {}) => JSON.stringify({ cniVersion, name: 'plexus-net', type: 'plexus', cniDir, confDir, delegates: [cluster], ...extra }),
  };
}

function macvlanConf(name: string, master: string, ipamDir: string, subnet: string): string {
  return JSON.stringify({ cniVersion: '1.0.0', name, type: 'macvlan', master, mode: 'bridge', ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet }]] } });
}

test(named('ADD attaches the cluster network and defaultNetworks, CHECK passes, DEL removes everything'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const up = uplink(t);
  writeFileSync(join(s.confDir, '10-storage.conf'), macvlanConf('storage', up, s.ipamDir, '10.198.0.0/24'));
  const conf = s.conf({ defaultNetworks: ['storage'] });
  const id = uniq('ctr');

  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const result = add.json();
  assert.equal(result.cniVersion, '1.1.0');
  const ifaces = result.interfaces as { name: string; sandbox?: string }[];
  assert.ok(ifaces.some((i) => i.name === 'eth0' && i.sandbox === ns.path), 'result names eth0 in the pod');
  assert.deepEqual(linkNamesIn(ns.name).sort(), ['eth0', 'lo', 'net1']);
  assert.match(addrsIn(ns.name, 'eth0').join(), /^10\.199\.0\.\d+\/24/);
  assert.match(addrsIn(ns.name, 'net1').join(), /^10\.198\.0\.\d+\/24/);
  assert.equal(reservedIps(s.ipamDir, 'cluster').length, 1);
  assert.equal(reservedIps(s.ipamDir, 'storage').length, 1);
  assert.ok(existsSync(join(s.cniDir, '_plexus', `${id}.json`)), 'journal written');
  assert.deepEqual(readdirSync(join(s.cniDir, 'results')).sort(), [`cluster-${id}-eth0`, `storage-${id}-net1`]);

  const check = await runPlugin({ command: 'CHECK', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(check.status, 0, check.stdout + check.stderr);

  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(s.ipamDir, 'cluster'), []);
  assert.deepEqual(reservedIps(s.ipamDir, 'storage'), []);
  assert.ok(!existsSync(join(s.cniDir, '_plexus', `${id}.json`)), 'journal removed');
  assert.deepEqual(readdirSync(join(s.cniDir, 'results')), []);

  const again = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(again.status, 0, 'a repeated DEL succeeds');
  assert.equal(again.stdout, '');
});

test(named('CHECK fails when an attached interface was deleted, naming it'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const up = uplink(t);
  writeFileSync(join(s.confDir, 'storage.conf'), macvlanConf('storage', up, s.ipamDir, '10.198.1.0/24'));
  const conf = s.conf({ defaultNetworks: ['storage'] });
  const id = uniq('ctr');
  t.after(() => runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf }));
  assert.equal((await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf })).status, 0);
  tryIp('-n', ns.name, 'link', 'del', 'net1');
  const check = await runPlugin({ command: 'CHECK', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(check.status, 1);
  assert.match(String(check.json().msg), /storage.*net1 is missing/);
});

test(named('a delegate failing mid-chain rolls back what was attached and leaves nothing'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  writeFileSync(join(s.confDir, 'broken.conf'), macvlanConf('broken', 'pxnosuchdev0', s.ipamDir, '10.198.2.0/24'));
  const conf = s.conf({ defaultNetworks: ['broken'] });
  const id = uniq('ctr');
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 1);
  const err = add.json();
  assert.equal(typeof err.code, 'number');
  assert.match(String(err.msg), /^network broken \(net1\): /, 'the error names the network and interface');
  assert.deepEqual(linkNamesIn(ns.name), ['lo'], 'eth0 rolled back');
  assert.deepEqual(reservedIps(s.ipamDir, 'cluster'), []);
  assert.deepEqual(reservedIps(s.ipamDir, 'broken'), []);
  assert.ok(!existsSync(join(s.cniDir, '_plexus', `${id}.json`)), 'no journal record left');
});

test(named('DEL works when the network namespace is already gone'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const conf = s.conf();
  const id = uniq('ctr');
  assert.equal((await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf })).status, 0);
  tryIp('netns', 'del', ns.name);
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(reservedIps(s.ipamDir, 'cluster'), [], 'IP released');
  assert.ok(!existsSync(join(s.cniDir, '_plexus', `${id}.json`)));
  const del2 = await runPlugin({ command: 'DEL', containerId: id, netns: '', ifname: 'eth0', stdin: conf });
  assert.equal(del2.status, 0);
});

test(named('a delegate DEL that fails keeps the record and returns code 11; a retry finishes the job'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const up = uplink(t);
  // The secondary network's plugin lives only in binDir, and goes missing between ADD and DEL.
  // A copy of the reference macvlan in either mode: plexus runs a built-in only under its own name.
  const binDir = join(s.dir, 'bin');
  mkdirSync(binDir);
  copyFileSync(join(REFERENCE_PLUGINS, 'macvlan'), join(binDir, 'pxmacvlan'));
  chmodSync(join(binDir, 'pxmacvlan'), 0o755);
  writeFileSync(join(s.confDir, 'storage.conf'), JSON.stringify({ ...JSON.parse(macvlanConf('storage', up, s.ipamDir, '10.198.3.0/24')), type: 'pxmacvlan' }));
  const conf = s.conf({ defaultNetworks: ['storage'], binDir });
  const id = uniq('ctr');
  assert.equal((await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf })).status, 0);
  rmSync(join(binDir, 'pxmacvlan'));
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(del.status, 1);
  assert.equal(del.json().code, 11);
  assert.match(String(del.json().msg), /storage \(net1\)/);
  assert.ok(existsSync(join(s.cniDir, '_plexus', `${id}.json`)), 'record kept for the retry');
  assert.deepEqual(linkNamesIn(ns.name).sort(), ['lo', 'net1'], 'the cluster network went, net1 stays');
  assert.equal(reservedIps(s.ipamDir, 'storage').length, 1, 'its IP is still accounted for, not leaked silently');

  copyFileSync(join(REFERENCE_PLUGINS, 'macvlan'), join(binDir, 'pxmacvlan'));
  chmodSync(join(binDir, 'pxmacvlan'), 0o755);
  const retry = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(retry.status, 0, retry.stdout);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(s.ipamDir, 'storage'), []);
  assert.ok(!existsSync(join(s.cniDir, '_plexus', `${id}.json`)));
});

test(named('GC tears down containers missing from valid-attachments and keeps the valid ones'), async (t) => {
  const s = setup(t);
  const keep = netns(t);
  const stale = netns(t);
  const conf = s.conf();
  const keepId = uniq('keep');
  const staleId = uniq('stale');
  t.after(() => runPlugin({ command: 'DEL', containerId: keepId, netns: keep.path, ifname: 'eth0', stdin: conf }));
  assert.equal((await runPlugin({ command: 'ADD', containerId: keepId, netns: keep.path, ifname: 'eth0', stdin: conf })).status, 0);
  assert.equal((await runPlugin({ command: 'ADD', containerId: staleId, netns: stale.path, ifname: 'eth0', stdin: conf })).status, 0);
  const gcConf = JSON.stringify({ ...JSON.parse(conf), 'cni.dev/valid-attachments': [{ containerID: keepId, ifname: 'eth0' }] });
  const gc = await runPlugin({ command: 'GC', stdin: gcConf });
  assert.equal(gc.status, 0, gc.stdout + gc.stderr);
  assert.deepEqual(linkNamesIn(stale.name), ['lo'], 'stale container torn down');
  assert.deepEqual(linkNamesIn(keep.name).sort(), ['eth0', 'lo'], 'valid container kept');
  assert.equal(reservedIps(s.ipamDir, 'cluster').length, 1);
  assert.ok(existsSync(join(s.cniDir, '_plexus', `${keepId}.json`)));
  assert.ok(!existsSync(join(s.cniDir, '_plexus', `${staleId}.json`)));
});

test(named('GC forwards to the delegates only when every valid container has a record'), async (t) => {
  // delegates of CNI 1.1 (the only ones GC is forwarded to): the reference plugins 1.1.1 predate it
  if (DELEGATES !== 'builtin') return t.skip('the reference plugins 1.1.1 do not speak CNI 1.1');
  const s = setup(t);
  const keep = netns(t);
  const conf = JSON.parse(s.conf()) as { delegates: Record<string, unknown>[] };
  conf.delegates = conf.delegates.map((d) => ({ ...d, cniVersion: '1.1.0' }));
  const conf11 = JSON.stringify(conf);
  const keepId = uniq('keep');
  t.after(() => runPlugin({ command: 'DEL', containerId: keepId, netns: keep.path, ifname: 'eth0', stdin: conf11 }));
  assert.equal((await runPlugin({ command: 'ADD', containerId: keepId, netns: keep.path, ifname: 'eth0', stdin: conf11 })).status, 0);
  // a pod attached before plexus (Multus): host-local holds its address, plexus has no record
  writeFileSync(join(s.ipamDir, 'cluster', '10.199.0.200'), 'multuspod\r\neth0');
  const gc = (valid: string[]) =>
    runPlugin({ command: 'GC', stdin: JSON.stringify({ ...conf, 'cni.dev/valid-attachments': valid.map((id) => ({ containerID: id, ifname: 'eth0' })) }) });
  const first = await gc([keepId, 'multuspod']);
  assert.equal(first.status, 0, first.stdout + first.stderr);
  assert.deepEqual(reservedIps(s.ipamDir, 'cluster').sort(), ['10.199.0.2', '10.199.0.200'], 'the unrecorded pod keeps its address');
  // once it is gone from the runtime's list, the delegates' GC frees the address
  const second = await gc([keepId]);
  assert.equal(second.status, 0, second.stdout + second.stderr);
  assert.deepEqual(reservedIps(s.ipamDir, 'cluster'), ['10.199.0.2'], 'the orphan reservation is freed, the live one kept');
});

test(named('results are converted to the version plexus is configured for'), async (t) => {
  const s = setup(t, '0.3.1');
  const ns = netns(t);
  const conf = s.conf();
  const id = uniq('ctr');
  t.after(() => runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf }));
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout);
  const r = add.json();
  assert.equal(r.cniVersion, '0.3.1');
  const ips = r.ips as { version?: string; address: string }[];
  assert.equal(ips[0]?.version, '4', '0.3.x results carry ips[].version');
});

test(named('DEL deletes plain links in one request but leaves a tuning chain its link for its own DEL'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const up = uplink(t);
  // tuning backs up the MAC it changes and restores it onto the link on DEL: the link must still be there.
  writeFileSync(
    join(s.confDir, 'tuned.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'tuned',
      plugins: [JSON.parse(macvlanConf('tuned', up, s.ipamDir, '10.198.4.0/24')), { type: 'tuning', mac: '02:11:22:33:44:55', dataDir: join(s.dir, 'tuning') }],
    }),
  );
  writeFileSync(join(s.confDir, 'plain.conf'), macvlanConf('plain', up, s.ipamDir, '10.198.5.0/24'));
  const conf = s.conf({ defaultNetworks: ['plain', 'tuned'] });
  const id = uniq('ctr');
  const add = await runPlugin({ command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(linkNamesIn(ns.name).sort(), ['eth0', 'lo', 'net1', 'net2']);
  const del = await runPlugin({ command: 'DEL', containerId: id, netns: ns.path, ifname: 'eth0', stdin: JSON.stringify({ ...JSON.parse(conf), logLevel: 'debug' }) });
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.match(del.stderr, /"links":2,.*"msg":"phase pod links deleted in one request"/, 'eth0 and net1 went in one request');
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(s.ipamDir, 'tuned'), []);
  assert.deepEqual(reservedIps(s.ipamDir, 'plain'), []);
});

test(named('CHECK passes on two pods sharing a bridge whose MAC the kernel moved as ports joined'), async (t) => {
  const s = setup(t);
  // No isGateway: the reference bridge then never sets the bridge's MAC, so the kernel gives it
  // the lowest MAC of its ports; plexus's own bridge pins it when it creates the bridge.
  const shared = { cniVersion: '1.0.0', name: 'shared', type: 'bridge', bridge: s.bridge, ipam: { type: 'host-local', dataDir: s.ipamDir, ranges: [[{ subnet: '10.199.8.0/24' }]] } };
  const conf = s.conf({ delegates: [shared] });
  const pods = [netns(t), netns(t)].map((ns) => ({ ns, id: uniq('ctr') }));
  const lows = ['02:00:00:00:00:05', '02:00:00:00:00:03'];
  for (const [i, p] of pods.entries()) {
    t.after(() => runPlugin({ command: 'DEL', containerId: p.id, netns: p.ns.path, ifname: 'eth0', stdin: conf }));
    const add = await runPlugin({ command: 'ADD', containerId: p.id, netns: p.ns.path, ifname: 'eth0', stdin: conf });
    assert.equal(add.status, 0, add.stdout + add.stderr);
    // Another pod's port with a MAC lower than any random one joins the bridge after each ADD.
    const low = uniq('pxlow');
    ip('link', 'add', low, 'address', lows[i]!, 'type', 'veth', 'peer', 'name', `${low}p`);
    removeLinkAfter(t, low);
    ip('link', 'set', low, 'master', s.bridge, 'up');
  }
  const mac = (JSON.parse(ip('-j', 'link', 'show', s.bridge)) as { address: string }[])[0]!.address;
  if (DELEGATES === 'reference') assert.equal(mac, lows[1], 'the kernel moved the bridge MAC to its lowest port');
  else assert.ok(!lows.includes(mac), 'the bridge plexus made kept the MAC it was born with');
  for (const p of pods) {
    const check = await runPlugin({ command: 'CHECK', containerId: p.id, netns: p.ns.path, ifname: 'eth0', stdin: conf });
    assert.equal(check.status, 0, `CHECK of ${p.id}: ${check.stdout}${check.stderr}`);
  }
  // A MAC someone set is a real change and still fails CHECK.
  ip('link', 'set', s.bridge, 'address', '02:00:00:00:00:09');
  const check = await runPlugin({ command: 'CHECK', containerId: pods[0]!.id, netns: pods[0]!.ns.path, ifname: 'eth0', stdin: conf });
  assert.notEqual(check.status, 0);
  assert.match(String(check.json().msg), /Mac doesn't match/);
});
