import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketOf, bucketRange, Histogram } from '../../../bench/histogram.js';
import { mulberry32 } from '../../../core/prng.js';

/** The exact nearest-rank quantile of a list. */
function exact(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(1, Math.ceil(q * s.length)) - 1] as number;
}

test('an empty histogram reports NaN quantiles and null summaries', () => {
  const h = new Histogram();
  assert.ok(Number.isNaN(h.quantileMs(0.5)));
  assert.deepEqual(h.summary(), {
    count: 0,
    meanMs: null,
    p50Ms: null,
    p90Ms: null,
    p99Ms: null,
    p999Ms: null,
    maxMs: null,
  });
});

test('values below 256 us are exact: 1..100 us gives p50 50 us, p90 90 us, p99 99 us', () => {
  const h = new Histogram();
  for (let us = 1; us <= 100; us++) h.record(us / 1000);
  assert.equal(h.quantileMs(0.5), 0.05);
  assert.equal(h.quantileMs(0.9), 0.09);
  assert.equal(h.quantileMs(0.99), 0.099);
  assert.equal(h.quantileMs(1), 0.1);
  assert.equal(h.minMs, 0.001);
  assert.equal(h.maxMs, 0.1);
  assert.equal(h.meanMs, 0.0505);
});

test('nearest rank on a hand-computed case: 1, 2, 3, 4 ms -> p50 2, p75 3, p99 4 (the max, exactly)', () => {
  const h = new Histogram();
  for (const v of [4, 1, 3, 2]) h.record(v);
  const near = (a: number, b: number) => Math.abs(a - b) / b <= 0.004;
  assert.ok(near(h.quantileMs(0.5), 2), String(h.quantileMs(0.5)));
  assert.ok(near(h.quantileMs(0.75), 3), String(h.quantileMs(0.75)));
  assert.equal(h.quantileMs(0.99), 4);
  assert.ok(near(h.quantileMs(0), 1));
  assert.equal(h.meanMs, 2.5);
});

test('one slow request in a hundred: p99 is the 99th value, p99.9 the slow one', () => {
  const h = new Histogram();
  for (let i = 0; i < 99; i++) h.record(10);
  h.record(500);
  assert.ok(Math.abs(h.quantileMs(0.99) - 10) <= 0.04);
  assert.equal(h.quantileMs(0.999), 500);
  assert.equal(h.fractionAtOrBelow(10.03), 0.99);
});

test('quantiles stay within 0.4% of the exact nearest-rank value from 1 us to a minute', () => {
  const r = mulberry32(11);
  const values = Array.from({ length: 20_000 }, () => Math.round(10 ** (r() * 7.8)) / 1000); // 1 us .. ~63 s
  const h = new Histogram();
  for (const v of values) h.record(v);
  for (const q of [0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1]) {
    const want = exact(values, q);
    const got = h.quantileMs(q);
    assert.ok(Math.abs(got - want) <= Math.max(0.001, want * 0.004), `q=${q}: got ${got}, exact ${want}`);
  }
});

test('buckets: every value lies inside its bucket, indexes grow with the value, edges at powers of two', () => {
  let last = -1;
  for (let v = 0; v < 1 << 20; v += v < 4096 ? 1 : 97) {
    const b = bucketOf(v);
    const [lo, hi] = bucketRange(b);
    assert.ok(lo <= v && v <= hi, `${v} outside bucket ${b} [${lo}, ${hi}]`);
    assert.ok(b >= last);
    last = b;
  }
  for (const k of [8, 9, 16, 30, 35]) {
    const p = 2 ** k;
    assert.equal(bucketOf(p - 1) + 1, bucketOf(p), `edge 2^${k}`);
    assert.equal(bucketRange(bucketOf(p))[0], p);
  }
  // Width never exceeds 1/128 of the bucket's lower edge.
  for (const v of [300, 5000, 123_456, 9_999_999]) {
    const [lo, hi] = bucketRange(bucketOf(v));
    assert.ok((hi - lo + 1) / lo <= 1 / 128);
  }
});

test('add() merges two histograms as if every value had gone into one', () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 1; i <= 300; i++) {
    (i % 3 === 0 ? a : b).record(i * 0.37);
    all.record(i * 0.37);
  }
  a.add(b);
  assert.deepEqual(a.summary(), all.summary());
  a.reset();
  assert.equal(a.count, 0);
});
