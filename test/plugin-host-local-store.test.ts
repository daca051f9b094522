// One host-local store shared by Debian's reference binary and plexus's: switching binaries with
// allocations live, in both directions, gives exactly what the reference alone gives; allocators
// of both kinds (and plexus in-process, as in the daemon) running at once never hand out one
// address twice. Also the CNI 1.1 verbs the reference lacks: GC and STATUS.
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CniEnv } from '../src/cni/env';
import { dispatch } from '../src/cni/skel';
import { asCniError } from '../src/cni/errors';
import { plugin } from '../plugins/host-local/host-local';
import { DiskStore } from '../plugins/host-local/store';
import { tempDir } from './helpers/host';
import { IPAM_BINS, ipamCall, NO_NETNS, outcome, reservedIps, storeTree, type IpamCall } from './helpers/ipam';
import type { JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';

const { ref: REF, ours: OURS } = IPAM_BINS['host-local'];
const confIn = (dataDir: string, subnet: string, version = '1.0.0'): string =>
  JSON.stringify({ cniVersion: version, name: 'net1', type: 'bridge', ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }], [{ subnet: 'fd00:95::/125' }]] } });

test('switching binaries on a live store, both directions, matches the reference alone', async (t) => {
  requireBuild();
  const shared = tempDir(t, 'pxhl-shared-');
  const control = tempDir(t, 'pxhl-control-');
  const R = 'ref';
  const O = 'ours';
  // [binary on the shared store, call]
  const steps: [string, IpamCall][] = [
    [R, { command: 'ADD', id: 'a' }],
    [R, { command: 'ADD', id: 'b' }],
    [O, { command: 'ADD', id: 'c' }],
    [O, { command: 'ADD', id: 'd' }],
    [R, { command: 'DEL', id: 'a' }],
    [R, { command: 'ADD', id: 'e' }],
    [O, { command: 'DEL', id: 'c' }],
    [O, { command: 'ADD', id: 'f' }],
    [R, { command: 'ADD', id: 'g' }],
    [O, { command: 'ADD', id: 'h' }],
    [R, { command: 'ADD', id: 'h' }],
    [R, { command: 'CHECK', id: 'f' }],
    [O, { command: 'CHECK', id: 'e' }],
    [O, { command: 'DEL', id: 'b' }],
    [R, { command: 'DEL', id: 'd' }],
    [O, { command: 'ADD', id: 'i' }],
    [R, { command: 'ADD', id: 'j' }],
    [O, { command: 'ADD', id: 'k' }],
  ];
  for (const [i, [who, call]] of steps.entries()) {
    const got = await ipamCall(who === R ? REF : OURS, call, confIn(shared, '10.95.0.0/29'));
    const want = await ipamCall(REF, call, confIn(control, '10.95.0.0/29'));
    assert.deepEqual(outcome(got), outcome(want), `step ${i}: ${who} ${call.command} ${call.id}`);
    assert.deepEqual(storeTree(shared), storeTree(control), `step ${i}: store`);
  }
});

function inProcess(call: IpamCall, stdin: string): Promise<{ status: number; out: JsonObject }> {
  const env: CniEnv = { command: call.command, containerId: call.id ?? 'c1', netns: NO_NETNS, ifname: call.ifname ?? 'eth0', args: '', path: [] };
  return dispatch(plugin, env, stdin).then(
    (s) => ({ status: 0, out: (s.trim() === '' ? {} : JSON.parse(s)) as JsonObject }),
    (err: unknown) => {
      const e = asCniError(err);
      return { status: 1, out: { code: e.code, msg: e.message } };
    },
  );
}

test('concurrent allocators of three kinds on one store: no address twice, exhaustion clean', async (t) => {
  requireBuild();
  const dir = tempDir(t, 'pxhl-race-');
  // /27: 30 hosts, the gateway .1 skipped: 29 addresses for 36 containers
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'net1', type: 'bridge', ipam: { type: 'host-local', dataDir: dir, subnet: '10.96.0.0/27' } });
  const ids = Array.from({ length: 36 }, (_, i) => `race${i}`);
  const kind = (i: number) => ['ref', 'ours', 'in-process'][i % 3] as string;
  const run = (i: number, command: 'ADD' | 'DEL') => {
    const call: IpamCall = { command, id: ids[i] };
    if (kind(i) === 'in-process') return inProcess(call, stdin);
    return ipamCall(kind(i) === 'ref' ? REF : OURS, call, stdin).then(outcome);
  };
  const adds = await Promise.all(ids.map((_, i) => run(i, 'ADD')));
  const ok = adds.flatMap((r, i) => (r.status === 0 ? [{ id: ids[i] as string, ip: String(((r.out as JsonObject).ips as JsonObject[])[0]?.address).split('/')[0] as string }] : []));
  const failed = adds.filter((r) => r.status !== 0);
  assert.equal(ok.length, 29, `29 allocations (failures: ${JSON.stringify(failed.map((f) => f.out))})`);
  assert.equal(new Set(ok.map((o) => o.ip)).size, 29, 'no address handed out twice');
  for (const f of failed) assert.deepEqual(f.out, { code: 999, msg: 'failed to allocate for range 0: no IP addresses available in range set: 10.96.0.1-10.96.0.30' });
  const store = join(dir, 'net1');
  const files = readdirSync(store).filter((f) => f.startsWith('10.'));
  assert.deepEqual(files.sort(), ok.map((o) => o.ip).sort(), 'one file per allocation, none for the failures');
  for (const o of ok) assert.equal(readFileSync(join(store, o.ip), 'latin1'), `${o.id}\r\neth0`);
  // every kind used, and the kinds that lost the race left nothing behind
  assert.ok(['ref', 'ours', 'in-process'].every((k) => ok.some((o) => kind(ids.indexOf(o.id)) === k)), 'each kind allocated');

  const dels = await Promise.all(ids.map((_, i) => run(i, 'DEL')));
  assert.ok(dels.every((d) => d.status === 0), JSON.stringify(dels.filter((d) => d.status !== 0)));
  assert.deepEqual(readdirSync(store).filter((f) => f.startsWith('10.')), [], 'all released');
});

