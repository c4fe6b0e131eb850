// windowPrediction: what the observed p99 of a window is checked against when the engine learns its correction.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { observedSinceSwitch, type Prediction, windowPrediction } from '../../../policies/engine-inputs.js';
import { RouteStats } from '../../../policies/route-stats.js';

describe('windowPrediction', () => {
  test('the highest prediction in force over the window, with the correction it was made with', () => {
    // Ticks every 250 ms: `large` predicted 20 ms until 9.0 s, then `cnn-small` 3 ms with a larger correction.
    const h: Prediction[] = [];
    for (let t = 0; t <= 12_000; t += 250)
      h.push({ atMs: t, p99Ms: t < 9000 ? 20 : 3, correction: t < 9000 ? 1 : 1.2 });
    // At 12 s the 5 s window starts at 7 s: `large`'s prediction is still in it.
    assert.deepEqual(windowPrediction(h, 12_000, 5000), { p99Ms: 20, correction: 1 });
    // At 15.1 s it starts at 10 s: only `cnn-small`'s.
    const later = [...h, { atMs: 15_100, p99Ms: 3, correction: 1.2 }];
    assert.deepEqual(windowPrediction(later, 15_100, 5000), { p99Ms: 3, correction: 1.2 });
  });

  test('the decision in force when the window began counts; non-finite predictions and an empty history do not', () => {
    const h: Prediction[] = [
      { atMs: 0, p99Ms: 18, correction: 1 },
      { atMs: 9_500, p99Ms: Number.POSITIVE_INFINITY, correction: 1 },
      { atMs: 9_750, p99Ms: 4, correction: 1 },
    ];
    // Window from 5 s: the 18 ms decision (made at 0) was in force then.
    assert.equal(windowPrediction(h, 10_000, 5000).p99Ms, 18);
    assert.ok(Number.isNaN(windowPrediction([], 10_000, 5000).p99Ms));
  });
});

describe('observedSinceSwitch', () => {
  test("the answers since the route's last switch, only while the observed window reaches back before it", () => {
    const s = new RouteStats();
    for (let i = 0; i < 300; i++) s.finish(2000 + i * 10, 'met', 5);
    assert.ok(observedSinceSwitch(s, 1500, 5000) >= 5);
    assert.ok(Number.isNaN(observedSinceSwitch(s, Number.NEGATIVE_INFINITY, 5000)), 'never switched');
    assert.ok(Number.isNaN(observedSinceSwitch(s, 1500, 1500 + 6001)), 'the window no longer reaches the switch');
    assert.ok(Number.isNaN(observedSinceSwitch(s, 4000, 4500)), 'too few answers yet');
  });
});
