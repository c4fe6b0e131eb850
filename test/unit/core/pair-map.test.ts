import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PairMap } from '../../../core/pair-map.js';

test('PairMap keeps each pair apart, including pairs whose joined keys would collide', () => {
  const m = new PairMap<number>();
  m.set('a/b', 'c', 1);
  m.set('a', 'b/c', 2);
  m.set('a', 'x', 3);
  assert.equal(m.get('a/b', 'c'), 1);
  assert.equal(m.get('a', 'b/c'), 2);
  assert.equal(m.get('a', 'x'), 3);
  assert.equal(m.get('a', 'c'), undefined);
  assert.equal(m.get('b', 'x'), undefined);
  m.set('a', 'x', 4);
  assert.equal(m.get('a', 'x'), 4, 'set replaces');
  assert.deepEqual([...m.values()], [1, 2, 4], 'grouped by the first key, in insertion order');
});

test('PairMap deletes one pair and forgets a first key once it holds nothing', () => {
  const m = new PairMap<string>();
  m.set('model', 'v1', 'one');
  m.set('model', 'v2', 'two');
  assert.equal(m.delete('model', 'v1'), true);
  assert.equal(m.delete('model', 'v1'), false, 'already gone');
  assert.equal(m.delete('other', 'v1'), false);
  assert.deepEqual([...m.values()], ['two']);
  assert.equal(m.delete('model', 'v2'), true);
  assert.deepEqual([...m.values()], []);
  m.set('model', 'v3', 'three');
  assert.equal(m.get('model', 'v3'), 'three', 'a first key can come back');
});
