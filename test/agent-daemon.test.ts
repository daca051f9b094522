// The node agent end to end: `plexus daemon --config` with Multus's daemon-config keys, the C shim
// and the node forwarder in front of it, the test API behind it, real netns/bridges as delegates,
// plus a "gate" delegate (a shell CNI plugin that logs its calls and, when the test made a FIFO for
// one, waits on it) so the tests control when a request is in flight instead of guessing with sleeps.
import assert from 'node:assert/strict';
import { chmodSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import type { JsonObject } from '../src/cni/validate';
import { startApiServer, type FakeApi } from './apiserver/server';
import { startAgent as startNodeAgent, type Agent } from './helpers/daemon';
import { linkNamesIn, netns, removeLinkAfter, tempDir, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { DELEGATE_PATH, PLEXUS, requireBuild, runPlugin, type Outcome } from './helpers/plexus';

requireBuild();
const SHIM = join(PLEXUS, '..', 'plexus-shim');
const NODE = 'node-test-1';

const GATE = `#!/bin/sh
# A CNI plugin for scheduling tests: logs each call's start and end; a FIFO named after the call
# makes it wait until the test writes a line to it (taken once, so a retry does not wait).
dir=$(dirname "$0")
cat >/dev/null
echo "start $CNI_COMMAND $CNI_CONTAINERID" >>"$dir/gate.log"
f="$dir/$CNI_CONTAINERID.$CNI_COMMAND.fifo"
if [ -p "$f" ] && mv "$f" "$f.taken" 2>/dev/null; then read x <"$f.taken"; fi
echo "end $CNI_COMMAND $CNI_CONTAINERID" >>"$dir/gate.log"
if [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[]}'; fi
exit 0
`;

interface Gate {
  dir: string;
  log(): string[];
  /** Makes the next <verb> of <id> wait; release() lets it go. */
  hold(id: string, verb: string): { release(): Promise<void> };
}

/** Whether a process runs the script at `path` (its argv names it). */
function gatesRunning(path: string): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(path)) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

function gate(t: TestContext): Gate {
  const holds: string[] = [];
  // Registered before the temp dir is made, so it runs before the dir is removed. O_RDWR never
  // blocks on a FIFO: a gate still waiting is released, none is waited for.
  let dir = '';
  t.after(async () => {
    for (const f of holds) {
      if (!existsSync(`${f}.taken`)) continue;
      const fd = openSync(`${f}.taken`, constants.O_RDWR | constants.O_NONBLOCK);
      writeSync(fd, 'go\n');
      closeSync(fd);
    }
    // A released gate whose daemon was killed still appends its last log line: the dir goes
    // only once no gate runs, or its removal races that write (ENOTEMPTY).
    const deadline = Date.now() + 10_000;
    while (gatesRunning(join(dir, 'gate')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  });
  dir = tempDir(t, 'plexus-gate-');
  writeFileSync(join(dir, 'gate'), GATE);
  chmodSync(join(dir, 'gate'), 0o755);
  return {
    dir,
    log: () => (existsSync(join(dir, 'gate.log')) ? readFileSync(join(dir, 'gate.log'), 'utf8').trim().split('\n') : []),
    hold(id, verb) {
      const f = join(dir, `${id}.${verb}.fifo`);
      execFileSync('mkfifo', [f]);
      holds.push(f);
      return {
        release: async () => {
          holds.splice(holds.indexOf(f), 1);
          await writeFile(`${f}.taken`, 'go\n');
        },
      };
    },
  };
}

/** Polls a condition the daemon makes true (no fixed sleep); fails with `what` after 15 s. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const startAgent = (t: TestContext, dir: string, config: JsonObject) => startNodeAgent(t, dir, config, NODE);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, strictly: every line a comment or `name{labels} value`. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.trim().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$/);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = l.indexOf('=');
      labels[l.slice(0, eq)] = l.slice(eq + 2, -1);
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sample(s: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return s.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;
}

async function metric(a: Agent, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sample(parseMetrics((await a.get('/metrics')).text), name, labels);
}

function call(bin: string, command: string, id: string, nsPath: string, conf: object, args?: string): Promise<Outcome> {
  return runPlugin({ bin, command, containerId: id, netns: nsPath, ifname: 'eth0', stdin: JSON.stringify(conf), path: DELEGATE_PATH, ...(args ? { args } : {}) });
}

test('daemon --config: Multus keys honoured, an ADD reads nothing from the API, /metrics /healthz /readyz answer', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const api: FakeApi = await startApiServer({ tls: true, token: 'tok' });
  t.after(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const ns = netns(t);
  const [br0, br1] = [uniq('pxa'), uniq('pxa')];
  removeLinkAfter(t, br0);
  removeLinkAfter(t, br1);
  const ipam = join(dir, 'ipam');
  api.putNad('team', 'storage', JSON.stringify({ cniVersion: '1.0.0', type: 'bridge', bridge: br1, ipam: { type: 'host-local', dataDir: ipam, subnet: '10.197.1.0/24' } }));
  api.putNad('other', 'foreign', '{"cniVersion":"1.0.0","type":"bridge"}');
  const pod = api.putPod({ metadata: { name: 'web', namespace: 'team', annotations: { 'k8s.v1.cni.cncf.io/networks': 'storage' } }, spec: { nodeName: NODE } });
  const foreign = api.putPod({ metadata: { name: 'nosy', namespace: 'team', annotations: { 'k8s.v1.cni.cncf.io/networks': 'other/foreign' } }, spec: { nodeName: NODE } });
  const agent = await startAgent(t, dir, {
    cniVersion: '0.3.1',
    kubeconfig,
    // Multus thick keys: these two override the CNI conf of every request.
    namespaceIsolation: true,
    globalNamespaces: 'default',
    multusConfigFile: 'auto',
    multusMasterCNI: '10-flannel.conflist',
    connectionLimit: 4,
    logLevel: 'error',
  });
  await until('/readyz ok (caches listed and watching)', async () => (await agent.get('/readyz')).status === 200);
  assert.equal((await agent.get('/healthz')).status, 200);
  assert.equal((await agent.get('/nope')).status, 404);
  const conf = {
    cniVersion: '1.0.0',
    name: 'plexus-net',
    type: 'plexus-shim',
    daemonSocketDir: agent.sockDir,
    kubeconfig,
    cniDir: join(dir, 'cni'),
    namespaceIsolation: false,
    delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge: br0, ipam: { type: 'host-local', dataDir: ipam, subnet: '10.197.0.0/24' } }],
  };
  const uidOf = (o: JsonObject) => String((o.metadata as JsonObject).uid);
  const args = (name: string, uid: string) => `K8S_POD_NAMESPACE=team;K8S_POD_NAME=${name};K8S_POD_UID=${uid}`;
  api.clearRequests();
  const id = uniq('actr');
  const add = await call(SHIM, 'ADD', id, ns.path, conf, args('web', uidOf(pod)));
  assert.equal(add.status, 0, add.stdout + add.stderr);
  assert.deepEqual(linkNamesIn(ns.name).sort(), ['eth0', 'lo', 'net1']);
  const reads = api.requests().filter((r) => r.method === 'GET' && !r.query.includes('watch=true'));
  assert.deepEqual(reads.map((r) => r.path), [], 'pod and NAD came from the watch caches');
  const status = JSON.parse(String(((api.getPod('team', 'web')!.metadata as JsonObject).annotations as JsonObject)['k8s.v1.cni.cncf.io/network-status'])) as JsonObject[];
  assert.deepEqual(status.map((s) => s.name), ['cluster', 'team/storage']);

  // namespaceIsolation came from the daemon config, although the CNI conf says false.
  const nosy = await call(SHIM, 'ADD', uniq('actr'), ns.path, conf, args('nosy', uidOf(foreign)));
  assert.equal(nosy.status, 1);
  assert.match(String(nosy.json().msg), /^namespaceIsolation: pod in namespace team may not use network other\/foreign/);

  const del = await call(SHIM, 'DEL', id, ns.path, conf, args('web', uidOf(pod)));
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.deepEqual(linkNamesIn(ns.name), ['lo']);
  assert.deepEqual(reservedIps(ipam, 'cluster'), []);

  const s = parseMetrics((await agent.get('/metrics')).text);
  assert.equal(sample(s, 'plexus_requests_total', { verb: 'ADD', code: '0' }), 1);
  assert.equal(sample(s, 'plexus_requests_total', { verb: 'ADD', code: '7' }), 1, 'the refused ADD, by its CNI code');
  assert.equal(sample(s, 'plexus_requests_total', { verb: 'DEL', code: '0' }), 1);
  assert.equal(sample(s, 'plexus_request_duration_seconds_count', { verb: 'ADD' }), 2);
  assert.equal(sample(s, 'plexus_request_duration_seconds_bucket', { verb: 'ADD', le: '+Inf' }), 2);
  assert.equal(sample(s, 'plexus_delegate_duration_seconds_count', { type: 'bridge', verb: 'ADD' }), 2, 'cluster + storage');
  assert.ok((sample(s, 'plexus_api_requests_total', { method: 'PATCH', status: '200' }) ?? 0) >= 1);
  assert.equal(sample(s, 'plexus_cache_live', { cache: 'pods' }), 1);
  assert.equal(sample(s, 'plexus_cache_live', { cache: 'networkattachmentdefinitions' }), 1);
  assert.ok((sample(s, 'plexus_cache_age_seconds', { cache: 'pods' }) ?? -1) >= 0);
  assert.equal(sample(s, 'plexus_inflight_requests'), 0);
  assert.equal(sample(s, 'plexus_connection_limit'), 4);
});

test('one container\'s requests never overlap, other containers go ahead, and connectionLimit queues the rest', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const g = gate(t);
  const ns = netns(t);
  const agent = await startAgent(t, dir, { connectionLimit: 2, watchCaches: false });
  const conf = { cniVersion: '1.0.0', name: 'gated', type: 'plexus-shim', daemonSocketDir: agent.sockDir, cniDir: join(dir, 'cni'), delegates: [{ cniVersion: '1.0.0', name: 'g', type: 'gate' }] };
  const path = `${g.dir}:${DELEGATE_PATH}`;
  const run = (command: string, id: string) => runPlugin({ bin: SHIM, command, containerId: id, netns: ns.path, ifname: 'eth0', stdin: JSON.stringify(conf), path });
  const holdA = g.hold('ca', 'ADD');
  const addA = run('ADD', 'ca');
  await until('ADD ca is in the gate', () => g.log().includes('start ADD ca'));
  const delA = run('DEL', 'ca');
  await until('DEL ca is queued behind ADD ca', async () => (await metric(agent, 'plexus_queued_requests')) === 1);
  const holdB = g.hold('cb', 'ADD');
  const addB = run('ADD', 'cb');
  await until('ADD cb runs beside ADD ca', () => g.log().includes('start ADD cb'));
  assert.ok(!g.log().includes('start DEL ca'), 'the DEL of ca waits for its ADD');
  // Two run (the limit); a third container's ADD waits for a slot.
  const addC = run('ADD', 'cc');
  await until('ADD cc queued', async () => (await metric(agent, 'plexus_queued_requests')) === 2);
  assert.equal(await metric(agent, 'plexus_inflight_requests'), 2);
  assert.ok(!g.log().includes('start ADD cc'));
  await holdB.release();
  assert.equal((await addB).status, 0);
  await until('ADD cc got the slot', () => g.log().includes('start ADD cc'));
  assert.equal((await addC).status, 0);
  assert.ok(!g.log().includes('start DEL ca'), 'still behind ADD ca');
  await holdA.release();
  const [a, d] = await Promise.all([addA, delA]);
  assert.equal(a.status, 0, a.stdout);
  assert.equal(d.status, 0, d.stdout);
  const log = g.log();
  assert.ok(log.indexOf('end ADD ca') < log.indexOf('start DEL ca'), `ADD then DEL of ca, never overlapping:\n${log.join('\n')}`);
});

for (const [label, bin] of [['C shim', SHIM], ['node forwarder', PLEXUS]] as const) {
  test(`daemon killed mid-DEL: the ${label} runs the DEL itself and nothing leaks; a lost ADD answer stays code 11`, { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const g = gate(t);
    const ns = netns(t);
    const br = uniq('pxk');
    removeLinkAfter(t, br);
    const ipam = join(dir, 'ipam');
    const agent = await startAgent(t, dir, { watchCaches: false });
    const conf = {
      cniVersion: '1.0.0',
      name: 'killed',
      type: bin === SHIM ? 'plexus-shim' : 'plexus',
      daemonSocketDir: agent.sockDir,
      cniDir: join(dir, 'cni'),
      // DEL runs the delegates in reverse: the gate first, while the bridge is still attached.
      delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'bridge', bridge: br, ipam: { type: 'host-local', dataDir: ipam, subnet: '10.197.2.0/24' } }, { cniVersion: '1.0.0', name: 'g', type: 'gate' }],
    };
    const path = `${g.dir}:${DELEGATE_PATH}`;
    const run = (command: string) => runPlugin({ bin, command, containerId: 'kctr', netns: ns.path, ifname: 'eth0', stdin: JSON.stringify(conf), path });
    const add = await run('ADD');
    assert.equal(add.status, 0, add.stdout + add.stderr);
    assert.equal(reservedIps(ipam, 'cluster').length, 1);
    g.hold('kctr', 'DEL');
    const del = run('DEL');
    await until('the daemon\'s DEL is in the gate', () => g.log().includes('start DEL kctr'));
    agent.proc.kill('SIGKILL');
    const out = await del;
    assert.equal(out.status, 0, out.stdout + out.stderr);
    if (bin === SHIM) assert.match(out.stderr, /running the DEL itself/);
    assert.deepEqual(linkNamesIn(ns.name), ['lo']);
    assert.deepEqual(reservedIps(ipam, 'cluster'), []);
    assert.ok(!existsSync(join(dir, 'cni', '_plexus', 'kctr.json')), 'journal record removed');

    // An ADD whose answer is lost is not redone by the forwarder: the runtime decides.
    const again = await startAgent(t, join(dir, 'second'), { watchCaches: false, socketDir: agent.sockDir });
    g.hold('kctr', 'ADD');
    const lost = run('ADD');
    await until('the daemon\'s ADD is in the gate', () => g.log().filter((l) => l === 'start ADD kctr').length === 2);
    again.proc.kill('SIGKILL');
    const res = await lost;
    assert.equal(res.status, 1);
    assert.equal(res.json().code, 11);
    assert.equal(g.log().filter((l) => l === 'start ADD kctr').length, 2, 'not run a third time');
    // Clean up what the killed daemon's ADD attached, one-shot.
    const cleanup = await runPlugin({ bin: PLEXUS, command: 'DEL', containerId: 'kctr', netns: ns.path, ifname: 'eth0', stdin: JSON.stringify({ ...conf, type: 'plexus', daemonSocketDir: join(dir, 'gone') }), path });
    assert.equal(cleanup.status, 0, cleanup.stdout);
  });
}

test('SIGTERM with a request in flight: /readyz fails, the socket goes, the request finishes and is answered, exit 0', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const g = gate(t);
  const ns = netns(t);
  const agent = await startAgent(t, dir, { watchCaches: false });
  const conf = { cniVersion: '1.0.0', name: 'term', type: 'plexus-shim', daemonSocketDir: agent.sockDir, cniDir: join(dir, 'cni'), delegates: [{ cniVersion: '1.0.0', name: 'g', type: 'gate' }] };
  const path = `${g.dir}:${DELEGATE_PATH}`;
  const run = (command: string, id: string) => runPlugin({ bin: SHIM, command, containerId: id, netns: ns.path, ifname: 'eth0', stdin: JSON.stringify(conf), path });
  assert.equal((await agent.get('/readyz')).status, 200);
  const hold = g.hold('tctr', 'ADD');
  const add = run('ADD', 'tctr');
  await until('ADD in the gate', () => g.log().includes('start ADD tctr'));
  agent.proc.kill('SIGTERM');
  await until('socket removed', () => !existsSync(join(agent.sockDir, 'plexus.sock')));
  const ready = await agent.get('/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.text, /stopping/);
  // A call arriving now finds no daemon and runs one-shot.
  const other = await run('ADD', 'octr');
  assert.equal(other.status, 0, other.stdout + other.stderr);
  assert.equal(agent.proc.exitCode, null, 'still finishing the ADD');
  await hold.release();
  const out = await add;
  assert.equal(out.status, 0, out.stdout + out.stderr);
  assert.equal(out.json().cniVersion, '1.0.0');
  assert.equal(await agent.exited, 0);
  assert.ok(!existsSync(agent.metricsSocket), 'metrics socket removed');
  assert.ok(existsSync(join(dir, 'cni', '_plexus', 'tctr.json')), 'the ADD completed its journal record');
});
