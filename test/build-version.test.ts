// The built artifact as a runtime sees it: dist/bin/plexus and its busybox-style names, exec'd
// with a clean environment like libcni does (argv[0] = the full path), answering VERSION per the
// CNI spec. A preload (NODE_OPTIONS=--require, which a SEA honours) reports what the process saw
// and which of node's modules it loaded, without depending on anything plexus prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
const bin = join(root, 'dist', 'bin');
const plexus = join(bin, 'plexus');
// Must match PLUGIN_NAMES in scripts/build.mjs.
const NAMES = ['macvlan', 'ipvlan', 'bridge', 'host-device', 'host-local', 'static', 'whereabouts'];
const SEMVER = /^\d+\.\d+\.\d+$/;

interface Probe {
  argv0: string;
  argv: string[];
  execPath: string;
  modules: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'plexus-build-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const probeJs = join(dir, 'probe.cjs');
writeFileSync(
  probeJs,
  `process.on('exit', () => require('fs').writeFileSync(process.env.PLEXUS_PROBE_OUT, JSON.stringify({
    argv0: process.argv0, argv: process.argv, execPath: process.execPath,
    modules: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)),
  })));\n`,
);

let seq = 0;
/** Runs `cmd` the way libcni runs a plugin; `argv0` defaults to cmd. */
function exec(cmd: string, opts: { argv0?: string; env?: Record<string, string>; probe?: boolean } = {}) {
  const out = join(dir, `probe-${seq++}.json`);
  const env: Record<string, string> = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: 'VERSION', ...opts.env };
  if (opts.probe) Object.assign(env, { NODE_OPTIONS: `--require=${probeJs}`, PLEXUS_PROBE_OUT: out });
  const r = spawnSync(cmd, [], { env, argv0: opts.argv0 ?? cmd, input: '{"cniVersion":"1.1.0"}', encoding: 'utf8' });
  const probe = opts.probe ? (JSON.parse(readFileSync(out, 'utf8')) as Probe) : undefined;
  return { ...r, probe };
}

function assertVersionResult(stdout: string): void {
  // One JSON object (CNI spec §"VERSION": cniVersion + supportedVersions), nothing else.
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout is one JSON line: ${stdout}`);
  const v = JSON.parse(lines[0]!) as { cniVersion?: unknown; supportedVersions?: unknown };
  assert.equal(typeof v.cniVersion, 'string');
  assert.match(v.cniVersion as string, SEMVER);
  assert.ok(Array.isArray(v.supportedVersions), 'supportedVersions is an array');
  const supported = v.supportedVersions as unknown[];
  for (const s of supported) assert.match(String(s), SEMVER);
  assert.ok(supported.includes(v.cniVersion), 'cniVersion is one of supportedVersions');
  for (const want of ['0.3.1', '0.4.0', '1.0.0', '1.1.0']) assert.ok(supported.includes(want), `supports ${want}`);
}

test('dist/bin/plexus exists (make build)', () => {
  assert.ok(existsSync(plexus), `${plexus} is missing: run make build`);
});

test('plexus answers VERSION per the CNI spec, silently on stderr', () => {
  const r = exec(plexus);
  assert.equal(r.status, 0, r.stderr);
  // e.g. a SEA "experimental feature" warning would land here and in every runtime's log
  assert.equal(r.stderr, '');
  assertVersionResult(r.stdout);
});

test('VERSION loads neither the logger nor the Kubernetes client', () => {
  // pino needs worker_threads (thread-stream); any API client needs tls/https. VERSION runs on
  // every runtime probe and must pay for neither: the bundle must keep them behind lazy imports.
  const r = exec(plexus, { probe: true });
  assert.equal(r.status, 0, r.stderr);
  const loaded = new Set(r.probe!.modules);
  for (const m of ['worker_threads', 'tls', 'https', 'http', 'http2']) assert.ok(!loaded.has(m), `VERSION loaded node:${m}`);
});

for (const name of NAMES) {
  test(`${name}: a link that reaches plexus under its own name`, () => {
    const link = join(bin, name);
    assert.equal(realpathSync(link), realpathSync(plexus), `${link} resolves to plexus`);
    // libcni execs the full path with argv[0] = that path. Whatever the plugin then answers, the
    // dispatcher must have seen the name: process.argv0 is argv[0] untouched inside a SEA.
    const full = exec(link, { probe: true });
    assert.equal(basename(full.probe!.argv0), name, 'argv0 names the link');
    // execPath is the resolved binary, not the link: addons beside it are found from there
    assert.equal(full.probe!.execPath, realpathSync(plexus));
    // found on PATH by its bare name, as a shell would
    const bare = exec(name, { argv0: name, env: { PATH: bin }, probe: true });
    assert.equal(bare.probe!.argv0, name);
  });
}

// Every name the build ships must answer VERSION (runtimes probe plugins with it).
test('every shipped name answers VERSION per the CNI spec', () => {
  for (const name of NAMES) {
    const r = exec(join(bin, name));
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assertVersionResult(r.stdout);
  }
});

test('the native addon ships beside the binary', { skip: !existsSync(join(root, 'scripts', 'build-addon.sh')) }, () => {
  assert.ok(existsSync(join(bin, 'plexus_netns.node')), 'dist/bin/plexus_netns.node');
});
