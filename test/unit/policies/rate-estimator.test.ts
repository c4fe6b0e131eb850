// RateEstimator: the instant rate of a short tick (an alarm's) is trusted only when its count is significant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIN_INSTANT_MS, RateEstimator, type RateSnapshot, RECENT_PEAK_MS } from '../../../policies/rate-estimator.js';

/** An estimator fed `rps` evenly for `seconds`, snapshotted every 250 ms (as the engine ticks). */
function settledAt(rps: number, seconds = 20): { est: RateEstimator; nowMs: number; last: RateSnapshot } {
  const est = new RateEstimator();
  let now = 0;
  let last = est.snapshot(now);
  const gap = 1000 / rps;
  let next = gap;
  for (let tick = 250; tick <= seconds * 1000; tick += 250) {
    while (next <= tick) {
      est.arrive(next);
      next += gap;
    }
    last = est.snapshot(tick);
    now = tick;
  }
  return { est, nowMs: now, last };
}

describe('RateEstimator', () => {
  test('a steady rate reads as itself on every horizon', () => {
    const { last } = settledAt(400);
    for (const v of [last.instant, last.fast, last.slow]) assert.ok(Math.abs(v - 400) < 40, `rate ${v}`);
  });

  test('a short tick with a clump that is not significant does not read as a surge', () => {
    const { est, nowMs } = settledAt(440);
    // 12 arrivals in 15 ms: 800 req/s taken at face value, but within the noise of ~6.6 expected.
    for (let i = 0; i < 12; i++) est.arrive(nowMs + i);
    const s = est.snapshot(nowMs + 15);
    assert.ok(15 < MIN_INSTANT_MS);
    assert.ok(s.instant < 600, `instant ${s.instant}`);
  });

  test('a short tick with a significant surge reads at face value', () => {
    const { est, nowMs } = settledAt(50);
    // 24 arrivals in 45 ms at a planned 50 req/s (2.25 expected): a real step.
    for (let i = 0; i < 24; i++) est.arrive(nowMs + 1 + i * 1.8);
    const s = est.snapshot(nowMs + 45);
    assert.ok(Math.abs(s.instant - (24 * 1000) / 45) < 1e-6, `instant ${s.instant}`);
  });
});

test('the recent peak forgets a surge after RECENT_PEAK_MS; the 5 s peak still holds it', () => {
  const e = new RateEstimator();
  let now = 0;
  e.snapshot(now);
  const tick = (arrivals: number) => {
    for (let i = 0; i < arrivals; i++) e.arrive(now + (250 * i) / arrivals);
    now += 250;
    return e.snapshot(now);
  };
  for (let i = 0; i < 12; i++) tick(250); // 1000 req/s for 3 s
  let s = tick(25);
  for (let i = 0; i <= RECENT_PEAK_MS / 250; i++) s = tick(25); // 100 req/s, the window past the edge
  assert.ok(s.peak >= 900, `peak ${s.peak}`);
  assert.ok((s.recentPeak ?? Number.NaN) <= 110, `recent peak ${s.recentPeak}`);
});

describe('recent burstiness', () => {
  /** Arrivals at `rps` from `fromMs` for `ms`, in clumps of `clump` at once (1: evenly spaced). */
  function feed(est: RateEstimator, fromMs: number, ms: number, rps: number, clump: number): RateSnapshot {
    const gap = (1000 * clump) / rps;
    let last = est.snapshot(fromMs);
    let next = fromMs + gap;
    for (let tick = fromMs + 250; tick <= fromMs + ms; tick += 250) {
      for (; next <= tick; next += gap) for (let k = 0; k < clump; k++) est.arrive(next);
      last = est.snapshot(tick);
    }
    return last;
  }

  test('a second after clumped arrivals end, the recent burstiness is the even load while the average still holds them', () => {
    const est = new RateEstimator();
    const clumped = feed(est, 0, 3000, 600, 60);
    assert.ok(clumped.burstiness > 5, `clumped: ${clumped.burstiness}`);
    assert.ok((clumped.recentBurstiness ?? 0) > 5, `clumped, recent: ${clumped.recentBurstiness}`);
    const after = feed(est, 3000, 1500, 100, 1);
    assert.ok(after.burstiness > 3, `the average still holds the clumps: ${after.burstiness}`);
    assert.ok((after.recentBurstiness ?? 99) < 1, `the last second alone is even: ${after.recentBurstiness}`);
  });

  test('until a second of bins is seen, the recent burstiness is the average one', () => {
    const est = new RateEstimator();
    const first = feed(est, 0, 500, 100, 1);
    assert.equal(first.recentBurstiness, first.burstiness);
  });
});
