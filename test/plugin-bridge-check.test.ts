// CHECK of bridge attachments that share one bridge (issue 9 item 2). A bridge whose address was
// never set takes the lowest MAC of its ports, so its MAC moves as ports join; the ADD result of
// an earlier attachment then names a MAC the bridge no longer has. CHECK must pass on such a
// healthy pod, and still fail when something really changed.
//
// Each side runs in its own host and pod namespaces (test/plugin-bridge-kit.ts). Ports join in
// random MAC order: the pods' host veths get random MACs from the kernel, and between ADDs the
// test joins ports with MACs lower than any random one (what another pod's plugin does), so the
// drift happens on every run rather than in some.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ip, netns } from './helpers/host';
import type { JsonObject } from './helpers/oracle';
import { requireBuild } from './helpers/plexus';
import { call, makeSide, type Run, type Side } from './plugin-bridge-kit';

const BR = 'pxbrc0';
const NET = 'brcheck';
const CONF: JsonObject = { cniVersion: '1.0.0', name: NET, type: 'bridge', bridge: BR, ipam: { type: 'host-local', ranges: [[{ subnet: '10.96.40.0/24' }]] } };
// Lower than any kernel-random MAC (locally administered: the first byte is at least 0x02).
const LOW_MACS = ['02:00:00:00:00:05', '02:00:00:00:00:03'];

interface Attachment {
  containerId: string;
  ifname: string;
  netns: string;
  add: Run;
}

const withPrev = (add: Run): JsonObject => ({ ...CONF, prevResult: add.out ?? null });
const bridgeMac = (s: Side): string => (JSON.parse(ip('-n', s.host.name, '-j', 'link', 'show', BR)) as { address: string }[])[0]!.address;
const recordedBridgeMac = (a: Attachment): string | undefined =>
  ((a.add.out?.interfaces ?? []) as { name: string; mac?: string; sandbox?: string }[]).find((i) => i.name === BR && !i.sandbox)?.mac;

/** A veth in the side's host with the given MAC, made a port of the bridge: "another pod". */
function joinPort(s: Side, mac: string, n: number): void {
  const name = `pxlow${n}`;
  ip('-n', s.host.name, 'link', 'add', name, 'address', mac, 'type', 'veth', 'peer', 'name', `${name}p`);
  ip('-n', s.host.name, 'link', 'set', name, 'master', BR, 'up');
}

/** Pod A eth1, a low port joins, pod B eth1, a lower port joins, pod A eth2. */
async function attachAll(s: Side, podB: { path: string }): Promise<Attachment[]> {
  const plan = [
    { containerId: 'pxbrc-a', ifname: 'eth1', netns: s.pod.path },
    { containerId: 'pxbrc-b', ifname: 'eth1', netns: podB.path },
    { containerId: 'pxbrc-a', ifname: 'eth2', netns: s.pod.path },
  ];
  const out: Attachment[] = [];
  for (const [i, p] of plan.entries()) {
    const add = await call(s, 'ADD', CONF, p);
    assert.equal(add.status, 0, `${s.label} ADD ${p.containerId}/${p.ifname}: ${add.stdout}${add.stderr}`);
    out.push({ ...p, add });
    const low = LOW_MACS[i];
    if (low) joinPort(s, low, i);
  }
  return out;
}

async function checkAll(s: Side, atts: Attachment[]): Promise<Run[]> {
  return Promise.all(atts.map((a) => call(s, 'CHECK', withPrev(a.add), a)));
}

const ok = (r: Run): boolean => r.status === 0;

test('bridge CHECK passes on every attachment of a bridge plexus made, whose MAC stays pinned as ports join', async (t) => {
  requireBuild();
  const s = makeSide(t, 'plexus');
  const atts = await attachAll(s, netns(t, 'pxbp'));
  const live = bridgeMac(s);
  assert.deepEqual(atts.map(recordedBridgeMac), atts.map(() => live), 'every ADD result names the MAC the bridge still has');
  assert.ok(!LOW_MACS.includes(live), 'the bridge did not take the lowest port MAC');
  for (const [i, r] of (await checkAll(s, atts)).entries()) assert.ok(ok(r), `CHECK of attachment ${i}: ${r.stdout}`);

  // A MAC someone set is a real change: compared, and CHECK fails.
  ip('-n', s.host.name, 'link', 'set', BR, 'address', '02:00:00:00:00:09');
  for (const r of await checkAll(s, atts)) assert.match(r.stdout, /Bridge interface pxbrc0 Mac doesn't match/);
});

test('bridge CHECK tolerates the MAC drift of a bridge it did not make; the reference reports it; real faults still fail', async (t) => {
  requireBuild();
  const runs: Record<string, Run[]> = {};
  const sides: Record<string, { s: Side; atts: Attachment[] }> = {};
  for (const label of ['reference', 'plexus'] as const) {
    const s = makeSide(t, label);
    // Made before the first ADD with no address set: as an operator's bridge, one the reference
    // plugin made without isGateway, or one an older plexus made.
    ip('-n', s.host.name, 'link', 'add', BR, 'type', 'bridge');
    ip('-n', s.host.name, 'link', 'set', BR, 'up');
    const atts = await attachAll(s, netns(t, 'pxbp'));
    const live = bridgeMac(s);
    assert.equal(live, LOW_MACS[1], `${label}: the kernel gave the bridge its lowest port's MAC`);
    assert.notEqual(recordedBridgeMac(atts[0]!), live, `${label}: the first attachment's result names a MAC the bridge no longer has`);
    runs[label] = await checkAll(s, atts);
    sides[label] = { s, atts };
  }
  // The drift is real: the reference's CHECK of the earlier attachments fails on it...
  assert.match(runs.reference![0]!.stdout, /Bridge interface pxbrc0 Mac doesn't match/);
  // ...and plexus's passes on every attachment.
  for (const [i, r] of runs.plexus!.entries()) assert.ok(ok(r), `plexus CHECK of attachment ${i}: ${r.stdout}`);

  const { s, atts } = sides.plexus!;
  // The pod B interface gone: its CHECK fails, the others still pass.
  ip('-n', atts[1]!.netns.split('/').pop()!, 'link', 'del', 'eth1');
  const afterIf = await checkAll(s, atts);
  assert.deepEqual(afterIf.map(ok), [true, false, true], afterIf.map((r) => r.stdout).join('\n'));
  assert.match(afterIf[1]!.stdout, /eth1/);
  // The bridge deleted: every CHECK fails, naming it.
  ip('-n', s.host.name, 'link', 'del', BR);
  for (const r of await checkAll(s, atts)) assert.match(r.stdout, /bridge pxbrc0 in host namespace was not found/);
});
