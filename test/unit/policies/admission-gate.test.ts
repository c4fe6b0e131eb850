// The admission gate on a fake runtime and the manual clock: which rule refuses first, the Retry-After each refusal
// carries, what bypasses admission, what each stage of a request runs, the deadline it computes, and when it asks the
// control loop to decide at once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RouteSchema } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { Metrics } from '../../../core/metrics.js';
import { type Admission, AdmissionGate, type GateQuery } from '../../../policies/admission-gate.js';
import { Router } from '../../../policies/router.js';
import { decision, FakeRuntime } from './fake-runtime.js';

const NOW = 1000;
const P99 = 50;

function setup(route: Record<string, unknown> = {}) {
  const clock = new ManualClock(NOW);
  const runtime = new FakeRuntime('m', { large: 0.99, small: 0.95 });
  runtime.p99Ms.set('large', 15).set('small', 5);
  const router = new Router({
    runtime,
    clock,
    metrics: new Metrics({ defaultMetrics: false }),
    routes: { r: RouteSchema.parse({ model: 'm', slo: { p99Ms: P99 }, ...route }) },
  });
  const decisions = new Map<string, Decision>();
  const alarms: string[] = [];
  const gate = new AdmissionGate({
    runtime,
    clock,
    current: (r) => decisions.get(r),
    alarm: (r) => alarms.push(r),
  });
  const r = router.route('r');
  const check = (q: Partial<GateQuery> = {}): Admission =>
    gate.check({ route: r, arrivalMs: NOW, stage: 'whole', pinned: false, ...q });
  /** Publishes a decision as the control loop does (its token bucket included). */
  const publish = (d: Decision) => {
    decisions.set('r', d);
    gate.publish('r', d, clock.now(), runtime.readySlots);
  };
  return { clock, runtime, gate, decisions, alarms, r, check, publish };
}

function refusal(a: Admission): { message: string; retryAfterMs: number | undefined; code: string } | undefined {
  return a.admitted
    ? undefined
    : { message: a.refusal.message, retryAfterMs: a.refusal.retryAfterMs, code: a.refusal.code };
}

