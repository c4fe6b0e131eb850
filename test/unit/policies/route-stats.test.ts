import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouteStats } from '../../../policies/route-stats.js';

test('gateway overhead: p90 of the recent answers, the fallback with fewer than 20', () => {
  const s = new RouteStats();
  for (let i = 0; i < 19; i++) s.overhead(100 + i, 2);
  assert.equal(s.overheadHighMs(200, 1), 1, 'too few samples: the fallback');
  for (let i = 0; i < 81; i++) s.overhead(200 + i, i < 71 ? 2 : 40);
  const v = s.overheadHighMs(300, 1);
  assert.ok(v >= 2 && v < 2.2, `p90 of 90 x 2 ms and 10 x 40 ms is ~2 ms (got ${v})`);
});

test('gateway overhead: stale once nothing was answered for a second, so one slow second cannot hold admission shut', () => {
  const s = new RouteStats();
  // A cold start: the first answers take 40 ms of overhead; then admission refuses everything (no more answers).
  for (let i = 0; i < 100; i++) s.overhead(i * 5, 40);
  assert.ok(s.overheadHighMs(900, 1) >= 40, 'fresh: the slow second counts');
  assert.ok(s.overheadHighMs(1900, 1) >= 40, 'answers in the previous second still count');
  assert.equal(s.overheadHighMs(2100, 1), 1, 'no answer since the previous second: stale, the fallback');
  // Answers resume, fast: within the 2 s window the old second still dominates the p90 until it ages out.
  for (let i = 0; i < 200; i++) s.overhead(2100 + i * 2, 1.5);
  assert.ok(s.overheadHighMs(2500, 1) >= 40, 'a third of the window is still the slow second');
  const v = s.overheadHighMs(3100, 1);
  assert.ok(v < 2, `once it ages out (2 s), the fresh answers make the p90 (got ${v})`);
});
