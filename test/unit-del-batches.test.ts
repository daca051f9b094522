// Which attachments' DELs may overlap: runs of in-process neighbours, never anything exec'd.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { delBatches } from '../src/delegates/teardown';

const inProcess = (name: string) => name.startsWith('ours');

test('neighbours run in-process form one batch; an exec\'d attachment splits them and runs alone', () => {
  assert.deepEqual(delBatches(['ours3', 'ours2', 'foreign1', 'ours0'], inProcess), [['ours3', 'ours2'], ['foreign1'], ['ours0']]);
  assert.deepEqual(delBatches(['foreign2', 'foreign1', 'foreign0'], inProcess), [['foreign2'], ['foreign1'], ['foreign0']]);
  assert.deepEqual(delBatches(['ours2', 'ours1', 'ours0'], inProcess), [['ours2', 'ours1', 'ours0']]);
  assert.deepEqual(delBatches([], inProcess), []);
});

test('every attachment lands in exactly one batch, in the order given', () => {
  const order = ['ours5', 'foreign4', 'foreign3', 'ours2', 'ours1', 'foreign0'];
  assert.deepEqual(delBatches(order, inProcess).flat(), order);
});
