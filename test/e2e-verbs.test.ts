// The meta-plugin's CHECK and STATUS rules from the CNI 1.1 spec and NPWG v1.3 §6.1.2, end to end
// without the API (docs/conformance.md cites these): STATUS follows the readiness file and the
// cluster network's own plugins, ADD waits for the readiness file within its bound, CHECK of an
// unknown container is code 3, and a network with disableCheck is never CHECKed.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { linkNamesIn, netns, removeLinkAfter, tempDir, uniq } from './helpers/host';
import { DELEGATE_PATH, named, requireBuild, requireInProcessDelegates, runPlugin } from './helpers/plexus';

requireBuild();
requireInProcessDelegates();

/**
 * A plugin in `dir`, run by node: ADD passes prevResult on (or an empty result), CHECK fails with
 * 999, STATUS fails with 50 while `<dir>/down` exists, DEL and GC succeed.
 */
function probePlugin(dir: string, name: string): string {
  const down = join(dir, 'down');
  const js = `let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{const c=JSON.parse(s||"{}");const v=process.env.CNI_COMMAND;
const fail=(code,msg)=>{process.stdout.write(JSON.stringify({cniVersion:c.cniVersion,code,msg}));process.exit(1);};
if(v==="ADD")process.stdout.write(JSON.stringify(c.prevResult||{cniVersion:c.cniVersion}));
else if(v==="CHECK")fail(999,"${name}: CHECK was called");
else if(v==="STATUS"&&require("fs").existsSync(${JSON.stringify(down)}))fail(50,"${name}: not ready");
else if(v==="VERSION")process.stdout.write(JSON.stringify({cniVersion:"1.1.0",supportedVersions:["0.4.0","1.0.0","1.1.0"]}));});`;
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nexec ${process.execPath} -e '${js.replace(/'/g, `'\\''`)}'\n`);
  chmodSync(path, 0o755);
  return down;
}

function setup(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t);
  const binDir = join(dir, 'bin');
  mkdirSync(binDir);
  const down = probePlugin(binDir, 'probe');
  return { dir, binDir, down, cniDir: join(dir, 'cni'), ready: join(dir, 'ready') };
}

test(named('STATUS: code 50 while the readiness file is missing, then what the cluster network’s plugins answer'), async (t) => {
  const s = setup(t);
  const conf = JSON.stringify({
    cniVersion: '1.1.0',
    name: 'plexus-net',
    type: 'plexus',
    cniDir: s.cniDir,
    binDir: s.binDir,
    readinessindicatorfile: s.ready,
    delegates: [{ cniVersion: '1.1.0', name: 'cluster', type: 'probe' }],
  });
  const status = () => runPlugin({ command: 'STATUS', stdin: conf, env: { CNI_PATH: `${s.binDir}:${DELEGATE_PATH}` } });
  let r = await status();
  assert.equal(r.status, 1);
  assert.equal(r.json().code, 50);
  assert.match(String(r.json().msg), /readinessindicatorfile .*ready does not exist/);
  writeFileSync(s.ready, '');
  r = await status();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // The cluster network's plugin not ready: STATUS reaches it and reports its failure (CNI 1.1: a
  // plugin MUST forward STATUS to its delegates).
  writeFileSync(s.down, '');
  r = await status();
  assert.equal(r.status, 1);
  assert.equal(r.json().code, 50);
  assert.match(String(r.json().msg), /probe: not ready/);
});

test(named('ADD waits for the readiness file within readinessTimeoutSeconds, then fails with code 11 and attaches nothing'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'plexus-net', type: 'plexus', cniDir: s.cniDir, binDir: s.binDir, readinessindicatorfile: s.ready, readinessTimeoutSeconds: 1, delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'probe' }] });
  const started = Date.now();
  const add = await runPlugin({ command: 'ADD', containerId: uniq('ctr'), netns: ns.path, ifname: 'eth0', stdin: conf });
  assert.equal(add.status, 1);
  assert.equal(add.json().code, 11);
  assert.match(String(add.json().msg), /did not appear within 1 s/);
  assert.ok(Date.now() - started >= 1000, 'it waited for the file');
  assert.deepEqual(linkNamesIn(ns.name), ['lo'], 'nothing attached');
});

test(named('CHECK of a container nothing was attached to is code 3; a network with disableCheck is never CHECKed'), async (t) => {
  const s = setup(t);
  const ns = netns(t);
  const bridge = uniq('pxb');
  removeLinkAfter(t, bridge);
  // A bridge attachment whose chain ends in the probe, which fails any CHECK it gets.
  const chain = (disableCheck: boolean) => ({
    cniVersion: '1.0.0',
    name: 'cluster',
    disableCheck,
    plugins: [{ type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: join(s.dir, 'ipam'), ranges: [[{ subnet: '10.199.9.0/24' }]] } }, { type: 'probe' }],
  });
  const conf = (disableCheck: boolean) => JSON.stringify({ cniVersion: '1.1.0', name: 'plexus-net', type: 'plexus', cniDir: s.cniDir, binDir: s.binDir, delegates: [chain(disableCheck)] });
  const id = uniq('ctr');
  const call = (command: string, disableCheck: boolean, containerId = id) => runPlugin({ command, containerId, netns: ns.path, ifname: 'eth0', stdin: conf(disableCheck) });

  const unknown = await call('CHECK', false, uniq('nobody'));
  assert.equal(unknown.status, 1);
  assert.equal(unknown.json().code, 3);

  t.after(() => call('DEL', true));
  const add = await call('ADD', true);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const skipped = await call('CHECK', true);
  assert.equal(skipped.status, 0, `disableCheck: the probe must not be called: ${skipped.stdout}`);
  // The same attachment, the journaled config turned to disableCheck false by a second ADD/DEL
  // cycle: now the probe is CHECKed and fails, proving the first CHECK really skipped it.
  assert.equal((await call('DEL', true)).status, 0);
  assert.equal((await call('ADD', false)).status, 0);
  const checked = await call('CHECK', false);
  assert.equal(checked.status, 1);
  assert.match(String(checked.json().msg), /probe: CHECK was called/);
  assert.equal((await call('DEL', false)).status, 0);
});