test('GC frees the reservations of attachments the runtime no longer has, and only those', async (t) => {
  requireBuild();
  const dir = tempDir(t, 'pxhl-gc-');
  const conf = JSON.parse(confIn(dir, '10.97.0.0/28', '1.1.0')) as JsonObject;
  for (const [id, ifname] of [['a', 'eth0'], ['b', 'eth0'], ['a', 'eth1']] as const) {
    const r = await ipamCall(OURS, { command: 'ADD', id, ifname }, JSON.stringify(conf));
    assert.equal(r.status, 0, r.stdout);
  }
  // pre-0.7 files (container ID alone): kept while the container has any live attachment
  writeFileSync(join(dir, 'net1', '10.97.0.12'), 'old');
  writeFileSync(join(dir, 'net1', '10.97.0.13'), 'gone');
  const before = storeTree(dir);

  const missing = await ipamCall(OURS, { command: 'GC' }, JSON.stringify(conf));
  assert.equal(missing.code, 7, missing.stdout);
  assert.deepEqual(storeTree(dir), before, 'a GC without the list frees nothing');

  const valid = [
    { containerID: 'a', ifname: 'eth0' },
    { containerID: 'old', ifname: 'eth9' },
  ];
  const gc = await ipamCall(OURS, { command: 'GC' }, JSON.stringify({ ...conf, 'cni.dev/valid-attachments': valid }));
  assert.equal(gc.status, 0, gc.stdout);
  const left = readdirSync(join(dir, 'net1')).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')).sort();
  const held = (f: string) => readFileSync(join(dir, 'net1', f), 'latin1');
  assert.deepEqual(left.map(held).sort(), ['a\r\neth0', 'a\r\neth0', 'old'], `left: ${left.join(' ')}`);
  // the survivors are still a's own: CHECK through the reference agrees
  const check = await ipamCall(REF, { command: 'CHECK', id: 'a', ifname: 'eth0' }, confIn(dir, '10.97.0.0/28'));
  assert.equal(check.status, 0, check.stdout);
  const checkGone = await ipamCall(REF, { command: 'CHECK', id: 'b', ifname: 'eth0' }, confIn(dir, '10.97.0.0/28'));
  assert.equal(checkGone.status, 1, 'b was freed');
});

test('STATUS: fine on a usable store, code 50 when the data directory cannot be made', async (t) => {
  requireBuild();
  const dir = tempDir(t, 'pxhl-status-');
  const ok = await ipamCall(OURS, { command: 'STATUS' }, confIn(dir, '10.98.0.0/28', '1.1.0'));
  assert.equal(ok.status, 0, ok.stdout);
  writeFileSync(join(dir, 'file'), '');
  const bad = await ipamCall(OURS, { command: 'STATUS' }, confIn(join(dir, 'file'), '10.98.0.0/28', '1.1.0'));
  assert.equal(bad.code, 50, bad.stdout);
  mkdirSync(join(dir, 'x'));
  const badConf = await ipamCall(OURS, { command: 'STATUS' }, JSON.stringify({ cniVersion: '1.1.0', name: 'n', ipam: { type: 'host-local', dataDir: join(dir, 'x') } }));
  assert.deepEqual(outcome(badConf).out, { code: 999, msg: 'no IP ranges specified' });
});

// The lock itself, both ways: the reference waits while plexus holds the store's flock, and
// plexus waits while another holder (flock(1), the same system call as Go's) has it. Each side is
// checked to be still waiting after a grace period, then to finish once the lock is dropped: a
// negative check, so the sleep can only make the test miss a bug, never pass one.
test('the store lock excludes the reference and plexus from each other', async (t) => {
  requireBuild();
  const dir = tempDir(t, 'pxhl-lock-');
  const stdin = confIn(dir, '10.99.0.0/28');
  const grace = () => new Promise((r) => setTimeout(r, 400));
  const reservations = () => reservedIps(dir, 'net1');

  const store = DiskStore.open('net1', dir);
  await store.lock();
  let refDone = false;
  const ref = ipamCall(REF, { command: 'ADD', id: 'r' }, stdin).then((r) => {
    refDone = true;
    return r;
  });
  await grace();
  assert.equal(refDone, false, 'the reference waits for the lock plexus holds');
  assert.deepEqual(reservations(), []);
  store.unlock();
  assert.equal((await ref).status, 0);

  const holder = spawn('flock', [join(dir, 'net1', 'lock'), 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] });
  t.after(() => holder.kill());
  // wait (bounded) until the kernel lists flock(1)'s lock
  for (let i = 0; i < 200 && !readFileSync('/proc/locks', 'utf8').includes(`FLOCK  ADVISORY  WRITE ${holder.pid} `); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(readFileSync('/proc/locks', 'utf8').includes(` ${holder.pid} `), 'flock(1) holds the lock');
  let oursDone = false;
  const ours = inProcess({ command: 'ADD', id: 'o' }, stdin).then((r) => {
    oursDone = true;
    return r;
  });
  await grace();
  assert.equal(oursDone, false, 'plexus waits for the lock flock(1) holds');
  holder.stdin.end();
  const r = await ours;
  assert.equal(r.status, 0, JSON.stringify(r.out));
});
