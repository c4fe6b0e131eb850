// The queueing model the engine plans with: batch limits, formed batches, the waiting tail, plans.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { batchLimit, formedBatch, plan, type VariantModel, waitP99Ms } from '../../../policies/latency-model.js';
import { FAMILY } from './engine/fixtures.js';

describe('latency model', () => {
  test('batchLimit: the largest batch whose worst case (2 x S99 + overhead) fits the budget', () => {
    const large = FAMILY[3] as VariantModel;
    // S99(b) = 1.2 (0.3 + 1.2 b): b = 4 -> 6.12 ms, 2x + 0.5 = 12.74 <= 15; b = 8 -> 11.88, 2x = 24.26 > 15.
    assert.equal(batchLimit(large, 0.5, 15), 4);
    assert.equal(batchLimit(large, 0.5, 2), 0, 'not even one row fits');
    assert.equal(batchLimit(FAMILY[0] as VariantModel, 0.5, 25), 64);
  });

  test('formedBatch follows the arrival rate: ~1 at low load, larger as load grows, capped', () => {
    const cnn = FAMILY[2] as VariantModel;
    assert.equal(formedBatch(cnn, 10, 1, 64), 1);
    const mid = formedBatch(cnn, 20_000, 1, 64);
    assert.ok(mid > 1 && mid < 64, `batch ${mid}`);
    assert.equal(formedBatch(cnn, 1e7, 1, 16), 16);
  });

  test('waitP99Ms grows with utilisation and burstiness, and is unbounded at saturation', () => {
    assert.equal(waitP99Ms(0, 1, 1, 1, 0), 0);
    const a = waitP99Ms(0.5, 1, 1, 1, 0);
    const b = waitP99Ms(0.8, 1, 1, 1, 0);
    const c = waitP99Ms(0.8, 1, 1, 4, 0);
    assert.ok(a < b && b < c, `${a} ${b} ${c}`);
    assert.equal(waitP99Ms(1, 1, 1, 1, 0), Number.POSITIVE_INFINITY);
    assert.ok(waitP99Ms(0.5, 4, 1, 1, 0) < a, 'more servers, less waiting at the same utilisation');
  });

  test('plan refuses over the utilisation cap and over the latency budget, with a reason', () => {
    const ctx = {
      slots: 1,
      otherUtilisation: 0,
      burstiness: 1,
      overheadMs: 0.5,
      correction: 1,
      maxUtilisation: 0.8,
      budgetMs: 22.5,
    };
    const large = FAMILY[3] as VariantModel;
    assert.equal(plan(large, 100, ctx).ok, true);
    const over = plan(large, 2000, ctx);
    assert.equal(over.ok, false);
    assert.match(over.why, /utilisation/);
    const tight = plan(large, 100, { ...ctx, budgetMs: 3 });
    assert.equal(tight.ok, false);
  });
});
