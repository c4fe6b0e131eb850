// The learned latency correction: how it moves, and when decide() learns it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, nextCorrection } from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('latency correction', () => {
  test('nextCorrection learns when observed p99 runs above the prediction, and decays back', () => {
    assert.ok(nextCorrection(1, 30, 10) > 1.5);
    assert.equal(nextCorrection(1, 10.5, 10), 1);
    assert.ok(nextCorrection(2, 5, 10) < 2);
    assert.ok(nextCorrection(3, 1000, 1) <= 3, 'bounded');
    // Against a prediction made with an earlier, smaller correction, the implied correction is that one times the
    // ratio: the current correction moves towards it, and the same old prediction does not compound it tick by tick.
    let c = 1;
    for (let tick = 0; tick < 20; tick++) c = nextCorrection(c, 13, 10, 1);
    assert.ok(Math.abs(c - 1.3) < 0.01, `converges on 1.3, not 3: ${c}`);
    assert.ok(nextCorrection(1.5, 13, 10, 1) < 1.5, 'an older, lower prediction pulls an over-learnt correction back');
  });

  test('the latency correction is learnt at a steady rate, not from the queue a surge builds before the engine reacts', () => {
    // Replicas busy, the observed p99 twice the last prediction: at a steady rate that is a model error to learn.
    const busy = { replicaUtilisation: 0.7 };
    const over = { observedP99Ms: 20, windowPrediction: { p99Ms: 10, correction: 1 }, state: settled(2) };
    const steady = decide(snapshot([routeInput({ ...over, rate: rate(300) })], busy));
    assert.ok((steady.states.get('r')?.correction ?? 1) > 1.2, `learnt: ${steady.states.get('r')?.correction}`);
    // The same breach with a 3x step in the last seconds (peak rate far over the 5 s average): not learnt.
    const surge = decide(snapshot([routeInput({ ...over, rate: rate(900, { slow: 300, peak: 900 }) })], busy));
    assert.equal(surge.states.get('r')?.correction, 1);
  });
});
