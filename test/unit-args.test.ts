// src/cni/args.ts against libcni's pkg/types/args.go (LoadArgs, UnmarshallableBool, CommonArgs)
// and what containerd sends (toCNILabels: IgnoreUnknown=1 + K8S_POD_*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../src/cni/errors';
import {
  checkKnownArgs,
  formatCniArgs,
  getArg,
  ignoreUnknown,
  k8sArgs,
  parseCniArgs,
  podFromArgs,
  setArg,
  type CniArg,
} from '../src/cni/args';

function throwsCni(fn: () => unknown, code: number, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `want CniError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

// The exact string containerd builds for a pod sandbox.
const CONTAINERD =
  'IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=4f1c0e9a7b;K8S_POD_UID=6c2d5a1e-0b5f-4e1a-9d8e-3a2b1c0d9e8f';

test('parseCniArgs: pairs in order, duplicates kept, empty values allowed', () => {
  const cases: [string, CniArg[]][] = [
    ['', []],
    ['A=1', [['A', '1']]],
    ['A=1;B=2;A=3', [['A', '1'], ['B', '2'], ['A', '3']]],
    ['A=', [['A', '']]],
    ['IP=10.1.1.1,10.1.1.2;MAC=02:00:00:00:00:01', [['IP', '10.1.1.1,10.1.1.2'], ['MAC', '02:00:00:00:00:01']]],
    // libcni does not trim: spaces belong to keys and values
    [' A = 1', [[' A ', ' 1']]],
  ];
  for (const [s, want] of cases) assert.deepEqual(parseCniArgs(s), want, s);
});

test('parseCniArgs: malformed pairs are code 4 naming the pair', () => {
  const bad: [string, string][] = [
    ['A', 'A'],
    ['A=1;B', 'B'],
    ['A=1;', ''], // trailing ";" leaves an empty pair, as in libcni
    ['A=1;;B=2', ''],
    ['A=b=c', 'A=b=c'], // libcni splits on every "="
    ['=v', '=v'],
  ];
  const quoted = (p: string) => new RegExp(`^CNI_ARGS: invalid pair ${JSON.stringify(p).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`);
  for (const [s, pair] of bad) throwsCni(() => parseCniArgs(s), 4, quoted(pair));
});

test('formatCniArgs round-trips and refuses what could not be parsed back', () => {
  for (const s of [CONTAINERD, 'A=1;A=2', 'A=', '']) assert.equal(formatCniArgs(parseCniArgs(s)), s);
  throwsCni(() => formatCniArgs([['A', 'x;y']]), 4, /"A=x;y"/);
  throwsCni(() => formatCniArgs([['A', 'b=c']]), 4, /"A=b=c"/);
  throwsCni(() => formatCniArgs([['', 'v']]), 4);
});

test('getArg returns the last value; setArg replaces in place or appends', () => {
  const args = parseCniArgs('A=1;B=2;A=3');
  assert.equal(getArg(args, 'A'), '3');
  assert.equal(getArg(args, 'C'), undefined);
  assert.deepEqual(setArg(args, 'A', '9'), [['A', '9'], ['B', '2']]);
  assert.deepEqual(setArg(args, 'C', '4'), [['A', '1'], ['B', '2'], ['A', '3'], ['C', '4']]);
  assert.deepEqual(args, [['A', '1'], ['B', '2'], ['A', '3']], 'input untouched');
});

test('ignoreUnknown reads 1/true/0/false in any case, else code 4', () => {
  const cases: [string, boolean][] = [
    ['', false],
    ['IgnoreUnknown=1', true],
    ['IgnoreUnknown=true', true],
    ['IgnoreUnknown=TRUE', true],
    ['IgnoreUnknown=0', false],
    ['IgnoreUnknown=False', false],
    ['IgnoreUnknown=1;IgnoreUnknown=0', false],
  ];
  for (const [s, want] of cases) assert.equal(ignoreUnknown(parseCniArgs(s)), want, s);
  throwsCni(() => ignoreUnknown(parseCniArgs('IgnoreUnknown=yes')), 4, /IgnoreUnknown=yes/);
});

test('checkKnownArgs: unknown keys fail (code 4, listed) unless IgnoreUnknown', () => {
  checkKnownArgs(parseCniArgs('IP=10.1.1.1'), ['IP']);
  checkKnownArgs(parseCniArgs(CONTAINERD), []);
  throwsCni(() => checkKnownArgs(parseCniArgs('IP=10.1.1.1;FOO=bar;BAZ=1'), ['IP']), 4, /"FOO=bar", "BAZ=1"/, /IgnoreUnknown/);
  throwsCni(() => checkKnownArgs(parseCniArgs('FOO=bar;IgnoreUnknown=0'), []), 4, /"FOO=bar"/);
});

test('k8sArgs / podFromArgs: the pod identity containerd passes', () => {
  const args = parseCniArgs(CONTAINERD);
  assert.deepEqual(k8sArgs(args), {
    podNamespace: 'team-a',
    podName: 'web-0',
    podInfraContainerId: '4f1c0e9a7b',
    podUid: '6c2d5a1e-0b5f-4e1a-9d8e-3a2b1c0d9e8f',
  });
  assert.deepEqual(podFromArgs(args), { namespace: 'team-a', name: 'web-0', uid: '6c2d5a1e-0b5f-4e1a-9d8e-3a2b1c0d9e8f' });
  // CRI-O before UIDs, or an older runtime: no uid
  assert.deepEqual(podFromArgs(parseCniArgs('K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p')), { namespace: 'ns', name: 'p' });
  // Not a Kubernetes call (e.g. cnitool): no pod, and empty values count as absent
  assert.equal(podFromArgs(parseCniArgs('')), undefined);
  assert.equal(podFromArgs(parseCniArgs('K8S_POD_NAMESPACE=ns;K8S_POD_NAME=')), undefined);
  assert.deepEqual(k8sArgs(parseCniArgs('K8S_POD_NAMESPACE=;K8S_POD_UID=u')), { podUid: 'u' });
});
