// The SLO recorder: one outcome per request (met, missed, shed, dropped), malformed requests counted apart, the
// route's own statistics fed, cost and overhead from the runtime's result, and the late-answer alarm.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RouteSchema } from '../../../core/config.js';
import { Metrics } from '../../../core/metrics.js';
import { Router } from '../../../policies/router.js';
import { NO_RECORDS, type Outcome, RouteSloRecorder } from '../../../policies/slo-recorder.js';
import type { SubmitResult } from '../../../runtime/types.js';
import { FakeRuntime } from './fake-runtime.js';

function setup() {
  const clock = new ManualClock(1000);
  const metrics = new Metrics({ defaultMetrics: false });
  const router = new Router({
    runtime: new FakeRuntime('m', { large: 0.99 }),
    clock,
    metrics,
    routes: { r: RouteSchema.parse({ model: 'm', slo: { p99Ms: 50 } }) },
  });
  const late: string[] = [];
  const recorder = new RouteSloRecorder({
    routes: router.routes,
    metrics,
    clock,
    pricePerSlotMs: 0.001,
    onLate: (r) => late.push(r),
  });
  const count = async (name: 'sloRequests' | 'invalidRequests' | 'shed' | 'requests', labels: Record<string, string>) =>
    (await metrics[name].get()).values
      .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
      .reduce((a, v) => a + v.value, 0);
  return { recorder, router, metrics, late, count, stats: router.route('r').stats };
}

const result: SubmitResult = {
  outputs: [],
  model: 'm',
  variant: 'large',
  queueMs: 2,
  serviceMs: 8,
  computeMs: 6,
  inferMs: 5,
  batchRows: 2,
  replicaId: 'x',
};

describe('SLO recorder: one outcome per request', () => {
  const cases: { name: string; o: Omit<Outcome, 'route'>; outcome?: string; invalid?: boolean; late?: boolean }[] = [
    { name: 'a 200 within the target is met', o: { statusCode: 200, totalMs: 50, variant: 'large' }, outcome: 'met' },
    {
      name: 'a 200 past the target is missed, and alarms',
      o: { statusCode: 200, totalMs: 51, variant: 'large' },
      outcome: 'missed',
      late: true,
    },
    {
      name: 'an admission refusal is shed',
      o: { statusCode: 429, totalMs: 0, errorCode: 'SLOGATE_ERR_SHED' },
      outcome: 'shed',
    },
    {
      name: 'not ready is shed',
      o: { statusCode: 503, totalMs: 0, errorCode: 'SLOGATE_ERR_NOT_READY' },
      outcome: 'shed',
    },
    {
      name: 'a full queue is dropped',
      o: { statusCode: 503, totalMs: 1, errorCode: 'SLOGATE_ERR_QUEUE_FULL' },
      outcome: 'dropped',
    },
    {
      name: 'a client gone is dropped',
      o: { statusCode: 499, totalMs: 1, errorCode: 'SLOGATE_ERR_CANCELLED' },
      outcome: 'dropped',
    },
    {
      name: 'a replica failure is missed',
      o: { statusCode: 500, totalMs: 1, errorCode: 'SLOGATE_ERR_INTERNAL' },
      outcome: 'missed',
    },
    {
      name: "a malformed request is the client's mistake: counted apart, no outcome",
      o: { statusCode: 400, totalMs: 0, errorCode: 'SLOGATE_ERR_INVALID_JSON' },
      invalid: true,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const s = setup();
      s.recorder.record({ route: 'r', ...c.o });
      const outcomes = { met: 0, missed: 0, shed: 0, dropped: 0 };
      for (const k of Object.keys(outcomes) as (keyof typeof outcomes)[])
        outcomes[k] = await s.count('sloRequests', { route: 'r', outcome: k });
      const want = { met: 0, missed: 0, shed: 0, dropped: 0, ...(c.outcome ? { [c.outcome]: 1 } : {}) };
      assert.deepEqual(outcomes, want);
      assert.equal(await s.count('invalidRequests', { route: 'r' }), c.invalid === true ? 1 : 0);
      assert.equal(await s.count('requests', { route: 'r' }), c.invalid === true ? 0 : 1);
      const t = s.stats.totals;
      assert.deepEqual(
        { met: t.met, missed: t.missed, shed: t.shed, dropped: t.dropped },
        { ...{ met: 0, missed: 0, shed: 0, dropped: 0 }, ...(c.outcome ? { [c.outcome]: 1 } : {}) },
      );
      assert.deepEqual(s.late, c.late === true ? ['r'] : []);
      if (c.outcome === 'shed' || c.outcome === 'dropped')
        assert.equal(await s.count('shed', { route: 'r', code: c.o.errorCode as string }), 1);
    });
  }

  test('a 200 with its result adds cost per row; an unknown route records nothing', async () => {
    const s = setup();
    s.recorder.record({ route: 'r', statusCode: 200, totalMs: 10, variant: 'large', result });
    const cost = (await s.metrics.cost.get()).values.find((v) => v.labels.route === 'r')?.value;
    assert.equal(cost, (8 / 2) * 0.001);
    s.recorder.record({ route: 'nope', statusCode: 200, totalMs: 10 });
    assert.equal(await s.count('requests', {}), 1);
  });

  test('a best-effort answer is a miss that stays out of the latency the engine plans with, and raises no alarm', async () => {
    const s = setup();
    for (let i = 0; i < 30; i++)
      s.recorder.record({ route: 'r', statusCode: 200, totalMs: 90, variant: 'large', result, bestEffort: true });
    assert.equal(await s.count('sloRequests', { route: 'r', outcome: 'missed' }), 30);
    assert.equal(s.stats.totals.missed, 30);
    assert.ok(Number.isNaN(s.stats.observedP99(1000)), 'no latency sample');
    assert.deepEqual(s.late, []);
  });

  test('answers alternating variants and revisions are each counted under their own labels', async () => {
    const s = setup();
    const sequence: [string | undefined, 'candidate' | undefined][] = [
      ['large', undefined],
      ['large', undefined],
      ['small', undefined],
      ['large', 'candidate'],
      ['large', undefined],
      ['small', 'candidate'],
      [undefined, undefined],
      ['large', undefined],
    ];
    for (const [variant, revision] of sequence)
      s.recorder.record({ route: 'r', statusCode: 200, totalMs: 10, variant, result: { ...result, revision } });
    const want = new Map<string, number>();
    for (const [variant, revision] of sequence) {
      const key = `${variant === undefined ? 'none' : `m/${variant}`} ${revision ?? 'active'}`;
      want.set(key, (want.get(key) ?? 0) + 1);
    }
    for (const [key, n] of want) {
      const [variant, revision] = key.split(' ') as [string, string];
      assert.equal(await s.count('requests', { route: 'r', variant, revision, code: '2xx' }), n, key);
    }
    assert.equal(await s.count('requests', {}), sequence.length);
  });

  test('NO_RECORDS records nothing', async () => {
    const s = setup();
    NO_RECORDS.record({ route: 'r', statusCode: 200, totalMs: 10, variant: 'large', result });
    assert.equal(await s.count('requests', {}), 0);
    assert.equal(s.stats.totals.met, 0);
  });
});
