// The addon against the real kernel: errors, the "always switch back" rule, namespace identity,
// per-namespace sysctls and raw frames (gratuitous ARP, unsolicited NA).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import { afterEach, test } from 'node:test';
import { announceAddress } from '../src/netns/announce';
import { isSystemError } from '../src/netns/errors';
import { linkByName, setUp } from '../src/netns/links';
import { addon } from '../src/netns/native';
import { currentNsIdentity, Netns, nsIdentity, sameNetns } from '../src/netns/netns';
import { readSysctl, writeSysctl } from '../src/netns/sysctl';
import { ip, ipJson, testNetns, threadNetns } from './netns-kit';

const original = threadNetns();
afterEach(() => assert.equal(threadNetns(), original, 'the thread is back in its own namespace'));

test('openNetlinkIn on a missing path throws ENOENT naming the path, and stays home', () => {
  assert.throws(
    () => addon().openNetlinkIn('/var/run/netns/pxt-does-not-exist', 0, 0),
    (e: unknown) => isSystemError(e) && e.errno === 2 && e.code === 'ENOENT' && e.message.includes('/var/run/netns/pxt-does-not-exist'),
  );
  assert.equal(threadNetns(), original);
});

test('a file that is not a network namespace is refused by setns with EINVAL', () => {
  assert.throws(() => Netns.open('/etc/hostname'), (e: unknown) => isSystemError(e) && e.code === 'EINVAL' && e.syscall === 'setns');
  // A mount namespace is a namespace, but not a network one.
  assert.throws(() => Netns.open('/proc/self/ns/mnt'), { code: 'EINVAL' });
  assert.equal(threadNetns(), original);
});

test('request refuses malformed input instead of blocking on a reply that never comes', (t) => {
  const ns = Netns.current();
  t.after(() => ns.close());
  const fd = addon().openNetlinkIn(null, 0, 0);
  t.after(() => addon().close(fd));
  assert.throws(() => addon().request(fd, Buffer.alloc(8)), TypeError);
  const noAck = Buffer.alloc(32);
  noAck.writeUInt32LE(32, 0);
  noAck.writeUInt16LE(16, 4);
  noAck.writeUInt16LE(1, 6); // REQUEST only
  assert.throws(() => addon().request(fd, noAck), /NLM_F_ACK or NLM_F_DUMP/);
  const badLen = Buffer.from(noAck);
  badLen.writeUInt32LE(64, 0);
  assert.throws(() => addon().request(fd, badLen), /length/);
});

test('a socket opened in a namespace sees that namespace, and the thread comes back', (t) => {
  const a = testNetns(t);
  ip('-n', a.name, 'link', 'add', 'only-in-a', 'type', 'veth', 'peer', 'name', 'peer-in-a');
  const ns = Netns.open(a.path);
  t.after(() => ns.close());
  assert.equal(threadNetns(), original);
  assert.ok(linkByName(ns, 'only-in-a'));
  Netns.with(null, (host) => assert.equal(linkByName(host, 'only-in-a'), null));
});

test('namespace identity tells paths of one namespace from another', (t) => {
  const a = testNetns(t);
  const self = currentNsIdentity();
  assert.deepEqual(nsIdentity('/proc/self/ns/net'), self);
  assert.ok(sameNetns('/proc/self/ns/net', '/proc/thread-self/ns/net'));
  assert.equal(sameNetns(a.path, '/proc/self/ns/net'), false);
  const ns = Netns.open(a.path);
  t.after(() => ns.close());
  assert.deepEqual(ns.identity(), nsIdentity(a.path));
  // A process started inside the namespace names it through /proc/<pid>/ns/net.
  const child = spawnSync('ip', ['netns', 'exec', a.name, 'sh', '-c', 'stat -L -c %i /proc/self/ns/net'], { encoding: 'utf8' });
  assert.equal(Number(child.stdout.trim()), nsIdentity(a.path).ino);
  assert.throws(() => nsIdentity('/nonexistent/ns'), { code: 'ENOENT' });
});

test('sysctls are read and written inside the namespace, not the host', (t) => {
  const a = testNetns(t);
  const ns = Netns.open(a.path);
  t.after(() => ns.close());
  const hostBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const target = hostBefore === '1' ? '0' : '1';
  writeSysctl(ns, 'net.ipv4.ip_forward', target);
  assert.equal(readSysctl(ns, 'net.ipv4.ip_forward'), target);
  const inside = spawnSync('ip', ['netns', 'exec', a.name, 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' });
  assert.equal(inside.stdout.trim(), target);
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), hostBefore, 'host untouched');
  Netns.with(null, (host) => assert.equal(readSysctl(host, 'net/ipv4/ip_forward'), hostBefore));
});

