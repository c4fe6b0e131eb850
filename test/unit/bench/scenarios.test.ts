import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findCapacity, type Probe, scenarioPlan, scenarioRuns } from '../../../bench/scenarios.js';

test('scenario loads are multiples of the base rate', () => {
  const quick = scenarioPlan('steady', true);
  assert.deepEqual(scenarioRuns('steady', 200, quick), [
    { label: 'steady', load: { kind: 'constant', rate: 200, arrivals: 'poisson' }, durationS: 6, factor: 1 },
  ]);
  const step = scenarioRuns('step', 100, scenarioPlan('step', false))[0];
  assert.deepEqual(step?.load, { kind: 'step', low: 50, high: 300, atS: 10, forS: 10, arrivals: 'poisson' });
  const bursty = scenarioRuns('bursty', 100, scenarioPlan('bursty', false))[0];
  assert.deepEqual(bursty?.load, { kind: 'bursty', low: 60, high: 300, meanLowS: 5, meanHighS: 1 });
  const sweep = scenarioRuns('sweep', 100, scenarioPlan('sweep', false));
  assert.deepEqual(
    sweep.map((r) => [r.label, r.load.kind === 'constant' ? Math.round(r.load.rate) : 0]),
    [
      ['0.3x', 30],
      ['0.6x', 60],
      ['0.9x', 90],
      ['1.2x', 120],
      ['1.5x', 150],
      ['2x', 200],
    ],
  );
  assert.equal(scenarioPlan('sweep', true, 7).durationS, 7);
});

test('capacity search: doubles up to the knee, then bisects within the probe budget', async () => {
  const tried: number[] = [];
  const probe = async (rate: number): Promise<Probe> => {
    tried.push(rate);
    return { rate, ok: rate <= 730 };
  };
  const r = await findCapacity(probe, { startRate: 100, maxProbes: 10, minRate: 1, maxRate: 10_000, tolerance: 0.05 });
  assert.deepEqual(tried.slice(0, 5), [100, 200, 400, 800, 600]);
  assert.ok(r.capacity <= 730 && r.capacity >= 730 / 1.05, `capacity ${r.capacity}`);
  assert.ok(r.probes.length <= 10);
});

test('capacity search: halves down when the start rate fails; 0 when nothing passes; stops at the max rate', async () => {
  const down = await findCapacity(async (rate) => ({ rate, ok: rate <= 30 }), {
    startRate: 100,
    maxProbes: 4,
    minRate: 1,
    maxRate: 1000,
    tolerance: 0.1,
  });
  assert.deepEqual(
    down.probes.map((p) => p.rate),
    [100, 50, 25, 37.5],
  );
  assert.equal(down.capacity, 25);
  const none = await findCapacity(async (rate) => ({ rate, ok: false }), {
    startRate: 8,
    maxProbes: 10,
    minRate: 2,
    maxRate: 1000,
    tolerance: 0.1,
  });
  assert.equal(none.capacity, 0);
  assert.deepEqual(
    none.probes.map((p) => p.rate),
    [8, 4, 2],
  );
  const capped = await findCapacity(async (rate) => ({ rate, ok: true }), {
    startRate: 300,
    maxProbes: 10,
    minRate: 1,
    maxRate: 1000,
    tolerance: 0.1,
  });
  assert.equal(capped.capacity, 1000);
  assert.deepEqual(
    capped.probes.map((p) => p.rate),
    [300, 600, 1000],
  );
});
