// The fixed-policy baselines: the knobs static and aimd routes ask for (per variant queue, the smaller when shared,
// capped by the model), and AIMD's batch limit stepped after batches of its variant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RouteSchema } from '../../../core/config.js';
import { Metrics } from '../../../core/metrics.js';
import { AimdBaseline, fixedKnobs } from '../../../policies/aimd-baseline.js';
import { Router } from '../../../policies/router.js';
import { FakeRuntime } from './fake-runtime.js';

function routes(defs: Record<string, unknown>) {
  const runtime = new FakeRuntime('m', { a: 0.99, b: 0.9 });
  const parsed = Object.fromEntries(
    Object.entries(defs).map(([k, policy]) => [k, RouteSchema.parse({ model: 'm', slo: { p99Ms: 100 }, policy })]),
  );
  const router = new Router({
    runtime,
    clock: new ManualClock(0),
    metrics: new Metrics({ defaultMetrics: false }),
    routes: parsed,
  });
  return { runtime, router };
}

describe('fixed knobs', () => {
  const cases: {
    name: string;
    routes: Record<string, unknown>;
    aimd?: number;
    want: Record<string, [number, number]>;
  }[] = [
    { name: 'adaptive routes ask for nothing', routes: { r: 'adaptive' }, want: {} },
    {
      name: 'static: as configured',
      routes: { r: { static: { variant: 'a', maxBatch: 8, maxQueueDelayMs: 2 } } },
      want: { 'm/a': [8, 2] },
    },
    {
      name: "static: capped by the model's maxBatch (64)",
      routes: { r: { static: { variant: 'a', maxBatch: 500 } } },
      want: { 'm/a': [64, 0] },
    },
    {
      name: "aimd: AIMD's current limit, no delay",
      routes: { r: { aimd: { variant: 'b' } } },
      aimd: 5,
      want: { 'm/b': [5, 0] },
    },
    {
      name: 'two routes on one variant: the smaller of each knob',
      routes: {
        r: { static: { variant: 'a', maxBatch: 8, maxQueueDelayMs: 1 } },
        s: { static: { variant: 'a', maxBatch: 4, maxQueueDelayMs: 3 } },
      },
      want: { 'm/a': [4, 1] },
    },
    {
      name: 'static and aimd on one variant: the smaller, and no delay',
      routes: { r: { static: { variant: 'a', maxBatch: 8, maxQueueDelayMs: 2 } }, s: { aimd: { variant: 'a' } } },
      aimd: 3,
      want: { 'm/a': [3, 0] },
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const { router } = routes(c.routes);
      const got = fixedKnobs(router.routes.values(), () => c.aimd ?? 1);
      assert.deepEqual(
        Object.fromEntries([...got].map(([k, v]) => [k, [v.knobs.maxBatch, v.knobs.maxQueueDelayMs]])),
        c.want,
      );
    });
});

describe('AIMD baseline', () => {
  test('grows by one after a full batch within budget, cuts by 10% after a slow one, and sets the knobs', () => {
    const { runtime, router } = routes({ r: { aimd: { variant: 'b', maxBatch: 16 } } });
    // budget: (1 - margin 0.1) x 100 ms / 2 = 45 ms
    const aimd = new AimdBaseline({ runtime, routes: () => router.routes.values(), margin: 0.1 });
    assert.equal(aimd.limit('m', 'b'), 1);
    aimd.onBatch('m', 'b', 1, 45);
    aimd.onBatch('m', 'b', 2, 10);
    aimd.onBatch('m', 'b', 1, 10); // not full: no evidence for a bigger batch
    assert.equal(aimd.limit('m', 'b'), 3);
    for (let i = 0; i < 20; i++) aimd.onBatch('m', 'b', aimd.limit('m', 'b'), 10);
    assert.equal(aimd.limit('m', 'b'), 16, 'the ceiling');
    aimd.onBatch('m', 'b', 16, 46);
    assert.equal(aimd.limit('m', 'b'), 14);
    assert.deepEqual(runtime.knobsSet.at(-1), {
      model: 'm',
      variant: 'b',
      knobs: { maxBatch: 14, maxQueueDelayMs: 0 },
    });
    aimd.onBatch('m', 'a', 1, 1);
    assert.equal(aimd.limit('m', 'a'), 1, 'a variant no aimd route names is left alone');
    aimd.applyFixedKnobs();
    assert.deepEqual(runtime.knobsSet.at(-1), {
      model: 'm',
      variant: 'b',
      knobs: { maxBatch: 14, maxQueueDelayMs: 0 },
    });
  });
});
