// ipvlan on this host, whose kernel has no ipvlan: the kernel's bare "Operation not supported"
// must reach the runtime as a CNI error that names ipvlan and says what to do, with the reference's
// code, and leave nothing behind. The ipvlan behaviour itself is tested in the VM
// (test/plugin-ipvlan.vm.test.ts), against the reference plugin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ip, linkNamesIn, netns, tempDir, tryIp, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { cni } from './helpers/oracle';
import { REFERENCE_PLUGINS, requireBuild, ROOT } from './helpers/plexus';

const OURS = join(ROOT, 'dist', 'bin', 'ipvlan');
const REF = join(REFERENCE_PLUGINS, 'ipvlan');

test('ipvlan on a kernel without ipvlan: a clear CNI error naming ipvlan, nothing left behind', async (t) => {
  requireBuild();
  const master = uniq('pxi');
  ip('link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`);
  t.after(() => tryIp('link', 'del', master));
  const probe = spawnSync('ip', ['link', 'add', `${master}i`, 'link', master, 'type', 'ipvlan'], { encoding: 'utf8' });
  if (probe.status === 0) {
    tryIp('link', 'del', `${master}i`);
    t.skip('this kernel has ipvlan: the VM suite covers it (test/plugin-ipvlan.vm.test.ts)');
    return;
  }
  const codes: (number | undefined)[] = [];
  for (const bin of [REF, OURS]) {
    const pod = netns(t, 'pxd');
    const dataDir = tempDir(t);
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'ipvnet', type: 'ipvlan', master, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.88.0.0/24' }]] } });
    const r = await cni(bin, { command: 'ADD', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin });
    assert.notEqual(r.status, 0);
    codes.push(r.code);
    assert.deepEqual(linkNamesIn(pod.name), ['lo']);
    assert.deepEqual(reservedIps(dataDir, 'ipvnet'), [], 'no address taken');
    if (bin === OURS) {
      const msg = String(r.out?.msg);
      assert.match(msg, /ipvlan/);
      assert.match(msg, /no ipvlan support/);
      assert.match(msg, /Operation not supported \(EOPNOTSUPP\)/, 'keeps the kernel answer');
      assert.match(msg, /modprobe ipvlan/, 'says what to do');
    }
  }
  assert.deepEqual(codes, [999, 999], 'the reference code for the same failure');
});

test('ipvlan config errors found before the kernel is asked: same code as the reference', async (t) => {
  requireBuild();
  const master = uniq('pxi');
  ip('link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`);
  t.after(() => tryIp('link', 'del', master));
  const bad = [
    { cniVersion: '1.0.0', name: 'n', type: 'ipvlan', master, mode: 'bridge' },
    { cniVersion: '1.0.0', name: 'n', type: 'ipvlan', master: 'pxnosuchdev0' },
    { cniVersion: '1.0.0', name: 'n', type: 'ipvlan', prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'a' }, { name: 'b' }] } },
  ];
  for (const conf of bad) {
    const pod = netns(t, 'pxd');
    const run = (bin: string) => cni(bin, { command: 'ADD', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin: JSON.stringify(conf) });
    const [ref, ours] = [await run(REF), await run(OURS)];
    assert.notEqual(ours.status, 0, JSON.stringify(conf));
    assert.equal(ours.code, ref.code, `${JSON.stringify(conf)}: reference ${ref.stdout} plexus ${ours.stdout}`);
  }
});
