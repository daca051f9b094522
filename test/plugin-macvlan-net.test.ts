// plexus macvlan beyond the reference: the address announcements a neighbour sees right after ADD,
// opt-in policy routing (the Kube-OVN LoadBalancer pod: eth0 keeps the default route, net1 answers
// through net1), linkInContainer, bcqueuelen, rollback, and STATUS/GC forwarding to IPAM.
import { test, type TestContext as T } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ip, linkNamesIn, netns, tempDir, tryIp, uniq } from './helpers/host';
import { reservedIps } from './helpers/ipam';
import { cni, type JsonObject } from './helpers/oracle';
import { REFERENCE_PLUGINS, requireBuild, ROOT } from './helpers/plexus';

const OURS = join(ROOT, 'dist', 'bin', 'macvlan');
type Ns = { name: string; path: string };

/** A veth uplink: the master end in the host, the other end up in `peer` (a neighbour on its L2). */
function uplink(t: T, peer: Ns): string {
  const name = uniq('pxm');
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`, 'netns', peer.name);
  t.after(() => tryIp('link', 'del', name));
  ip('link', 'set', name, 'up');
  ip('-n', peer.name, 'link', 'set', `${name}p`, 'up');
  return name;
}

const conf = (master: string, extra: JsonObject): string => JSON.stringify({ cniVersion: '1.0.0', name: 'mvnet', type: 'macvlan', master, ...extra });
const add = (ns: Ns, stdin: string, ifname = 'net1', path?: string) => cni(OURS, { command: 'ADD', containerId: 'c1', netns: ns.path, ifname, stdin, path });
const del = (ns: Ns, stdin: string, ifname = 'net1') => cni(OURS, { command: 'DEL', containerId: 'c1', netns: ns.path, ifname, stdin });

function ipj<X>(ns: string, ...args: string[]): X {
  return JSON.parse(ip('-n', ns, '-j', ...args) || '[]') as X;
}

/** tcpdump in ns, resolved once it says "listening on" (never a guess at how long it needs). */
async function capture(t: T, ns: string, dev: string, filter: string): Promise<{ lines: string[]; waitFor(re: RegExp, ms: number): Promise<string> }> {
  const child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-l', '-n', '-e', '-i', dev, filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      if (err.includes('listening on')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  return {
    lines,
    waitFor(re, ms) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; saw:\n${lines.join('\n')}`)), ms);
        const look = (): void => {
          const hit = lines.find((l) => re.test(l));
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(look);
        };
        look();
      });
    },
  };
}

test('macvlan ADD announces its addresses: gratuitous ARP and unsolicited NA from the new MAC', async (t) => {
  requireBuild();
  const peer = netns(t, 'pxq');
  const master = uplink(t, peer);
  const pod = netns(t, 'pxd');
  const cap = await capture(t, peer.name, `${master}p`, 'arp or icmp6');
  const ipam = { type: 'static', addresses: [{ address: '10.97.0.2/24' }, { address: 'fd00:97::2/64' }] };
  const r = await add(pod, conf(master, { ipam }));
  assert.equal(r.status, 0, r.stdout);
  const mac = ((r.out?.interfaces as JsonObject[])[0]?.mac as string).toLowerCase();
  const esc = mac.replace(/:/g, '\\:');
  // "who-has X tell X" is an ARP request announcing X (gratuitous); the NA goes to all nodes.
  await cap.waitFor(new RegExp(`^\\S+ ${esc} > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has 10\\.97\\.0\\.2 tell 10\\.97\\.0\\.2`), 5000);
  await cap.waitFor(new RegExp(`^\\S+ ${esc} > 33:33:00:00:00:01, ethertype IPv6 .*neighbor advertisement, tgt is fd00:97::2`), 5000);
  assert.equal((await del(pod, conf(master, { ipam }))).status, 0);
});

