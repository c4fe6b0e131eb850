import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import type { Tensor } from '../../../core/types.js';
import { cacheKey, ResponseCache } from '../../../runtime/response-cache.js';

const t = (values: number[], name = 'x'): Tensor => ({
  name,
  datatype: 'FP32',
  shape: [1, values.length],
  data: Float32Array.from(values),
});

test('cacheKey changes with any input byte, the variant revision, or the requested outputs', () => {
  const base = cacheKey('sha-a', [t([1, 2, 3])], undefined);
  assert.equal(cacheKey('sha-a', [t([1, 2, 3])], undefined), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 4])], undefined), base);
  assert.notEqual(cacheKey('sha-b', [t([1, 2, 3])], undefined), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 3])], ['label']), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 3], 'y')], undefined), base);
});

test('ResponseCache: a hit returns a private copy; least recently used entries are evicted first', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(2, 1000, clock);
  c.set('a', [t([1])]);
  c.set('b', [t([2])]);
  const hit = c.get('a');
  assert.deepEqual(Array.from(hit?.[0]?.data as Float32Array), [1]);
  (hit?.[0]?.data as Float32Array)[0] = 99;
  assert.deepEqual(
    Array.from(c.get('a')?.[0]?.data as Float32Array),
    [1],
    'the cached value is not shared with callers',
  );
  c.set('c', [t([3])]); // evicts b (a was used more recently)
  assert.equal(c.get('b'), undefined);
  assert.ok(c.get('a') !== undefined && c.get('c') !== undefined);
  assert.equal(c.size, 2);
  assert.equal(c.misses, 1);
});

test('ResponseCache: entries expire after ttlMs', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(10, 100, clock);
  c.set('a', [t([1])]);
  clock.advance(99);
  assert.ok(c.get('a') !== undefined);
  clock.advance(2);
  assert.equal(c.get('a'), undefined);
  assert.equal(c.size, 0);
});
