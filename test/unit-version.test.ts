// src/cni/version.ts against libcni: pkg/version (ParseVersion, GreaterThan), pkg/skel guards,
// libcni/conf.go (cniVersions selection) and SPEC.md "Version considerations".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../src/cni/errors';
import {
  atLeast,
  chooseVersion,
  compareVersions,
  configVersionOf,
  isSupported,
  LATEST_VERSION,
  parseVersion,
  requireSupported,
  requireVerb,
  SUPPORTED_VERSIONS,
  supports,
  versionInfo,
  type Verb,
} from '../src/cni/version';

/** Asserts fn throws a CniError with `code` whose message matches every pattern. */
function throwsCni(fn: () => unknown, code: number, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `want CniError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

test('the versions plexus speaks', () => {
  assert.deepEqual([...SUPPORTED_VERSIONS], ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  assert.equal(LATEST_VERSION, '1.1.0');
  assert.deepEqual(versionInfo(), { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) assert.equal(isSupported(v), true, v);
  // Membership is exact, like skel's reconciler: "1.0" is not "1.0.0".
  for (const v of ['0.1.0', '0.2.0', '1.0', '1.2.0', '', ' 1.0.0']) assert.equal(isSupported(v), false, v);
});

test('parseVersion: missing parts are zero, empty is 0.1.0', () => {
  const cases: [string, [number, number, number]][] = [
    ['1.1.0', [1, 1, 0]],
    ['0.3.1', [0, 3, 1]],
    ['1.0', [1, 0, 0]],
    ['2', [2, 0, 0]],
    ['', [0, 1, 0]],
    ['10.20.30', [10, 20, 30]],
  ];
  for (const [v, want] of cases) assert.deepEqual(parseVersion(v), want, v);
  for (const bad of ['1.0.0.0', 'v1.0.0', '1.x', '1..0', '1.0.0-rc1', ' 1.0.0']) throwsCni(() => parseVersion(bad), 1, new RegExp(JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test('compareVersions is numeric, not lexical', () => {
  const cases: [string, string, number][] = [
    ['0.3.0', '0.3.1', -1],
    ['0.4.0', '0.3.1', 1],
    ['1.0.0', '0.4.0', 1],
    ['1.10.0', '1.9.0', 1],
    ['1.0', '1.0.0', 0],
    ['1.1.0', '1.1.0', 0],
    ['', '0.1.0', 0],
  ];
  for (const [a, b, want] of cases) assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
  assert.equal(atLeast('0.4.0', '0.4.0'), true);
  assert.equal(atLeast('0.3.1', '0.4.0'), false);
});

test('supports: CHECK needs ≥0.4.0, STATUS and GC need ≥1.1.0 (skel guards)', () => {
  const table: Record<string, Record<Verb, boolean>> = {
    '0.3.0': { ADD: true, DEL: true, CHECK: false, STATUS: false, GC: false, VERSION: true },
    '0.3.1': { ADD: true, DEL: true, CHECK: false, STATUS: false, GC: false, VERSION: true },
    '0.4.0': { ADD: true, DEL: true, CHECK: true, STATUS: false, GC: false, VERSION: true },
    '1.0.0': { ADD: true, DEL: true, CHECK: true, STATUS: false, GC: false, VERSION: true },
    '1.1.0': { ADD: true, DEL: true, CHECK: true, STATUS: true, GC: true, VERSION: true },
    '0.2.0': { ADD: false, DEL: false, CHECK: false, STATUS: false, GC: false, VERSION: true },
    '1.2.0': { ADD: false, DEL: false, CHECK: false, STATUS: false, GC: false, VERSION: true },
  };
  for (const [v, verbs] of Object.entries(table)) {
    for (const [verb, want] of Object.entries(verbs)) assert.equal(supports(verb as Verb, v), want, `${verb} @ ${v}`);
  }
});

test('requireVerb / requireSupported: code 1 naming the version and the verb', () => {
  requireVerb('CHECK', '0.4.0');
  requireVerb('GC', '1.1.0');
  requireVerb('VERSION', 'garbage');
  throwsCni(() => requireVerb('CHECK', '0.3.1'), 1, /"0\.3\.1"/, /CHECK/, /0\.4\.0/);
  throwsCni(() => requireVerb('STATUS', '1.0.0'), 1, /"1\.0\.0"/, /STATUS/, /1\.1\.0/);
  throwsCni(() => requireVerb('GC', '0.4.0'), 1, /"0\.4\.0"/, /GC/);
  throwsCni(() => requireVerb('ADD', '0.2.0'), 1, /"0\.2\.0"/, /plexus supports 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
  throwsCni(() => requireSupported(''), 1, /^cniVersion: /, /missing \(which means 0\.1\.0\)/);
  throwsCni(() => requireSupported('9.9.9', 'plugins[1].cniVersion'), 1, /^plugins\[1\]\.cniVersion: /, /"9\.9\.9"/);
});

test('chooseVersion: highest supported of cniVersion ∪ cniVersions', () => {
  const cases: [string | undefined, string[] | undefined, string][] = [
    // without cniVersions, cniVersion as written
    ['0.3.1', undefined, '0.3.1'],
    ['1.1.0', undefined, '1.1.0'],
    // cniVersion joins the candidates
    ['0.4.0', ['1.0.0'], '1.0.0'],
    ['1.1.0', ['0.4.0'], '1.1.0'],
    [undefined, ['0.3.1', '1.1.0', '1.0.0'], '1.1.0'],
    ['', ['0.4.0'], '0.4.0'],
    // newer than the spec we implement is dropped (libcni), as is one we do not speak
    ['1.0.0', ['2.0.0', '1.5.0'], '1.0.0'],
    [undefined, ['1.0.5', '1.0.0'], '1.0.0'],
    [undefined, ['0.2.0', '0.3.0'], '0.3.0'],
    // the highest wins wherever it stands in the list
    [undefined, ['1.0.0', '0.4.0', '0.3.0'], '1.0.0'],
    [undefined, ['0.3.0', '0.4.0', '0.3.1'], '0.4.0'],
  ];
  for (const [v, vs, want] of cases) assert.equal(chooseVersion(v, vs), want, `${v} ∪ ${JSON.stringify(vs)}`);
});

test('chooseVersion errors are code 1 naming the versions', () => {
  throwsCni(() => chooseVersion('2.0.0'), 1, /^cniVersion: /, /"2\.0\.0"/);
  throwsCni(() => chooseVersion(undefined), 1, /missing/);
  throwsCni(() => chooseVersion(undefined, ['2.0.0', '0.2.0']), 1, /^cniVersions: /, /"2\.0\.0", "0\.2\.0"/);
  throwsCni(() => chooseVersion(undefined, []), 1, /offers nothing/);
  throwsCni(() => chooseVersion('1.0.0', ['1.0.0', 'one']), 1, /^cniVersions\[1\]: /, /"one"/);
  throwsCni(() => chooseVersion('x', ['1.0.0']), 1, /^cniVersion: /, /"x"/);
  throwsCni(() => chooseVersion('x', ['1.0.0'], 'delegates[0].cniVersion'), 1, /^delegates\[0\]\.cniVersion: /);
});

test('configVersionOf reads a config object; wrong types are code 7 naming the key', () => {
  assert.equal(configVersionOf({ cniVersion: '0.4.0', cniVersions: ['1.0.0', '1.1.0'] }), '1.1.0');
  assert.equal(configVersionOf({ cniVersion: '1.0.0' }), '1.0.0');
  throwsCni(() => configVersionOf({ cniVersion: 1 }), 7, /^cniVersion: must be a string/);
  throwsCni(() => configVersionOf({ cniVersion: '1.0.0', cniVersions: '1.1.0' }), 7, /^cniVersions: must be a list/);
  throwsCni(() => configVersionOf({ cniVersions: ['1.0.0', 2] }), 7, /^cniVersions\[1\]: must be a string/);
});
