import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyProfiles, MAX_AGE_MS } from '../../../runtime/latency-profile.js';

const points = [
  { rows: 1, p50Ms: 1, p99Ms: 2, samples: 50 },
  { rows: 4, p50Ms: 2.5, p99Ms: 4, samples: 50 },
  { rows: 8, p50Ms: 4.5, p99Ms: 7, samples: 50 },
];

test('service time interpolates between profiled batch sizes and extrapolates past the last', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  assert.equal(p.serviceMs('m', 'v', 1, 'p50'), 1);
  assert.equal(p.serviceMs('m', 'v', 2, 'p50'), 1.5);
  assert.equal(p.serviceMs('m', 'v', 6, 'p99'), 5.5);
  assert.equal(p.serviceMs('m', 'v', 12, 'p50'), 6.5, 'slope of the last segment: 0.5 ms per row');
});

test('online observations slower than the profile correct the estimate upward', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 64; i++) p.observe('m', 'v', 4, 5); // twice the profiled 2.5 ms
  assert.equal(p.serviceMs('m', 'v', 4, 'p50'), 5);
  assert.ok(p.serviceMs('m', 'v', 8, 'p50') > 8.9, 'the correction applies to every batch size');
  const snap = p.snapshot().find((s) => s.variant === 'v');
  assert.equal(snap?.correction.p50, 2);
});

test('a few observations do not move the estimate (at least 16 are needed)', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 5; i++) p.observe('m', 'v', 4, 50);
  assert.equal(p.serviceMs('m', 'v', 4, 'p50'), 2.5);
});

test('without a sweep, observations become the profile (the first, cold batch of a size is ignored)', () => {
  const p = new LatencyProfiles({ defaultMsPerRow: 3 });
  assert.equal(p.serviceMs('m', 'w', 2, 'p50'), 6, 'default before anything is known');
  p.observe('m', 'w', 4, 40);
  assert.equal(p.serviceMs('m', 'w', 4, 'p50'), 12, 'the cold first run is not taken as the profile');
  p.observe('m', 'w', 4, 2);
  p.observe('m', 'w', 3, 1.5); // 3 rows scale to the 4-row bucket: 2 ms
  p.observe('m', 'w', 4, 2);
  assert.equal(p.serviceMs('m', 'w', 4, 'p50'), 2);
});

test('by default nothing is assumed before measurements (no drops on a guess)', () => {
  assert.equal(new LatencyProfiles().serviceMs('m', 'x', 8, 'p99'), 0);
});

test('a full window of real batches replaces a sweep p99 inflated by one-off stalls (the observed tail wins)', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', [
    { rows: 1, p50Ms: 1, p99Ms: 100, samples: 40 },
    { rows: 8, p50Ms: 2, p99Ms: 110, samples: 40 },
  ]);
  assert.equal(p.serviceMs('m', 'v', 1, 'p99'), 100, 'the sweep stands while little is observed');
  for (let i = 0; i < 99; i++) p.observe('m', 'v', 1, 1.2);
  assert.equal(p.serviceMs('m', 'v', 1, 'p99'), 120, 'under 100 samples: the sweep tail, scaled by the median');
  for (let i = 0; i < 16; i++) p.observe('m', 'v', 1, 1.2); // the next refresh comes after 16 more
  const p99 = p.serviceMs('m', 'v', 1, 'p99');
  assert.ok(p99 < 2, `observed tail ${p99} ms`);
  assert.ok(p.serviceMs('m', 'v', 8, 'p99') < 3);
});

test('online evidence ages out: a variant nobody uses returns to its sweep after MAX_AGE_MS', () => {
  let now = 0;
  const p = new LatencyProfiles({ now: () => now });
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 64; i++) p.observe('m', 'v', 1, 8); // a stalled second: 8x the sweep
  assert.equal(p.serviceMs('m', 'v', 1, 'p50'), 4, 'clamped at 4x');
  now = MAX_AGE_MS / 2;
  assert.equal(p.serviceMs('m', 'v', 1, 'p50'), 4, 'still fresh');
  now = MAX_AGE_MS + 1;
  assert.equal(p.serviceMs('m', 'v', 1, 'p50'), 1, 'aged out: the sweep again');
  assert.equal(p.serviceMs('m', 'v', 1, 'p99'), 2);
});

