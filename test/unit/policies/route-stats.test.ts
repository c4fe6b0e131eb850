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

test("gateway overhead: the engine's 5 s window keeps a slow second; admission's 1 s window lets it go", () => {
  const s = new RouteStats();
  // A cold start: the first answers take 40 ms of overhead; then nothing is answered (admission refuses).
  for (let i = 0; i < 100; i++) s.overhead(i * 5, 40);
  assert.ok(s.overheadHighMs(1900, 1) >= 40, '5 s window');
  assert.ok(s.overheadHighMs(1900, 1, 1000) >= 40, '1 s window: answers in the previous second still count');
  assert.ok(s.overheadHighMs(2100, 1) >= 40, '5 s window: still there');
  assert.equal(s.overheadHighMs(2100, 1, 1000), 1, '1 s window: nothing answered lately, the fallback');
});

test('observed p99 since a switch: whole seconds from it on, NaN with too few answers', () => {
  const s = new RouteStats();
  // Second 0-1: a breach (slow answers); a switch at 1.4 s; from second 2 on, fast answers.
  for (let i = 0; i < 100; i++) s.finish(i * 10, 'missed', 60);
  for (let i = 0; i < 100; i++) s.finish(1000 + i * 10, 'met', 30);
  for (let i = 0; i < 300; i++) s.finish(2000 + i * 3, 'met', 4);
  assert.ok(s.observedP99(2950, 5000) >= 60, 'the window still holds the breach');
  const since = s.observedP99Since(1400, 200);
  assert.ok(since >= 4 && since < 5, `only seconds that began after the switch (got ${since})`);
  assert.ok(s.observedP99Since(900, 200) >= 30, 'a switch at 0.9 s: second 1 is after it');
  assert.ok(Number.isNaN(s.observedP99Since(1400, 400)), 'fewer answers than asked for');
  assert.ok(Number.isNaN(s.observedP99Since(3000, 1)), 'nothing since');
});
