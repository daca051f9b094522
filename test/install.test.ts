// `plexus install` on a temporary host root: the primary configs of common CNIs give the right
// 00-plexus.conflist, the selection rule ignores what it must and refuses what is ambiguous, the
// watch mode follows the primary and the token, uninstall leaves nothing, and an install killed
// at any moment never leaves a partial file where the runtime reads or execs it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bearerToken, loadKubeconfig } from '../src/k8s/kubeconfig';
import { BUILTIN_NAMES } from '../src/builtin';
import { hostPath, parseInstallArgs, UsageError } from '../src/install/flags';
import { selectPrimary } from '../src/install/primary';
import { fakePlugin, hostRoot, runInstall, startInstall, until, type HostRoot } from './helpers/install';
import { tempDir } from './helpers/host';
import { PLEXUS, requireBuild } from './helpers/plexus';

requireBuild();

type Conf = Record<string, unknown> & { cniVersion: string; plugins?: Record<string, unknown>[] };

/** What the generated plugin must carry for `primary`: its plugins' capabilities plus pod annotations. */
function expectedCaps(primary: Conf): Record<string, boolean> {
  const caps: Record<string, boolean> = {};
  for (const p of primary.plugins ?? [primary]) {
    for (const [k, v] of Object.entries((p.capabilities ?? {}) as Record<string, unknown>)) if (v === true) caps[k] = true;
  }
  caps['io.kubernetes.cri.pod-annotations'] = true;
  return caps;
}

function writePrimary(h: HostRoot, file: string, conf: Conf): void {
  // as a careful CNI installer does: temp + rename
  writeFileSync(join(h.confDir, `.${file}.new`), JSON.stringify(conf));
  renameSync(join(h.confDir, `.${file}.new`), join(h.confDir, file));
}