describe('admission gate: the rules, in order, and their Retry-After', () => {
  interface Case {
    name: string;
    /** The decision's admission rate (Infinity: none) and predicted p99. */
    admissionRps?: number;
    predictedP99Ms?: number;
    underPressure?: boolean;
    priority?: number;
    /** Requests already let through the token bucket this instant. */
    taken?: number;
    backlogMs?: number;
    /** Backlog of the requests due no later than this one (EDF runs those first); the whole backlog by default. */
    backlogBeforeMs?: number;
    overheadMs?: number;
    timeoutMs?: number;
    /** undefined: admitted; else the refusal's message (pattern) and Retry-After (ms). */
    want?: { message: RegExp; retryAfterMs: number };
  }
  const cases: Case[] = [
    { name: 'nothing in the way: admitted' },
    {
      name: '1. a route shed entirely is refused first (whatever else would refuse)',
      admissionRps: 0,
      underPressure: true,
      priority: -1,
      backlogMs: 1000,
      want: { message: /shed entirely/, retryAfterMs: 1000 },
    },
    {
      name: '2. sheddable traffic under pressure, before the token bucket',
      admissionRps: 2,
      taken: 4,
      underPressure: true,
      priority: -1,
      want: { message: /sheddable request \(priority -1\) refused under pressure/, retryAfterMs: 1000 },
    },
    { name: 'sheddable traffic without pressure: admitted', priority: -1 },
    { name: 'pressure, priority 0: admitted', underPressure: true },
    { name: 'token bucket: its burst (4) passes', admissionRps: 2, taken: 3 },
    {
      name: '3. token bucket empty, before the deadline check: Retry-After = time to the next token',
      admissionRps: 2,
      taken: 4,
      backlogMs: 1000,
      want: { message: /over its admission rate of 2\.0 req\/s/, retryAfterMs: 500 },
    },
    {
      name: 'token bucket empty at a high rate: Retry-After at least 100 ms',
      admissionRps: 50,
      taken: 4,
      want: { message: /over its admission rate/, retryAfterMs: 100 },
    },
    {
      name: 'a route nothing can serve admits its probe past the deadline check',
      admissionRps: 2,
      predictedP99Ms: Number.POSITIVE_INFINITY,
      backlogMs: 1000,
    },
    {
      name: '4. predicted completion misses the deadline: Retry-After = the backlog',
      backlogMs: 300,
      want: { message: /misses the deadline \(50\.0 ms\) even on the fastest variant/, retryAfterMs: 300 },
    },
    {
      name: 'deadline miss on a short backlog: Retry-After at least 100 ms',
      backlogMs: 46,
      want: { message: /predicted completion in 51\.0 ms misses/, retryAfterMs: 100 },
    },
    { name: 'the fastest variant (incl. the fallback) fits: backlog 40 + 5 ms <= 50 ms', backlogMs: 40, overheadMs: 5 },
    {
      name: 'overhead counts: backlog 40 + 5 ms + 6 ms overhead > 50 ms',
      backlogMs: 40,
      overheadMs: 6,
      want: { message: /misses the deadline/, retryAfterMs: 100 },
    },
    {
      name: 'overhead counts at most half the target (event-loop time other requests took sheds no inference): 5 + 25 ms',
      overheadMs: 60,
    },
    {
      name: 'the capped overhead still counts with the backlog: 20 + 5 + 25 ms > 50 ms',
      backlogMs: 21,
      overheadMs: 60,
      want: { message: /predicted completion in 51\.0 ms misses/, retryAfterMs: 100 },
    },
    {
      name: 'EDF: only the backlog due first counts when the whole looks too long',
      backlogMs: 400,
      backlogBeforeMs: 10,
    },
    {
      name: 'the timeout tightens the deadline: backlog 10 + 5 ms > 12 ms',
      backlogMs: 10,
      timeoutMs: 12,
      want: { message: /misses the deadline \(12\.0 ms\)/, retryAfterMs: 100 },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const s = setup();
      s.gate.setOverhead('r', c.overheadMs ?? 0);
      s.gate.underPressure = c.underPressure ?? false;
      s.publish(
        decision(
          'r',
          { large: 1 },
          {
            admissionRps: c.admissionRps ?? Number.POSITIVE_INFINITY,
            predictedP99Ms: c.predictedP99Ms ?? 10,
            fallbackVariant: 'small',
          },
        ),
      );
      for (let i = 0; i < (c.taken ?? 0); i++) assert.ok(s.check().admitted, `request ${i} within the burst`);
      s.runtime.backlog = { totalMs: c.backlogMs ?? 0, beforeMs: () => c.backlogBeforeMs ?? c.backlogMs ?? 0 };
      const got = refusal(s.check({ priority: c.priority, timeoutMs: c.timeoutMs }));
      if (c.want === undefined) assert.equal(got, undefined, got?.message);
      else {
        assert.equal(got?.code, 'SLOGATE_ERR_SHED');
        assert.match(got?.message ?? '', c.want.message);
        assert.equal(got?.retryAfterMs, c.want.retryAfterMs);
      }
    });
  }

  test('the token bucket refills at its rate (manual clock)', () => {
    const s = setup();
    s.publish(decision('r', { large: 1 }, { admissionRps: 10 }));
    for (let i = 0; i < 4; i++) assert.ok(s.check().admitted);
    assert.equal(refusal(s.check())?.retryAfterMs, 100);
    s.clock.advance(99);
    assert.ok(!s.check({ arrivalMs: s.clock.now() }).admitted, '0.99 of a token');
    s.clock.advance(1);
    assert.ok(s.check({ arrivalMs: s.clock.now() }).admitted, 'one token after 100 ms');
  });

  test("the caller's reading of the clock, when given, is the check's now", () => {
    const s = setup();
    s.publish(decision('r', { large: 1 }, { admissionRps: 10 }));
    for (let i = 0; i < 4; i++) assert.ok(s.check().admitted);
    assert.ok(!s.check({ arrivalMs: NOW + 99, nowMs: NOW + 99 }).admitted, '0.99 of a token at the time given');
    const later = { arrivalMs: NOW + 100, nowMs: NOW + 100 };
    assert.ok(s.check(later).admitted, 'one token 100 ms on, though the gate clock stands still');
  });

  test('an unlimited decision removes the token bucket', () => {
    const s = setup();
    s.publish(decision('r', { large: 1 }, { admissionRps: 1 }));
    for (let i = 0; i < 4; i++) s.check();
    assert.ok(!s.check().admitted);
    s.publish(decision('r', { large: 1 }));
    assert.ok(s.check().admitted);
  });
});