test('policyRouting: a peer in another subnet gets replies through net1 while eth0 keeps the default route', async (t) => {
  requireBuild();
  // The router/client: on net1's L2 as its gateway 10.99.0.1, pinging from 198.51.100.7.
  const router = netns(t, 'pxr');
  const master = uplink(t, router);
  ip('-n', router.name, 'addr', 'add', '10.99.0.1/24', 'dev', `${master}p`);
  ip('-n', router.name, 'addr', 'add', '198.51.100.7/32', 'dev', 'lo');
  ip('-n', router.name, 'link', 'set', 'lo', 'up');

  // The pod: eth0 (a veth to a sink namespace) holds the default route, as the cluster network does.
  const pod = (): Ns => {
    const p = netns(t, 'pxd');
    const sink = netns(t, 'pxs');
    ip('-n', p.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'sink0', 'netns', sink.name);
    ip('-n', p.name, 'addr', 'add', '10.98.0.2/24', 'dev', 'eth0');
    ip('-n', p.name, 'link', 'set', 'eth0', 'up');
    ip('-n', p.name, 'link', 'set', 'lo', 'up');
    ip('-n', p.name, 'route', 'add', 'default', 'via', '10.98.0.1');
    ip('-n', sink.name, 'addr', 'add', '10.98.0.1/24', 'dev', 'sink0');
    ip('-n', sink.name, 'link', 'set', 'sink0', 'up');
    return p;
  };
  const ipam = { type: 'static', addresses: [{ address: '10.99.0.2/24', gateway: '10.99.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };
  const ping = (): number | null =>
    spawnSync('ip', ['netns', 'exec', router.name, 'busybox', 'ping', '-c', '1', '-W', '2', '-I', '198.51.100.7', '10.99.0.2'], { stdio: 'ignore' }).status;
  const routeGet = (p: Ns): string => ipj<{ dev: string }[]>(p.name, 'route', 'get', '198.51.100.7', 'from', '10.99.0.2')[0]?.dev ?? '';
  assert.ok(existsSync('/usr/bin/busybox') || spawnSync('busybox', ['true']).status === 0, 'busybox (ping) is installed');

  // Control: without policyRouting (and without the default route via net1, which the pod's
  // main table could not take next to eth0's) the reply follows eth0's default route and is lost.
  const plain = pod();
  const plainIpam = { type: 'static', addresses: [{ address: '10.99.0.2/24' }] };
  const pr = await add(plain, conf(master, { ipam: plainIpam }));
  assert.equal(pr.status, 0, pr.stdout);
  assert.equal(routeGet(plain), 'eth0');
  assert.notEqual(ping(), 0, 'without policy routing the peer gets no reply');
  assert.equal((await del(plain, conf(master, { ipam: plainIpam }))).status, 0);

  const lb = pod();
  const stdin = conf(master, { ipam, policyRouting: true });
  const r = await add(lb, stdin);
  assert.equal(r.status, 0, r.stdout);
  const defaults = ipj<{ dev: string }[]>(lb.name, 'route', 'show', 'default');
  assert.deepEqual(defaults.map((d) => d.dev), ['eth0'], "the pod's main default route stays on eth0");
  assert.equal(routeGet(lb), 'net1', 'replies from net1 address leave through net1');
  assert.equal(ping(), 0, 'the peer gets its reply through net1');

  // CHECK sees the routes in the policy table; it fails once the rules are gone.
  const withPrev = JSON.stringify({ ...(JSON.parse(stdin) as JsonObject), prevResult: r.out ?? null });
  const check = () => cni(OURS, { command: 'CHECK', containerId: 'c1', netns: lb.path, ifname: 'net1', stdin: withPrev });
  assert.equal((await check()).status, 0);
  const rules = () => ipj<{ priority: number; table: string }[]>(lb.name, 'rule', 'show').filter((x) => x.priority === 1000);
  assert.deepEqual(rules().map((x) => x.table), ['100', '100'], 'from-rule and iif-rule, table 100');
  ip('-n', lb.name, 'rule', 'del', 'priority', '1000', 'iif', 'net1');
  assert.equal((await check()).code, 999);
  // DEL removes the remaining rule too.
  assert.equal((await del(lb, withPrev)).status, 0);
  assert.deepEqual(rules(), []);
  assert.deepEqual(linkNamesIn(lb.name).sort(), ['eth0', 'lo']);
});

test('policyRouting: two attachments get two tables; DEL after the link went (group delete) still removes the rules', async (t) => {
  requireBuild();
  const peer = netns(t, 'pxq');
  const m1 = uplink(t, peer);
  const m2 = uplink(t, peer);
  const pod = netns(t, 'pxd');
  const c1 = conf(m1, { policyRouting: true, ipam: { type: 'static', addresses: [{ address: '10.61.0.2/24', gateway: '10.61.0.1' }], routes: [{ dst: '0.0.0.0/0' }] } });
  const c2 = conf(m2, { policyRouting: true, ipam: { type: 'static', addresses: [{ address: '10.62.0.2/24', gateway: '10.62.0.1' }], routes: [{ dst: '0.0.0.0/0' }] } });
  assert.equal((await add(pod, c1, 'net1')).status, 0);
  const r2 = await add(pod, c2, 'net2');
  assert.equal(r2.status, 0, r2.stdout);
  const rules = () => ipj<{ priority: number; table: string; src?: string; iif?: string }[]>(pod.name, 'rule', 'show').filter((x) => x.priority === 1000);
  const shown = rules().map((x) => `${x.iif ? `iif ${x.iif}` : `from ${x.src ?? ''}`} → ${x.table}`);
  assert.deepEqual(shown.sort(), ['from 10.61.0.2 → 100', 'from 10.62.0.2 → 101', 'iif net1 → 100', 'iif net2 → 101']);
  // the meta-plugin deleted the links in one request; each plugin's DEL runs afterwards
  ip('-n', pod.name, 'link', 'del', 'net2');
  assert.equal((await del(pod, c2, 'net2')).status, 0);
  assert.deepEqual(rules().map((x) => x.table).sort(), ['100', '100']);
  assert.equal((await del(pod, c1, 'net1')).status, 0);
  assert.deepEqual(rules(), []);
});

test('linkInContainer: the master is the pod default-route interface when "master" is unset', async (t) => {
  requireBuild();
  const pod = netns(t, 'pxd');
  const sink = netns(t, 'pxs');
  ip('-n', pod.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'sink0', 'netns', sink.name);
  ip('-n', pod.name, 'addr', 'add', '10.60.0.2/24', 'dev', 'eth0');
  ip('-n', pod.name, 'link', 'set', 'eth0', 'up');
  ip('-n', pod.name, 'route', 'add', 'default', 'via', '10.60.0.1');
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'mvnet', type: 'macvlan', linkInContainer: true, bcqueuelen: 5000, mtu: 1400 });
  const r = await add(pod, stdin);
  assert.equal(r.status, 0, r.stdout);
  const [l] = ipj<{ link?: string; mtu: number; linkinfo: { info_kind: string; info_data: { bcqueuelen: number } } }[]>(pod.name, '-d', 'link', 'show', 'net1');
  assert.equal(l?.link, 'eth0', 'stacked on the pod eth0');
  assert.equal(l?.linkinfo.info_kind, 'macvlan');
  assert.equal(l?.linkinfo.info_data.bcqueuelen, 5000);
  assert.equal(l?.mtu, 1400);
  const check = await cni(OURS, { command: 'CHECK', containerId: 'c1', netns: pod.path, ifname: 'net1', stdin: JSON.stringify({ ...(JSON.parse(stdin) as JsonObject), prevResult: r.out ?? null }) });
  assert.equal(check.status, 0, check.stdout);
  assert.equal((await del(pod, stdin)).status, 0);
  assert.deepEqual(linkNamesIn(pod.name).sort(), ['eth0', 'lo']);
});

test('macvlan ADD rolls back: IPAM released and link deleted when configuring fails', async (t) => {
  requireBuild();
  const peer = netns(t, 'pxq');
  const master = uplink(t, peer);
  const pod = netns(t, 'pxd');
  const dataDir = tempDir(t);
  // host-local hands out the address, then the route's gateway is not on any link: ENETUNREACH.
  const ipam = { type: 'host-local', dataDir, ranges: [[{ subnet: '10.63.0.0/24' }]], routes: [{ dst: '10.64.0.0/16', gw: '192.0.2.99' }] };
  const r = await add(pod, conf(master, { ipam }));
  assert.notEqual(r.status, 0);
  assert.match(String(r.out?.msg), /192\.0\.2\.99|unreachable/i);
  assert.deepEqual(linkNamesIn(pod.name), ['lo'], 'no link left in the pod');
  assert.deepEqual(reservedIps(dataDir, 'mvnet'), [], 'the address went back to the pool');
});

test('STATUS and GC go to the IPAM plugin (same stdin); without IPAM they succeed alone', async (t) => {
  requireBuild();
  const peer = netns(t, 'pxq');
  const master = uplink(t, peer);
  const bin = tempDir(t);
  const log = join(bin, 'calls');
  writeFileSync(join(bin, 'spy-ipam'), `#!/bin/sh\n{ echo "$CNI_COMMAND"; cat; echo; } >> ${log}\n`);
  chmodSync(join(bin, 'spy-ipam'), 0o755);
  const path = `${bin}:${REFERENCE_PLUGINS}`;
  const stdin = JSON.stringify({ cniVersion: '1.1.0', name: 'mvnet', type: 'macvlan', master, ipam: { type: 'spy-ipam' }, 'cni.dev/valid-attachments': [] });
  for (const command of ['STATUS', 'GC']) {
    const r = await cni(OURS, { command, containerId: 'c1', ifname: 'net1', stdin, path });
    assert.equal(r.status, 0, r.stdout);
  }
  assert.equal(readFileSync(log, 'utf8'), `STATUS\n${stdin}\nGC\n${stdin}\n`);
  const bare = JSON.stringify({ cniVersion: '1.1.0', name: 'mvnet', type: 'macvlan', master });
  assert.equal((await cni(OURS, { command: 'STATUS', stdin: bare, path })).status, 0);
});