function ours(h: HostRoot): { cniVersion: string; name: string; plugins: Record<string, unknown>[] } {
  return JSON.parse(readFileSync(join(h.confDir, '00-plexus.conflist'), 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
}

const FLANNEL: Conf = {
  name: 'cbr0',
  cniVersion: '0.3.1',
  plugins: [
    { type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};

const CALICO: Conf = {
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  plugins: [
    {
      type: 'calico',
      datastore_type: 'kubernetes',
      nodename: 'node-1',
      ipam: { type: 'calico-ipam' },
      policy: { type: 'k8s' },
      kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' },
    },
    { type: 'bandwidth', capabilities: { bandwidth: true } },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
  ],
};

const BRIDGE: Conf = { cniVersion: '0.4.0', name: 'mynet', type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.22.0.0/16' } };

for (const [label, file, conf, plugins] of [
  ['flannel-like conflist', '10-flannel.conflist', FLANNEL, ['flannel', 'portmap']],
  ['calico-like conflist with its kubeconfig beside it', '10-calico.conflist', CALICO, ['calico', 'calico-ipam', 'bandwidth', 'portmap']],
  ['plain bridge .conf', '10-bridge.conf', BRIDGE, ['bridge', 'host-local']],
] as const) {
  // copying the 83 MiB executable is checked once; the other configs need only the config step
  const copies = file === '10-flannel.conflist';
  test(`a ${label} gives 00-plexus.conflist pointing at it with its version and capabilities`, async (t) => {
    const h = hostRoot(t, { installed: !copies });
    for (const p of plugins) fakePlugin(h.binDir, p);
    writePrimary(h, file, conf);
    if (file === '10-calico.conflist') writeFileSync(join(h.confDir, 'calico-kubeconfig'), 'apiVersion: v1\nkind: Config\n');
    const r = await runInstall(t, [...h.flags, '--wait-timeout', '5', ...(copies ? [] : ['--skip-binary-copy'])]);
    assert.equal(r.status, 0, r.stderr);
    const c = ours(h);
    assert.equal(c.cniVersion, conf.cniVersion);
    assert.equal(c.name, 'multus-cni-network');
    assert.equal(c.plugins.length, 1);
    const p = c.plugins[0]!;
    assert.equal(p.type, 'plexus');
    assert.equal(p.clusterNetwork, `/etc/cni/net.d/${file}`, 'a host path: the runtime does not see the host root prefix');
    assert.equal(p.binDir, '/opt/cni/bin');
    assert.equal(p.kubeconfig, '/etc/cni/net.d/plexus.d/plexus.kubeconfig');
    assert.deepEqual(p.capabilities, expectedCaps(conf));
    assert.match(r.stderr, new RegExp(`wrote .*00-plexus\\.conflist \\(primary ${file.replace('.', '\\.')}\\)`));
    assert.deepEqual(readdirSync(h.confDir).filter((f) => f.includes('tmp')), [], 'no temp file left');
    if (!copies) return;
    // the executables: the addon and the shim beside plexus, identical to the build; the plugin names as links
    for (const f of ['plexus', 'plexus_netns.node', 'plexus-shim']) {
      const got = join(h.binDir, f);
      assert.equal(statSync(got).mode & 0o777, 0o755, f);
      assert.ok(readFileSync(got).equals(readFileSync(join(PLEXUS, '..', f))), `${f} is a complete copy`);
    }
    for (const n of BUILTIN_NAMES) assert.equal(readlinkSync(join(h.binDir, n)), 'plexus');
    assert.deepEqual(readdirSync(h.binDir).filter((f) => f.includes('tmp')), [], 'no temp file left');
  });
}

test('the generated kubeconfig names the token file, and a rotated token is read on the next call', async (t) => {
  const h = hostRoot(t);
  // host root "/": the paths in the kubeconfig are then real on this machine and can be loaded
  const flags = ['--host-root', '/', '--cni-bin-dir', h.binDir, '--cni-conf-dir', h.confDir, '--service-account-dir', h.saDir, '--api-server', 'https://127.0.0.1:6443'];
  writeFileSync(join(h.saDir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  fakePlugin(h.binDir, 'flannel');
  fakePlugin(h.binDir, 'portmap');
  writePrimary(h, '10-flannel.conflist', FLANNEL);
  const inst = startInstall(t, [...flags, '--watch', '--recheck-interval', '0.2', '--skip-binary-copy']);
  const kc = join(h.confDir, 'plexus.d', 'plexus.kubeconfig');
  await until('the kubeconfig and the config', () => existsSync(kc) && existsSync(join(h.confDir, '00-plexus.conflist')));
  assert.equal(statSync(kc).mode & 0o777, 0o600);
  assert.equal(statSync(join(h.confDir, 'plexus.d')).mode & 0o777, 0o700);
  const access = loadKubeconfig(kc);
  assert.equal(access.server.href, 'https://127.0.0.1:6443/');
  assert.equal(access.tokenFile?.path, join(h.confDir, 'plexus.d', 'token'));
  assert.match(access.ca ?? '', /BEGIN CERTIFICATE/);
  assert.equal(bearerToken(access), 'token-1');
  // the kubelet rotates the projected token: the mirror follows, the kubeconfig stays as it is
  const kcBefore = readFileSync(kc, 'utf8');
  writeFileSync(join(h.saDir, 'token.new'), 'token-2\n');
  renameSync(join(h.saDir, 'token.new'), join(h.saDir, 'token'));
  await until('the rotated token mirrored', () => bearerToken(access) === 'token-2');
  assert.equal(readFileSync(kc, 'utf8'), kcBefore);
  inst.child.kill('SIGTERM');
  assert.equal(await inst.exited, 0, inst.stderr());
  assert.ok(existsSync(join(h.confDir, '00-plexus.conflist')), 'without --cleanup-config-on-exit the config stays');
});

test('selection ignores its own and Multus\'s files and configs whose plugins are absent, not the alphabet', async (t) => {
  const h = hostRoot(t);
  fakePlugin(h.binDir, 'calico');
  fakePlugin(h.binDir, 'bandwidth');
  fakePlugin(h.binDir, 'portmap');
  // sorts first, but its plugin is not installed: a leftover from another CNI
  writePrimary(h, '05-leftover.conflist', { ...FLANNEL, name: 'leftover' });
  writeFileSync(join(h.confDir, '00-multus.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'multus-cni-network', type: 'multus', kubeconfig: '/x' }));
  writeFileSync(join(h.confDir, '01-broken.conflist'), '{"cniVersion": "0.3.1", "name": "half-writ');
  writePrimary(h, '10-calico.conflist', CALICO);
  const r = await runInstall(t, [...h.flags, '--wait-timeout', '5', '--skip-binary-copy']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(ours(h).plugins[0]!.clusterNetwork, '/etc/cni/net.d/10-calico.conflist');
  assert.match(r.stderr, /warning: .*00-multus config, which sorts before 00-plexus\.conflist/);
  // run again: its own file is there now and must not be a candidate; the result is the same
  const again = await runInstall(t, [...h.flags, '--wait-timeout', '5', '--skip-binary-copy']);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /wrote .*00-plexus/, 'same bytes: not rewritten');
});

test('two possible primaries are refused, naming both, until one is pinned with --master-cni-file', async (t) => {
  const h = hostRoot(t);
  for (const p of ['flannel', 'portmap', 'calico', 'bandwidth']) fakePlugin(h.binDir, p);
  writePrimary(h, '10-flannel.conflist', FLANNEL);
  writePrimary(h, '10-calico.conflist', CALICO);
  const r = await runInstall(t, [...h.flags, '--wait-timeout', '0.3', '--skip-binary-copy']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /gave up after 0\.3 s: several configs could be the primary \(10-calico\.conflist, 10-flannel\.conflist\): name one with --master-cni-file/);
  assert.ok(!existsSync(join(h.confDir, '00-plexus.conflist')));
  const pinned = await runInstall(t, [...h.flags, '--wait-timeout', '1', '--skip-binary-copy', '--multus-master-cni-file-name', '10-flannel.conflist']);
  assert.equal(pinned.status, 0, pinned.stderr);
  assert.equal(ours(h).plugins[0]!.clusterNetwork, '/etc/cni/net.d/10-flannel.conflist');
  assert.deepEqual(ours(h).plugins[0]!.capabilities, expectedCaps(FLANNEL));
});

test('install waits for the readiness indicator and then the primary, saying what it waits for', async (t) => {
  const h = hostRoot(t);
  fakePlugin(h.binDir, 'bridge');
  const ready = join(h.root, 'run', 'flannel', 'subnet.env');
  mkdirSync(join(h.root, 'run', 'flannel'), { recursive: true });
  const inst = startInstall(t, [...h.flags, '--wait-timeout', '20', '--skip-binary-copy', '--readiness-indicator-file', ready, '--daemon-socket-dir', '/run/plexus']);
  await until('the readiness wait message', () => inst.stderr().includes(`waiting up to 20 s: readiness indicator file ${ready} does not exist yet`));
  writeFileSync(ready, 'FLANNEL_NETWORK=10.0.0.0/8\n');
  await until('the primary wait message', () => /waiting up to 20 s: no primary CNI config yet/.test(inst.stderr()));
  assert.ok(!existsSync(join(h.confDir, '00-plexus.conflist')));
  writePrimary(h, '10-bridge.conf', BRIDGE);
  assert.equal(await inst.exited, 0, inst.stderr());
  const p = ours(h).plugins[0]!;
  assert.equal(p.type, 'plexus-shim');
  assert.equal(p.daemonSocketDir, '/run/plexus');
  assert.equal(p.readinessindicatorfile, '/run/flannel/subnet.env');
  assert.equal(ours(h).cniVersion, BRIDGE.cniVersion);
});

test('--watch regenerates on a changed primary, removes the config when it goes, and cleans up on SIGTERM', async (t) => {
  const h = hostRoot(t);
  for (const p of ['flannel', 'portmap', 'calico', 'bandwidth']) fakePlugin(h.binDir, p);
  writePrimary(h, '10-flannel.conflist', FLANNEL);
  const inst = startInstall(t, [...h.flags, '--skip-binary-copy', '--watch', '--cleanup-config-on-exit', '--recheck-interval', '0.5']);
  const conf = join(h.confDir, '00-plexus.conflist');
  await until('the first config', () => existsSync(conf));
  assert.deepEqual(ours(h).plugins[0]!.capabilities, expectedCaps(FLANNEL));

  // the primary's version and capabilities change in place
  const flannel2: Conf = { ...FLANNEL, cniVersion: '1.0.0', plugins: [...FLANNEL.plugins!, { type: 'bandwidth', capabilities: { bandwidth: true } }] };
  writePrimary(h, '10-flannel.conflist', flannel2);
  await until('the regenerated config', () => ours(h).cniVersion === '1.0.0');
  assert.deepEqual(ours(h).plugins[0]!.capabilities, expectedCaps(flannel2));

  // The primary's installer rewrites it in place (truncate, write): for a moment it is half a
  // file. The config stays as it was rather than vanishing or switching.
  const kept = readFileSync(conf, 'utf8');
  writeFileSync(join(h.confDir, '10-flannel.conflist'), JSON.stringify(flannel2).slice(0, 40));
  await until('the unreadable primary noticed', () => /the primary 10-flannel\.conflist is not loadable right now .*: config kept/.test(inst.stderr()));
  assert.equal(readFileSync(conf, 'utf8'), kept);

  // A second CNI's config appears, then the primary changes again: the regenerated config still
  // points at the current primary (written after the newcomer, so the newcomer was seen).
  writePrimary(h, '05-calico.conflist', CALICO);
  writePrimary(h, '10-flannel.conflist', FLANNEL);
  await until('the config regenerated again', () => ours(h).cniVersion === FLANNEL.cniVersion);
  assert.equal(ours(h).plugins[0]!.clusterNetwork, '/etc/cni/net.d/10-flannel.conflist', 'no switch to a newcomer that sorts first');

  // the primary goes: the one candidate left is chosen
  rmSync(join(h.confDir, '10-flannel.conflist'));
  await until('the config on calico', () => existsSync(conf) && ours(h).plugins[0]!.clusterNetwork === '/etc/cni/net.d/05-calico.conflist');
  assert.deepEqual(ours(h).plugins[0]!.capabilities, expectedCaps(CALICO));

  // no primary at all: no config pointing at a missing network
  rmSync(join(h.confDir, '05-calico.conflist'));
  await until('the config removed', () => !existsSync(conf));
  await until('the removal explained', () => /removed .*00-plexus\.conflist so that no pod is sent to a network that is not there: no primary CNI config yet/.test(inst.stderr()));

  writePrimary(h, '10-flannel.conflist', FLANNEL);
  await until('the config back', () => existsSync(conf));
  inst.child.kill('SIGTERM');
  assert.equal(await inst.exited, 0, inst.stderr());
  assert.ok(!existsSync(conf), '--cleanup-config-on-exit removed it');
  assert.match(inst.stderr(), /SIGTERM: removed .*--cleanup-config-on-exit/);
});

test('--uninstall removes the config and the credentials, and says what it removed', async (t) => {
  const h = hostRoot(t);
  fakePlugin(h.binDir, 'bridge');
  writePrimary(h, '10-bridge.conf', BRIDGE);
  const r = await runInstall(t, [...h.flags, '--skip-binary-copy', '--wait-timeout', '5']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(h.confDir, 'plexus.d', 'token')));
  const u = await runInstall(t, [...h.flags, '--uninstall']);
  assert.equal(u.status, 0, u.stderr);
  assert.deepEqual(readdirSync(h.confDir).sort(), ['10-bridge.conf']);
  assert.match(u.stderr, /removed .*00-plexus\.conflist, .*plexus\.d/);
});

test('a config-only install on a node without plexus is refused: the config would name a missing plugin', async (t) => {
  const h = hostRoot(t, { installed: false });
  fakePlugin(h.binDir, 'bridge');
  writePrimary(h, '10-bridge.conf', BRIDGE);
  for (const extra of [[], ['--daemon-socket-dir', '/run/plexus']]) {
    const r = await runInstall(t, [...h.flags, '--skip-binary-copy', '--wait-timeout', '1', ...extra]);
    assert.equal(r.status, 1);
    const want = extra.length ? 'plexus-shim' : 'plexus';
    assert.match(r.stderr, new RegExp(`${join(h.binDir, want).replace(/[.]/g, '\\.')} does not exist: the config would name a plugin the runtime cannot run`));
    assert.ok(!existsSync(join(h.confDir, '00-plexus.conflist')));
  }
});

test('--conf-file installs the operator\'s own config; a Multus one is refused with the fix', async (t) => {
  const h = hostRoot(t);
  const mine = join(h.root, 'my-plexus.conf');
  // a Multus-style single conf, as an operator keeps it: installed as a conflist, keys untouched
  const conf = { cniVersion: '1.0.0', name: 'multus-cni-network', type: 'plexus', kubeconfig: '/etc/cni/net.d/multus.d/multus.kubeconfig', clusterNetwork: 'cbr0', defaultNetworks: ['storage'] };
  writeFileSync(mine, JSON.stringify({ ...conf, type: 'multus' }));
  const bad = await runInstall(t, [...h.flags, '--skip-binary-copy', '--wait-timeout', '0.5', '--multus-conf-file', mine]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /"type": "multus" is Multus's; change it to "plexus"/);
  writeFileSync(mine, JSON.stringify(conf));
  const r = await runInstall(t, [...h.flags, '--skip-binary-copy', '--wait-timeout', '5', '--conf-file', mine]);
  assert.equal(r.status, 0, r.stderr);
  const { cniVersion, name, ...plugin } = conf;
  assert.deepEqual(ours(h), { cniVersion, name, plugins: [plugin] });
  assert.match(r.stderr, /primary .*my-plexus\.conf \(--conf-file\)/);
});

test('bad flags are refused with the flag named, exit 2', async (t) => {
  for (const [args, msg] of [
    [['--cni-conf-dir', 'etc/cni'], /--cni-conf-dir: must be an absolute path/],
    [['--master-cni-file', '/etc/cni/net.d/10-x.conf'], /--master-cni-file: a file name in the conf dir, not a path/],
    [['--bogus'], /unknown flag --bogus/],
    [['--wait-timeout', 'soon'], /--wait-timeout: expected seconds/],
    [['--cleanup-config-on-exit'], /only with --watch/],
  ] as const) {
    const r = await runInstall(t, [...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  assert.throws(() => parseInstallArgs(['--log-level', 'loud'], '/x/plexus'), UsageError);
  const o = parseInstallArgs(['--host-root', '/host'], '/opt/plexus/plexus');
  assert.equal(o.cniBinDir, '/host/opt/cni/bin');
  assert.equal(o.sourceDir, '/opt/plexus');
  assert.equal(hostPath(o, '/host/etc/cni/net.d/10-x.conf'), '/etc/cni/net.d/10-x.conf');
  assert.equal(hostPath(o, '/hostile/x'), '/hostile/x', 'a sibling with the same prefix is not under the host root');
});

test('selectPrimary: an explicit name that is a meta-plugin\'s config is refused', () => {
  const s = selectPrimary([{ name: '00-multus.conf', text: JSON.stringify({ cniVersion: '0.3.1', name: 'm', type: 'multus' }) }], { explicit: '00-multus.conf', hasBinary: () => true });
  assert.equal(s.ok, false);
  assert.match(s.ok ? '' : s.problem, /is a meta-plugin's \(type multus\)/);
});

test('selectPrimary: the current primary is kept over a newcomer, and kept while it is half-written', () => {
  const a = { name: '10-a.conflist', text: JSON.stringify(FLANNEL) };
  const b = { name: '05-b.conflist', text: JSON.stringify(CALICO) };
  const all = () => true;
  const s1 = selectPrimary([a, b], { current: '10-a.conflist', hasBinary: all });
  assert.equal(s1.ok && s1.primary.file, '10-a.conflist');
  const s2 = selectPrimary([a, b], { hasBinary: all });
  assert.equal(s2.ok, false, 'without a current one, two candidates are ambiguous');
  const half = { name: '10-a.conflist', text: a.text.slice(0, 30) };
  const s3 = selectPrimary([half, b], { current: '10-a.conflist', hasBinary: all });
  assert.equal(!s3.ok && s3.keep, true, 'the current primary mid-rewrite keeps the config');
  const s4 = selectPrimary([half, b], { hasBinary: all });
  assert.equal(s4.ok && s4.primary.file, '05-b.conflist', 'a broken file that is not the current primary is just skipped');
  const hidden = selectPrimary([{ name: '.10-a.conflist', text: a.text }, { name: '10-a.conflist.bak', text: a.text }], { hasBinary: all });
  assert.equal(hidden.ok, false, 'hidden and non-config names are never candidates');
});

test('an install killed at any moment leaves the old or the new files, complete, and the next one cleans up', async (t) => {
  const h = hostRoot(t, { installed: false });
  fakePlugin(h.binDir, 'flannel');
  fakePlugin(h.binDir, 'portmap');
  const src = tempDir(t, 'plexus-src-');
  // two builds the loop alternates between, different in their last byte; 16 MiB of the real
  // executable keeps each run short while the copy still takes long enough to be interrupted
  const exe = readFileSync(PLEXUS).subarray(0, 16 << 20);
  const builds = [Buffer.concat([exe, Buffer.from('A')]), Buffer.concat([exe, Buffer.from('B')])];
  const digests = new Set(builds.map((b) => createHash('sha256').update(b).digest('hex')));
  for (const f of ['plexus_netns.node', 'plexus-shim']) writeFileSync(join(src, f), readFileSync(join(PLEXUS, '..', f)), { mode: 0o755 });
  const primaries = [FLANNEL, { ...FLANNEL, cniVersion: '1.0.0' }];
  const flags = [...h.flags, '--source-dir', src, '--wait-timeout', '5'];

  // Complete runs first: the texts a complete install writes for each primary.
  const complete = new Set<string>();
  let fullMs = Infinity;
  for (let i = 0; i < 2; i++) {
    writeFileSync(join(src, 'plexus'), builds[i]!, { mode: 0o755 });
    writePrimary(h, '10-flannel.conflist', primaries[i]!);
    const t0 = Date.now();
    const r = await runInstall(t, flags);
    fullMs = Math.min(fullMs, Date.now() - t0);
    assert.equal(r.status, 0, r.stderr);
    complete.add(readFileSync(join(h.confDir, '00-plexus.conflist'), 'utf8'));
  }
  assert.equal(complete.size, 2);

  const RUNS = 10;
  const conf = join(h.confDir, '00-plexus.conflist');
  const exePath = join(h.binDir, 'plexus');
  let observations = 0;
  let killedMidway = 0;
  const observe = () => {
    // what a runtime would read or exec right now
    const text = readFileSync(conf, 'utf8');
    assert.ok(complete.has(text), `a partial or unknown 00-plexus.conflist was visible:\n${text}`);
    assert.equal(statSync(exePath).size, builds[0]!.length, 'the executable is complete');
    for (const n of BUILTIN_NAMES) assert.ok(lstatSync(join(h.binDir, n)).isSymbolicLink());
    observations++;
  };
  for (let i = 0; i < RUNS; i++) {
    writeFileSync(join(src, 'plexus'), builds[i % 2]!, { mode: 0o755 });
    writePrimary(h, '10-flannel.conflist', primaries[i % 2]!);
    const inst = startInstall(t, flags);
    // killed anywhere from its start to its end; observed all the while
    const killAt = Date.now() + Math.random() * 0.9 * fullMs;
    let done = false;
    void inst.exited.then(() => (done = true));
    while (!done) {
      observe();
      if (Date.now() >= killAt && inst.child.exitCode === null) {
        inst.child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    const status = await inst.exited;
    if (status === 'SIGKILL') killedMidway++;
    observe();
    assert.ok(digests.has(createHash('sha256').update(readFileSync(exePath)).digest('hex')), 'the executable is one of the two builds, whole');
  }
  t.diagnostic(`${observations} observations, ${killedMidway} of ${RUNS} installs killed before they finished`);
  assert.ok(killedMidway >= RUNS / 2, `most runs must really be interrupted (${killedMidway} were)`);
  // one complete run afterwards: it removes what the killed ones left, and leaves no temp file
  const r = await runInstall(t, flags);
  assert.equal(r.status, 0, r.stderr);
  for (const d of [h.binDir, h.confDir, join(h.confDir, 'plexus.d')]) {
    assert.deepEqual(readdirSync(d).filter((f) => f.includes('plexus-tmp')), [], `temp files left in ${d}`);
  }
});