describe('admission gate: what bypasses it', () => {
  const shedAll = decision('r', { large: 1 }, { admissionRps: 0 });
  const cases: { name: string; route?: Record<string, unknown>; pinned?: boolean; published?: boolean }[] = [
    { name: 'a pinned version on a route that exempts them', pinned: true, route: { pinnedAdmission: 'exempt' } },
    { name: 'a static route', route: { policy: { static: { variant: 'small' } } } },
    { name: 'an aimd route', route: { policy: { aimd: { variant: 'small' } } } },
    { name: 'an adaptive route before its first decision', published: false },
  ];
  for (const c of cases) {
    test(`${c.name} is admitted, and counted`, () => {
      const s = setup(c.route);
      if (c.published !== false) s.publish(shedAll);
      const a = s.check({ pinned: c.pinned ?? false });
      assert.ok(a.admitted);
      assert.equal(s.r.stats.rate.pending, 1);
    });
  }
  test('control: the same adaptive route with a decision that sheds it is refused', () => {
    const s = setup();
    s.publish(shedAll);
    assert.ok(!s.check().admitted);
  });
  test("a pinned version goes through the route's admission by default", () => {
    const s = setup();
    s.publish(shedAll);
    assert.ok(!s.check({ pinned: true }).admitted);
    assert.ok(!s.check({ pinned: true, stage: 'before-body' }).admitted);
  });
});