test('per-interface sysctls of links that only exist inside the namespace work', (t) => {
  const a = testNetns(t);
  ip('-n', a.name, 'link', 'add', 'eth0.100', 'type', 'veth', 'peer', 'name', 'p0');
  const ns = Netns.open(a.path);
  t.after(() => ns.close());
  writeSysctl(ns, 'net/ipv6/conf/eth0.100/disable_ipv6', 1);
  assert.equal(readSysctl(ns, 'net/ipv6/conf/eth0.100/disable_ipv6'), '1');
  assert.throws(() => readSysctl(ns, 'net/ipv6/conf/nope0/disable_ipv6'), (e: unknown) => isSystemError(e) && e.code === 'ENOENT' && e.message.includes('nope0'));
  assert.throws(() => readSysctl(ns, 'net/../../etc/passwd'), TypeError);
  assert.throws(() => writeSysctl(ns, '/proc/sys/net/ipv4/ip_forward', 1), TypeError);
  assert.throws(() => writeSysctl(ns, 'net/ipv4/ip_forward', 'not-a-number'), { code: 'EINVAL' });
});

/** Two namespaces joined by a veth: a0 (in a, 10.77.0.1/24) <-> b0 (in b, 10.77.0.2/24). */
function wiredPair(t: Parameters<typeof testNetns>[0]) {
  const a = testNetns(t);
  const b = testNetns(t);
  ip('-n', a.name, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', b.name);
  ip('-n', a.name, 'addr', 'add', '10.77.0.1/24', 'dev', 'a0');
  ip('-n', b.name, 'addr', 'add', '10.77.0.2/24', 'dev', 'b0');
  ip('-n', a.name, 'addr', 'add', '2001:db8:77::1/64', 'dev', 'a0', 'nodad');
  ip('-n', b.name, 'addr', 'add', '2001:db8:77::2/64', 'dev', 'b0', 'nodad');
  ip('-n', b.name, 'link', 'set', 'b0', 'up');
  return { a, b };
}

interface NeighJson {
  dst: string;
  lladdr?: string;
  state?: string[];
}

test('a gratuitous ARP sent inside a namespace reaches the peer and updates its table', (t) => {
  const { a, b } = wiredPair(t);
  const nsA = Netns.open(a.path);
  const nsB = Netns.open(b.path);
  t.after(() => (nsA.close(), nsB.close()));
  // arp_accept=1: let a gratuitous ARP create an entry, not only refresh one.
  writeSysctl(nsB, 'net/ipv4/conf/all/arp_accept', 1);
  writeSysctl(nsB, 'net/ipv4/conf/b0/arp_accept', 1);
  const a0 = linkByName(nsA, 'a0');
  assert.ok(a0?.mac);
  setUp(nsA, a0.index);
  const before = ipJson<NeighJson[]>(b.name, 'neigh', 'show', 'dev', 'b0').find((n) => n.dst === '10.77.0.1');
  assert.equal(before, undefined);
  announceAddress(nsA, a0.index, a0.mac, '10.77.0.1');
  const entry = ipJson<NeighJson[]>(b.name, 'neigh', 'show', 'dev', 'b0').find((n) => n.dst === '10.77.0.1');
  assert.equal(entry?.lladdr, a0.mac);
});

test('an unsolicited neighbour advertisement is accepted by a peer that takes untracked NAs', (t) => {
  const { a, b } = wiredPair(t);
  const nsA = Netns.open(a.path);
  const nsB = Netns.open(b.path);
  t.after(() => (nsA.close(), nsB.close()));
  try {
    writeSysctl(nsB, 'net/ipv6/conf/b0/accept_untracked_na', 1);
  } catch (err) {
    t.skip(`kernel without accept_untracked_na (${String(err)})`);
    return;
  }
  // Untracked NAs create entries only on routers (RFC 9131).
  writeSysctl(nsB, 'net/ipv6/conf/b0/forwarding', 1);
  const a0 = linkByName(nsA, 'a0');
  assert.ok(a0?.mac);
  setUp(nsA, a0.index);
  const before = ipJson<NeighJson[]>(b.name, '-6', 'neigh', 'show', 'dev', 'b0').find((n) => n.dst === '2001:db8:77::1');
  assert.equal(before, undefined);
  announceAddress(nsA, a0.index, a0.mac, '2001:db8:77::1');
  const entry = ipJson<NeighJson[]>(b.name, '-6', 'neigh', 'show', 'dev', 'b0').find((n) => n.dst === '2001:db8:77::1');
  assert.equal(entry?.lladdr, a0.mac, 'the NA (and so its checksum) was accepted');
});

test('sending a frame out of a missing interface fails with ENXIO/ENODEV and stays home', (t) => {
  const a = testNetns(t);
  const ns = Netns.open(a.path);
  t.after(() => ns.close());
  const fd = addon().openRawIn(a.path);
  try {
    assert.throws(() => addon().sendRaw(fd, 999, Buffer.alloc(60)), (e: unknown) => isSystemError(e) && ['ENXIO', 'ENODEV'].includes(e.code));
  } finally {
    closeSync(fd);
  }
  assert.equal(threadNetns(), original);
});

test('a closed handle says so instead of using a stale fd', () => {
  const ns = Netns.current();
  ns.close();
  assert.ok(ns.closed);
  assert.throws(() => linkByName(ns, 'lo'), /closed/);
  ns.close(); // twice is fine
});