test("a caller's reading of the clock stands in for the profile's own", () => {
  const p = new LatencyProfiles({ now: () => 0 });
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 64; i++) p.observe('m', 'v', 1, 8);
  assert.equal(p.serviceMs('m', 'v', 1, 'p50', MAX_AGE_MS / 2), 4, 'still fresh at the time given');
  assert.equal(p.hasPoints('m', 'v', MAX_AGE_MS + 1), true);
  assert.equal(p.serviceMs('m', 'v', 1, 'p50', MAX_AGE_MS + 1), 1, 'aged out at the time given');
});

test('two stalls among hundreds of batches do not become the p99', () => {
  let now = 0;
  const p = new LatencyProfiles({ now: () => now });
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 300; i++) {
    now += 5;
    p.observe('m', 'v', 1, i === 100 || i === 200 ? 12 : 1.1);
  }
  const p99 = p.serviceMs('m', 'v', 1, 'p99');
  assert.ok(p99 < 1.5, `p99 ${p99} ms`);
  // ... but a tail that is really there (3% of batches) is.
  for (let i = 0; i < 300; i++) {
    now += 5;
    p.observe('m', 'v', 1, i % 33 === 0 ? 12 : 1.1);
  }
  assert.ok(p.serviceMs('m', 'v', 1, 'p99') > 5);
});

test('a cold start: a few slow batches among the first hundred do not become the tail', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  // 40 batches, 3 of them 10x slow (contention in the first second of load): the median is the evidence until the
  // tail has a hundred samples; the sweep's tail shape (p99 2 ms at one row) is scaled by it.
  for (let i = 0; i < 40; i++) p.observe('m', 'v', 1, i % 13 === 0 ? 10 : 1.1);
  const p99 = p.serviceMs('m', 'v', 1, 'p99');
  assert.ok(Math.abs(p99 - 2.2) < 1e-9, `p99 ${p99} ms`);
  // With a hundred and more, a real tail (7.5% of batches) counts.
  for (let i = 0; i < 80; i++) p.observe('m', 'v', 1, i % 13 === 0 ? 10 : 1.1);
  assert.ok(p.serviceMs('m', 'v', 1, 'p99') > 5);
});

test("a new revision's points replace the old and forget the old revision's correction", () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  for (let i = 0; i < 64; i++) p.observe('m', 'v', 4, 5);
  assert.equal(p.serviceMs('m', 'v', 4, 'p50'), 5);
  p.replacePoints(
    'm',
    'v',
    points.map((x) => ({ ...x, p50Ms: x.p50Ms * 2, p99Ms: x.p99Ms * 2 })),
  );
  assert.equal(p.serviceMs('m', 'v', 4, 'p50'), 5, 'the new profile as measured, not corrected again');
  assert.equal(p.snapshot().find((s) => s.variant === 'v')?.correction.p50, 1);
});

test('the online tail is the 99th percentile of the window, and a NaN service time is not an observation', () => {
  const p = new LatencyProfiles();
  p.setPoints('m', 'v', points);
  // 200 batches at 1x..2x the profile in a shuffled order, then NaNs that must not count.
  const ratios = Array.from({ length: 200 }, (_, i) => 1 + i / 199);
  for (let i = 0; i < ratios.length; i++) p.observe('m', 'v', 4, 2.5 * (ratios[(i * 7) % 200] as number));
  for (let i = 0; i < 50; i++) p.observe('m', 'v', 4, Number.NaN);
  const snap = p.snapshot().find((s) => s.variant === 'v');
  assert.equal(snap?.correction.samples, 200);
  assert.ok(Math.abs((snap?.correction.p50 ?? 0) - (ratios[99] as number)) < 1e-12, 'the 100th of 200');
  assert.ok(Math.abs((snap?.correction.p99 ?? 0) - (ratios[197] as number)) < 1e-12, 'the 198th of 200');
});
