// The test apiserver's patch engines against the RFC examples and the cases plexus depends on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../src/cni/validate';
import { applyJsonPatch, mergePatch, PatchError, strategicMergePatch } from './apiserver/patch';

test('merge patch: RFC 7386 appendix A examples', () => {
  const cases: [Json, Json, Json][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want, JSON.stringify({ target, patch }));
});

test('merge patch does not modify its inputs', () => {
  const target = { metadata: { annotations: { a: '1' } } };
  const patch = { metadata: { annotations: { b: '2' } } };
  mergePatch(target, patch);
  assert.deepEqual(target, { metadata: { annotations: { a: '1' } } });
  assert.deepEqual(patch, { metadata: { annotations: { b: '2' } } });
});

test('strategic merge patch: maps merge, null deletes, $patch replace/delete, lists replaced', () => {
  const target = { metadata: { labels: { a: '1', b: '2' }, annotations: { x: 'y' } }, spec: { list: [1, 2] } };
  assert.deepEqual(strategicMergePatch(target, { metadata: { labels: { b: null, c: '3' } }, spec: { list: [3] } }), {
    metadata: { labels: { a: '1', c: '3' }, annotations: { x: 'y' } },
    spec: { list: [3] },
  });
  assert.deepEqual(strategicMergePatch(target, { metadata: { labels: { $patch: 'replace', z: '9' } } }), {
    metadata: { labels: { z: '9' }, annotations: { x: 'y' } },
    spec: { list: [1, 2] },
  });
  assert.deepEqual(strategicMergePatch(target, { metadata: { annotations: { $patch: 'delete' } } }), {
    metadata: { labels: { a: '1', b: '2' } },
    spec: { list: [1, 2] },
  });
  assert.throws(() => strategicMergePatch(target, { spec: { $retainKeys: ['list'] } }), (e: unknown) => e instanceof PatchError && e.malformed);
});

test('json patch: RFC 6902 operations', () => {
  const doc = { metadata: { name: 'p', annotations: { 'a/b': '1', 'c~d': '2' } }, list: ['x', 'y'] };
  const out = applyJsonPatch(doc, [
    { op: 'test', path: '/metadata/name', value: 'p' },
    { op: 'add', path: '/metadata/annotations/new', value: 'n' },
    { op: 'remove', path: '/metadata/annotations/a~1b' },
    { op: 'replace', path: '/metadata/annotations/c~0d', value: '3' },
    { op: 'add', path: '/list/1', value: 'inserted' },
    { op: 'add', path: '/list/-', value: 'end' },
    { op: 'copy', from: '/list/0', path: '/copied' },
    { op: 'move', from: '/copied', path: '/moved' },
    { op: 'replace', path: '/list/3', value: 'END' },
  ]);
  assert.deepEqual(out, {
    metadata: { name: 'p', annotations: { 'c~d': '3', new: 'n' } },
    list: ['x', 'inserted', 'y', 'END'],
    moved: 'x',
  });
  assert.deepEqual(doc.list, ['x', 'y'], 'input untouched');
});

test('json patch: failures are 422-type, malformed documents are 400-type', () => {
  const doc = { metadata: { resourceVersion: '5' } };
  const failed = (e: unknown) => e instanceof PatchError && !e.malformed;
  const malformed = (e: unknown) => e instanceof PatchError && e.malformed;
  assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/metadata/resourceVersion', value: '4' }]), failed);
  // as in kube-apiserver (evanphx json-patch v4): an absent key of an existing object tests equal
  // to null, a missing parent does not
  applyJsonPatch(doc, [{ op: 'test', path: '/metadata/missing', value: null }]);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/metadata/missing', value: 'x' }]), failed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/spec/missing', value: null }]), failed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/metadata/resourceVersion', value: null }]), failed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'remove', path: '/metadata/missing' }]), failed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/nope/deeper', value: 1 }]), failed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'replace', path: '/metadata/missing', value: 1 }]), failed);
  assert.throws(() => applyJsonPatch(doc, { op: 'add' }), malformed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), malformed);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/a' }]), malformed);
  // test compares JSON values structurally, key order aside
  applyJsonPatch({ a: { x: 1, y: [1, { z: 2 }] } }, [{ op: 'test', path: '/a', value: { y: [1, { z: 2 }], x: 1 } }]);
});