describe('admission gate: the stages of one request', () => {
  test('before-body runs every rule with the route priority and its SLO deadline; counts only a refusal', () => {
    const s = setup({ priority: -1 });
    s.publish(decision('r', { large: 1 }));
    s.gate.underPressure = true;
    const a = s.check({ stage: 'before-body' });
    assert.match(refusal(a)?.message ?? '', /sheddable request \(priority -1\)/);
    assert.equal(s.r.stats.rate.pending, 1, 'a refused request is demand the engine must see');
    s.gate.underPressure = false;
    const ok = s.check({ stage: 'before-body' });
    assert.ok(ok.admitted);
    assert.equal(ok.deadlineAtMs, NOW + P99);
    assert.equal(ok.priority, -1);
    assert.equal(ok.useCache, true);
    assert.equal(s.r.stats.rate.pending, 1, 'an admitted request counts once its body parsed');
  });

  test("after-body runs the priority and token rules, sets the request's deadline and priority, counts it", () => {
    const s = setup({ priority: 5 });
    s.publish(decision('r', { large: 1 }, { admissionRps: 0 }));
    const a = s.check({ stage: 'after-body', priority: 3, timeoutMs: 20 });
    assert.ok(a.admitted, 'the other rules ran before the body');
    assert.equal(a.deadlineAtMs, NOW + 20);
    assert.equal(a.priority, 3);
    assert.equal(s.r.stats.rate.pending, 1);
    s.gate.underPressure = true;
    assert.match(refusal(s.check({ stage: 'after-body', priority: -2 }))?.message ?? '', /priority -2/);
    const exempt = setup({ pinnedAdmission: 'exempt' });
    exempt.publish(decision('r', { large: 1 }));
    exempt.gate.underPressure = true;
    const pinned = exempt.check({ stage: 'after-body', priority: -2, pinned: true });
    assert.ok(pinned.admitted, 'an exempt pinned version bypasses it');
  });

  test('a malformed body takes no token and counts no arrival: both happen once the body parsed', () => {
    const s = setup();
    s.publish(decision('r', { large: 1 }, { admissionRps: 1 })); // a burst of 4 tokens
    for (let i = 0; i < 10; i++) assert.ok(s.check({ stage: 'before-body' }).admitted, `junk request ${i}`);
    assert.equal(s.r.stats.rate.pending, 0);
    for (let i = 0; i < 4; i++) assert.ok(s.check({ stage: 'after-body' }).admitted, `parsed request ${i}`);
    assert.equal(s.r.stats.rate.pending, 4);
    assert.match(refusal(s.check({ stage: 'after-body' }))?.message ?? '', /admission rate/);
    assert.ok(!s.check({ stage: 'before-body' }).admitted, 'the bucket is empty now');
  });

  const bands = [
    { name: 'default: a client may lower its priority', route: {}, asked: -5, want: -5 },
    { name: "default: a client cannot raise it over the route's", route: { priority: 2 }, asked: 1000, want: 2 },
    {
      name: 'a configured band lets it rise to its top',
      route: { priorityBand: { min: -3, max: 7 } },
      asked: 9,
      want: 7,
    },
    { name: 'and clamps it at its bottom', route: { priorityBand: { min: -3, max: 7 } }, asked: -9, want: -3 },
  ];
  for (const c of bands)
    test(`client priority: ${c.name}`, () => {
      const s = setup(c.route);
      const a = s.check({ stage: 'after-body', priority: c.asked });
      assert.ok(a.admitted);
      assert.equal(a.priority, c.want);
    });

  test('the deadline: arrival + p99 target, or the timeout when sooner', () => {
    const s = setup();
    const deadline = (timeoutMs: number | undefined) => {
      const a = s.check({ stage: 'after-body', arrivalMs: 2000, timeoutMs });
      return a.admitted ? a.deadlineAtMs : Number.NaN;
    };
    assert.equal(deadline(undefined), 2000 + P99);
    assert.equal(deadline(10), 2010);
    assert.equal(deadline(P99 + 1), 2000 + P99);
  });
});

describe('admission gate: asking the control loop to decide now', () => {
  test('a refusal while the route has no admission limit raises an alarm; a token-bucket refusal does not', () => {
    const s = setup();
    s.publish(decision('r', { large: 1 }));
    s.runtime.backlog = { totalMs: 500, beforeMs: () => 500 };
    assert.ok(!s.check().admitted);
    assert.deepEqual(s.alarms, ['r']);
    const t = setup();
    t.publish(decision('r', { large: 1 }, { admissionRps: 1 }));
    for (let i = 0; i < 5; i++) t.check();
    assert.deepEqual(t.alarms, []);
  });

  const surge = (plannedRps: number, arrivals: number, afterMs: number) => {
    const s = setup();
    s.publish(decision('r', { large: 1 }));
    s.gate.plan('r', plannedRps);
    s.r.stats.rates(NOW); // the last tick's snapshot
    s.clock.advance(afterMs);
    for (let i = 0; i < arrivals; i++) {
      s.check({ stage: 'before-body', arrivalMs: s.clock.now() });
      s.check({ stage: 'after-body', arrivalMs: s.clock.now() });
    }
    return s.alarms.length;
  };
  const cases = [
    { name: '24 arrivals in 50 ms at a planned 100/s: a surge', planned: 100, n: 24, after: 50, alarm: true },
    { name: '23 arrivals: too few to tell', planned: 100, n: 23, after: 50, alarm: false },
    { name: '100 arrivals within 39 ms of the tick: too soon to tell', planned: 100, n: 100, after: 39, alarm: false },
    { name: '24 arrivals in 50 ms at a planned 400/s: within 4 sigma', planned: 400, n: 24, after: 50, alarm: false },
  ];
  for (const c of cases)
    test(c.name, () => {
      assert.equal(surge(c.planned, c.n, c.after) > 0, c.alarm);
    });
});
