// `plexus doctor` on a temporary node layout: a conf dir with plexus's conflist and a primary
// network, a bin dir of reference plugins, the test API server with a JWT token, a journal whose
// netns is gone, and a real `plexus daemon`. Then each thing broken in turn, and the check that
// names it; exit 1 only for failures.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tokenExpiry } from '../src/cli/doctor-checks';
import { writeJournal } from '../src/delegates/journal';
import { startApiServer } from './apiserver/server';
import { cli } from './helpers/cli';
import { tempDir, uniq } from './helpers/host';
import { PLEXUS, REFERENCE_PLUGINS, requireBuild } from './helpers/plexus';

requireBuild();

interface Check {
  check: string;
  status: string;
  detail: string;
}
interface Report {
  ok: boolean;
  checks: Check[];
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (claims: Record<string, unknown>) => `${b64({ alg: 'RS256', kid: 'k' })}.${b64(claims)}.c2lnbmF0dXJl`;
const now = () => Math.floor(Date.now() / 1000);
const SA = 'system:serviceaccount:plexus:plexus';

test('doctor: a healthy layout passes; each broken part is named by its check', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t, 'plexus-doctor-');
  const confDir = join(dir, 'net.d');
  const binDir = join(dir, 'bin');
  const cniDir = join(dir, 'cni');
  const socketDir = join(dir, 'run');
  for (const d of [confDir, binDir, cniDir]) mkdirSync(d);
  for (const p of ['bridge', 'host-local', 'portmap']) symlinkSync(join(REFERENCE_PLUGINS, p), join(binDir, p));
  const token = jwt({ sub: SA, iat: now() - 60, exp: now() + 3600 });
  const api = await startApiServer({ tls: true, token, tokenUser: SA });
  t.after(() => api.close());
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const primary = join(confDir, '10-bridge.conflist');
  writeFileSync(primary, JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', plugins: [{ type: 'bridge', bridge: uniq('pxd'), ipam: { type: 'host-local', subnet: '10.219.0.0/24' } }, { type: 'portmap', capabilities: { portMappings: true } }] }));
  const plexusConf = (extra: Record<string, unknown> = {}) =>
    writeFileSync(
      join(confDir, '00-plexus.conflist'),
      JSON.stringify({ cniVersion: '1.1.0', name: 'multus-cni-network', plugins: [{ type: 'plexus', clusterNetwork: primary, kubeconfig, cniDir, confDir: join(dir, 'multus.d'), binDir, ...extra }] }),
    );
  plexusConf();
  const goneNetns = join(dir, 'netns-gone');
  writeJournal(cniDir, { kind: 'plexusJournal', version: 1, containerId: 'c0ffee0123456789', netns: goneNetns, ifname: 'eth0', cniVersion: '1.1.0', pod: { namespace: 'ns1', name: 'web' }, attachments: [] });

  const doctor = async (want: number) => {
    const r = await cli(['doctor', '--conf-dir', confDir, '-o', 'json']);
    assert.equal(r.status, want, r.stdout + r.stderr);
    const rep = r.json<Report>();
    assert.equal(rep.ok, want === 0);
    return new Map(rep.checks.map((c) => [c.check, c]));
  };
  const is = (c: Check | undefined, status: string, detail: RegExp | string) => {
    assert.ok(c, 'the check ran');
    assert.equal(c.status, status, c.detail);
    if (typeof detail === 'string') assert.equal(c.detail, detail);
    else assert.match(c.detail, detail);
  };

  // 1. healthy (a stale journal is a warning, not a failure)
  let c = await doctor(0);
  assert.deepEqual([...c.keys()], ['config order', 'plexus config', 'cluster network', 'plugin bridge', 'plugin host-local', 'plugin portmap', 'daemon', 'API', 'token', 'journals']);
  is(c.get('config order'), 'ok', '00-plexus.conflist is first of 2');
  is(c.get('plexus config'), 'ok', '00-plexus.conflist: multus-cni-network, cniVersion 1.1.0');
  is(c.get('cluster network'), 'ok', 'cbr0 (bridge → portmap), cniVersion 1.0.0');
  for (const p of ['bridge', 'host-local', 'portmap']) is(c.get(`plugin ${p}`), 'ok', `${join(binDir, p)} speaks 1.0.0`);
  is(c.get('daemon'), 'skip', 'one-shot mode: the config names no daemonSocketDir');
  is(c.get('API'), 'ok', `${api.url}: token accepted, may read network-attachment-definitions (kube-system/plexus-doctor-probe does not exist)`);
  is(c.get('token'), 'ok', /^system:serviceaccount:plexus:plexus: expires in (59|60) min$/);
  is(c.get('journals'), 'warn', `1 of 1 for a network namespace that no longer exists: c0ffee012345 (ns1/web, ${goneNetns})`);
  // the table for people
  const table = await cli(['doctor', '--conf-dir', confDir]);
  assert.equal(table.status, 0);
  assert.match(table.stdout, /^CHECK +STATUS +DETAIL\nconfig order +ok +00-plexus\.conflist is first of 2\n/);
  assert.match(table.stdout, /\nno problems found\n$/);

  // 2. another network's config sorts before plexus's: the runtime never calls plexus
  const other = join(confDir, '00-flannel.conflist');
  writeFileSync(other, JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', plugins: [{ type: 'flannel' }] }));
  c = await doctor(1);
  is(c.get('config order'), 'fail', "the runtime uses 00-flannel.conflist, not plexus's 00-plexus.conflist: 00-flannel.conflist sorts first");
  rmSync(other);

  // 3. a plugin the cluster network needs is missing
  rmSync(join(binDir, 'portmap'));
  c = await doctor(1);
  is(c.get('plugin portmap'), 'fail', `not found (or not executable) in ${binDir}:/opt/cni/bin`);
  symlinkSync(join(REFERENCE_PLUGINS, 'portmap'), join(binDir, 'portmap'));

  // 4. the cluster network's file is gone
  plexusConf({ clusterNetwork: join(confDir, '99-missing.conflist') });
  c = await doctor(1);
  is(c.get('cluster network'), 'fail', new RegExp(`^clusterNetwork ".*99-missing\\.conflist": clusterNetwork: .*99-missing\\.conflist: ENOENT`));
  plexusConf();

  // 5. the token: expired, then one the server rejects, then RBAC that does not grant NADs
  const expired = jwt({ sub: SA, iat: now() - 7200, exp: now() - 3600 });
  api.setToken(expired);
  api.writeKubeconfig(kubeconfig);
  c = await doctor(1);
  is(c.get('token'), 'fail', /^system:serviceaccount:plexus:plexus: expired (59|60) min ago \(/);
  api.setToken(token);
  c = await doctor(1);
  is(c.get('API'), 'fail', new RegExp(`^${api.url.replace(/[.]/g, '\\.')}: the token is not accepted \\(401 Unauthorized\\)$`));
  api.writeKubeconfig(kubeconfig);
  api.deny({ verb: 'get', resource: 'network-attachment-definitions' });
  c = await doctor(1);
  is(c.get('API'), 'fail', /: forbidden: network-attachment-definitions\.k8s\.cni\.cncf\.io "plexus-doctor-probe" is forbidden: User "system:serviceaccount:plexus:plexus" cannot get .*\(apply deploy\/10-rbac\.yaml\)$/);
  api.clearDenies();

  // 6. the cluster network's readiness indicator is missing, then present
  const ready = join(dir, 'ready');
  plexusConf({ readinessindicatorfile: ready });
  c = await doctor(1);
  is(c.get('readiness indicator'), 'fail', `${ready} does not exist: ADD waits for it and STATUS answers 50 (the cluster network is not ready)`);
  writeFileSync(ready, '');
  c = await doctor(0);
  is(c.get('readiness indicator'), 'ok', `${ready} exists`);

  // 7. daemon mode: nothing on the socket, then a real `plexus daemon`
  plexusConf({ daemonSocketDir: socketDir });
  c = await doctor(1);
  is(c.get('daemon'), 'fail', `nothing answers on ${join(socketDir, 'plexus.sock')}: every call pays a one-shot plexus start (the shim's fallback)`);
  const daemon = spawn(PLEXUS, ['daemon', socketDir], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => daemon.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    daemon.stderr.setEncoding('utf8').on('data', (s: string) => s.includes('listening on') && resolve());
    daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  c = await doctor(0);
  is(c.get('daemon'), 'ok', `answers VERSION on ${join(socketDir, 'plexus.sock')}`);
});

test('doctor: a conf dir without plexus, and one that does not exist', async (t) => {
  const dir = tempDir(t, 'plexus-doctor-');
  writeFileSync(join(dir, '10-flannel.conflist'), JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', plugins: [{ type: 'flannel' }] }));
  const r = await cli(['doctor', '--conf-dir', dir, '--cni-dir', join(dir, 'cni'), '-o', 'json']);
  assert.equal(r.status, 1);
  assert.deepEqual(r.json<Report>().checks[0], { check: 'config order', status: 'fail', detail: `no plexus config in ${dir}; the runtime uses 10-flannel.conflist (flannel)` });
  const none = await cli(['doctor', '--conf-dir', join(dir, 'nope'), '-o', 'json']);
  assert.equal(none.status, 1);
  assert.deepEqual(none.json<Report>().checks, [{ check: 'conf dir', status: 'fail', detail: `${join(dir, 'nope')}: ENOENT: no such file or directory, scandir '${join(dir, 'nope')}'` }]);
});

test('token expiry: read from the JWT without verifying it; past 80% of its lifetime is a warning', () => {
  const t0 = 1_700_000_000;
  const tok = (c: Record<string, unknown>) => jwt({ sub: SA, ...c });
  assert.deepEqual(tokenExpiry(tok({ iat: t0, exp: t0 + 3600 }), 'k', t0 + 600), { check: 'token', status: 'ok', detail: `${SA}: expires in 50 min` });
  assert.deepEqual(tokenExpiry(tok({ iat: t0, exp: t0 + 3600 }), 'k', t0 + 3000), { check: 'token', status: 'warn', detail: `${SA}: expires in 10 min, past 80% of its lifetime: is the token file being refreshed?` });
  assert.deepEqual(tokenExpiry(tok({ iat: t0, exp: t0 + 3600 }), 'k', t0 + 3600 + 30), { check: 'token', status: 'fail', detail: `${SA}: expired 30 s ago (${new Date((t0 + 3600) * 1000).toISOString()})` });
  assert.deepEqual(tokenExpiry(tok({}), 'k', t0), { check: 'token', status: 'ok', detail: `${SA}: no expiry` });
  assert.deepEqual(tokenExpiry('opaque-static-token', 'k', t0), { check: 'token', status: 'ok', detail: 'not a JWT: its expiry cannot be read' });
  assert.deepEqual(tokenExpiry(undefined, 'kubeconfig /x', t0), { check: 'token', status: 'skip', detail: 'kubeconfig /x has no bearer token (client certificate or none)' });
});
