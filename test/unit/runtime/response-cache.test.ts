// The response cache on a manual clock: keys, LRU order, the TTL, the byte bound and the amortised sweep of expired
// entries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import type { Tensor } from '../../../core/types.js';
import { cacheKey, ENTRY_OVERHEAD_BYTES, entryBytes, ResponseCache } from '../../../runtime/response-cache.js';

const t = (values: number[], name = 'x'): Tensor => ({
  name,
  datatype: 'FP32',
  shape: [1, values.length],
  data: Float32Array.from(values),
});

const limits = (maxEntries: number, ttlMs: number, maxBytes = 1 << 30) => ({ maxEntries, ttlMs, maxBytes });

test('cacheKey changes with any input byte, the variant revision, or the requested outputs', () => {
  const base = cacheKey('sha-a', [t([1, 2, 3])], undefined);
  assert.equal(cacheKey('sha-a', [t([1, 2, 3])], undefined), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 4])], undefined), base);
  assert.notEqual(cacheKey('sha-b', [t([1, 2, 3])], undefined), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 3])], ['label']), base);
  assert.notEqual(cacheKey('sha-a', [t([1, 2, 3], 'y')], undefined), base);
});

test('cacheKey is a SHA-256 digest (32 bytes), not SHA-1', () => {
  assert.equal(Buffer.from(cacheKey('sha-a', [t([1, 2, 3])], undefined), 'base64').byteLength, 32);
});

test('ResponseCache: a hit returns a private copy; least recently used entries are evicted first', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(limits(2, 1000), clock);
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
  assert.equal(c.evicted, 1);
});

test('ResponseCache: entries expire after ttlMs', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(limits(10, 100), clock);
  c.set('a', [t([1])]);
  clock.advance(99);
  assert.ok(c.get('a') !== undefined);
  clock.advance(2);
  assert.equal(c.get('a'), undefined);
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
});

test('ResponseCache: the byte bound evicts least recently used entries, whatever maxEntries allows', () => {
  const clock = new ManualClock();
  const answer = [t(new Array(256).fill(0.5))]; // 1 KiB of data
  const one = entryBytes('k0', answer);
  assert.ok(one > 1024 + ENTRY_OVERHEAD_BYTES, `${one} bytes counts the data and the overhead`);
  const c = new ResponseCache(limits(10_000_000, 60_000, 3 * one), clock);
  for (let i = 0; i < 10; i++) c.set(`k${i}`, answer);
  assert.equal(c.size, 3);
  assert.ok(c.bytes <= 3 * one);
  assert.deepEqual(
    ['k7', 'k8', 'k9'].map((k) => c.get(k) !== undefined),
    [true, true, true],
  );
  assert.equal(c.get('k6'), undefined);
  assert.equal(c.evicted, 7);
});

test('ResponseCache: an answer larger than maxBytes is not stored; storing a key again does not count it twice', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(limits(100, 60_000, 4096), clock);
  c.set('big', [t(new Array(2048).fill(1))]);
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
  assert.equal(c.evicted, 1);
  c.set('a', [t([1, 2])]);
  const once = c.bytes;
  c.set('a', [t([3, 4])]);
  assert.equal(c.bytes, once);
  assert.equal(c.size, 1);
});

test('ResponseCache: expired entries are swept by other accesses, without being asked for', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(limits(1000, 100), clock);
  for (let i = 0; i < 200; i++) c.set(`old${i}`, [t([i])]);
  clock.advance(101);
  // Accesses to other keys only: each looks at a couple of entries, so 200 entries are gone within ~100 of them.
  for (let i = 0; i < 110; i++) c.get('absent');
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
  assert.equal(c.expired, 200);
});

test('ResponseCache: the sweep keeps live entries, including ones refreshed after the sweep passed them', () => {
  const clock = new ManualClock();
  const c = new ResponseCache(limits(1000, 100), clock);
  for (let i = 0; i < 50; i++) c.set(`k${i}`, [t([i])]);
  clock.advance(60);
  c.set('fresh', [t([1])]);
  c.set('k0', [t([0])]); // stored again: a new expiry
  clock.advance(50); // the first 50 expired at 100; fresh and k0 live until 160
  for (let i = 0; i < 100; i++) c.get('absent');
  assert.equal(c.size, 2);
  assert.ok(c.get('fresh') !== undefined && c.get('k0') !== undefined);
});
