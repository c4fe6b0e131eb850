// windowPrediction: what the observed p99 of a window is checked against when the engine learns its correction;
// the gateway's utilisation as the engine reads it (inference only).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_ENGINE_PARAMS, GATEWAY_SATURATED } from '../../../policies/engine/index.js';
import {
  EngineInputs,
  inferenceUtilisation,
  observedSinceSwitch,
  type Prediction,
  windowPrediction,
} from '../../../policies/engine-inputs.js';
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

describe("the gateway's utilisation counts inference only", () => {
  test("other requests' share of the window is left out, within 0..1", () => {
    assert.equal(inferenceUtilisation(0.95, 250, 200), 0.95 - 0.8);
    assert.equal(inferenceUtilisation(0.5, 250, 0), 0.5);
    assert.equal(inferenceUtilisation(0.3, 250, 250), 0, 'never below 0');
    assert.equal(inferenceUtilisation(0.9, 0, 100), 0.9, 'no window yet: the whole loop');
  });

  test('a loop saturated by a flood of other requests does not read as a saturated gateway', () => {
    const clock = new ManualClock(0);
    let otherMs = 0;
    const inputs = new EngineInputs({
      runtime: {
        models: new Map(),
        serviceTable: () => ({ p50: new Float64Array(), p99: new Float64Array() }),
        queueStats: () => [],
        readySlots: 1,
      },
      routes: () => [],
      clock,
      params: DEFAULT_ENGINE_PARAMS,
      pricePerSlotMs: 0,
      gatewayUtilisation: () => 0.97,
      otherWorkMs: () => {
        const ms = otherMs;
        otherMs = 0;
        return ms;
      },
      admissionOverhead: () => {},
    });
    const view = { decision: () => undefined, state: () => undefined, aimdLimit: () => 1 };
    inputs.startMeasuring();
    clock.advance(250);
    otherMs = 200; // the status page, /metrics and 404s took 80% of the tick
    const flooded = inputs.snapshot(view).gatewayUtilisation;
    assert.ok(flooded < GATEWAY_SATURATED, `read ${flooded}`);
    clock.advance(250);
    const inference = inputs.snapshot(view).gatewayUtilisation;
    assert.ok(inference >= GATEWAY_SATURATED, 'inference saturating the loop still reads as saturation');
  });
});

describe("a rollout's shadow share in the snapshot", () => {
  test('a variant in shadow carries its share as extra work; the others none', () => {
    const variants = new Map([
      ['small', { name: 'small', accuracy: 0.9 }],
      ['large', { name: 'large', accuracy: 0.99 }],
    ]);
    const model = { name: 'm', config: { maxBatch: 8 }, variants };
    const inputs = new EngineInputs({
      runtime: {
        models: new Map([['m', model]]) as never,
        serviceTable: () => ({ p50: new Float64Array(9), p99: new Float64Array(9) }),
        queueStats: () => [],
        readySlots: 1,
      },
      routes: () => [],
      clock: new ManualClock(0),
      params: DEFAULT_ENGINE_PARAMS,
      pricePerSlotMs: 0,
      shadowShare: (m, v) => (m === 'm' && v === 'large' ? 0.05 : 0),
      admissionOverhead: () => {},
    });
    const snap = inputs.snapshot({ decision: () => undefined, state: () => undefined, aimdLimit: () => 1 });
    assert.equal(snap.variants.get('m')?.get('large')?.extraWorkShare, 0.05);
    assert.equal(snap.variants.get('m')?.get('small')?.extraWorkShare, undefined);
  });
});
