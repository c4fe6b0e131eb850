// The router on a fake runtime and the manual clock: an admitted request goes to its pinned version, or to a variant of
// its route's decision (the most accurate allowed, or a fixed policy's own, before the first one), with the decision's
// fallback variant, the admission's deadline and priority, and through the response cache when it may use it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RouteSchema } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { SlogateError } from '../../../core/errors.js';
import { Metrics } from '../../../core/metrics.js';
import type { Admitted } from '../../../policies/admission.js';
import { Router } from '../../../policies/router.js';
import { RouteSloRecorder } from '../../../policies/slo-recorder.js';
import { decision, FakeRuntime } from './fake-runtime.js';

const VARIANTS = { large: 0.99, medium: 0.97, small: 0.95 };

function setup(routes: Record<string, unknown>) {
  const clock = new ManualClock(1000);
  const runtime = new FakeRuntime('m', VARIANTS);
  const metrics = new Metrics({ defaultMetrics: false });
  const parsed = Object.fromEntries(Object.entries(routes).map(([k, v]) => [k, RouteSchema.parse(v)]));
  const router = new Router({ runtime, clock, metrics, routes: parsed });
  const decisions = new Map<string, Decision>();
  router.setDecisionSource({ current: (r) => decisions.get(r) });
  return { clock, runtime, metrics, router, decisions };
}

const admitted = (o: Partial<Admitted> = {}): Admitted => ({
  admitted: true,
  deadlineAtMs: 1050,
  priority: 0,
  useCache: true,
  ...o,
});

const call = (route: string, o: { pinned?: string; admitted?: Admitted } = {}) => ({
  route,
  pinnedVariant: o.pinned,
  inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 1], data: new Float32Array([1]) }],
  rows: 1,
  arrivalMs: 1000,
  admitted: o.admitted ?? admitted(),
});

describe('router: which variant an admitted request goes to', () => {
  const cases: {
    name: string;
    policy?: unknown;
    variants?: string[];
    decision?: Record<string, number>;
    fallback?: string;
    pinned?: string;
    want: { variant: string; fallback: string | undefined };
  }[] = [
    { name: 'adaptive, no decision yet: the most accurate', want: { variant: 'large', fallback: undefined } },
    {
      name: 'adaptive, no decision yet, restricted variants: the most accurate allowed',
      variants: ['small', 'medium'],
      want: { variant: 'medium', fallback: undefined },
    },
    {
      name: 'static, no decision yet: its own variant',
      policy: { static: { variant: 'small' } },
      want: { variant: 'small', fallback: undefined },
    },
    {
      name: 'aimd, no decision yet: its own variant',
      policy: { aimd: { variant: 'medium' } },
      want: { variant: 'medium', fallback: undefined },
    },
    {
      name: "the decision's variant, with its fallback",
      decision: { medium: 1 },
      fallback: 'small',
      want: { variant: 'medium', fallback: 'small' },
    },
    {
      name: 'a pinned version: that variant, no fallback, whatever the decision',
      decision: { medium: 1 },
      fallback: 'small',
      pinned: 'large',
      want: { variant: 'large', fallback: undefined },
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { router, runtime, decisions } = setup({
        r: { model: 'm', slo: { p99Ms: 50 }, policy: c.policy, variants: c.variants },
      });
      if (c.decision !== undefined) decisions.set('r', decision('r', c.decision, { fallbackVariant: c.fallback }));
      const res = await router.infer(call('r', { pinned: c.pinned }));
      assert.equal(res.variant, c.want.variant);
      const sent = runtime.submitted[0];
      assert.equal(sent?.variant, c.want.variant);
      assert.equal(sent?.fallbackVariant, c.want.fallback);
      assert.equal(sent?.tag, 'r');
      assert.equal(sent?.pinned, c.pinned !== undefined, 'a pinned request is marked so it is never moved');
    });
  }

  test('a mix is followed share for share (smooth weighted round-robin)', async () => {
    const { router, runtime, decisions } = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
    decisions.set('r', decision('r', { large: 0.25, medium: 0.75 }));
    for (let i = 0; i < 8; i++) await router.infer(call('r'));
    const n = (v: string) => runtime.submitted.filter((s) => s.variant === v).length;
    assert.deepEqual([n('large'), n('medium')], [2, 6]);
  });

  test("the time before routing is counted from the caller's reading of the clock when it gives one", async () => {
    const { router, clock, decisions } = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
    decisions.set('r', decision('r', { large: 1 }));
    clock.advance(3);
    assert.equal((await router.infer(call('r'))).routedMs, 3, 'its own clock');
    assert.equal((await router.infer({ ...call('r'), nowMs: 1007 })).routedMs, 7, 'the time given');
  });

  test('a new decision is picked up at the next request', async () => {
    const { router, runtime, decisions } = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
    decisions.set('r', decision('r', { large: 1 }));
    await router.infer(call('r'));
    decisions.set('r', decision('r', { small: 1 }));
    await router.infer(call('r'));
    assert.deepEqual(
      runtime.submitted.map((s) => s.variant),
      ['large', 'small'],
    );
  });

  test('a pinned version the route does not allow is refused (404), nothing submitted', () => {
    const { router, runtime } = setup({ r: { model: 'm', slo: { p99Ms: 50 }, variants: ['small'] } });
    assert.throws(
      () => router.infer(call('r', { pinned: 'large' })),
      (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_VARIANT_NOT_FOUND',
    );
    assert.equal(runtime.submitted.length, 0);
  });

  test('an unknown route is refused (404)', () => {
    const { router } = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
    assert.throws(
      () => router.infer(call('nope')),
      (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_ROUTE_NOT_FOUND',
    );
  });

  test('a request too big for the mix variant goes to the most accurate that fits, not the fallback', async () => {
    const s = setup({ r: { model: 'm', slo: { p99Ms: 50, minAccuracy: 0.96 } } });
    // Per row: large 2 ms, medium 0.1 ms, small 0.05 ms (the fallback), plus 1 ms per batch.
    const perRow: Record<string, number> = { large: 2, medium: 0.1, small: 0.05 };
    s.runtime.serviceMs = (_m, v, rows) => 1 + (perRow[v] ?? 0) * rows;
    s.decisions.set('r', decision('r', { large: 1 }, { fallbackVariant: 'small' }));
    const rows = (n: number) => ({ ...call('r'), rows: n });
    await s.router.infer(rows(8));
    await s.router.infer(rows(64));
    s.runtime.backlog = { totalMs: 200, beforeMs: () => 200 };
    await s.router.infer(rows(1));
    assert.deepEqual(
      s.runtime.submitted.map((r) => [r.rows, r.variant]),
      [
        [8, 'large'],
        [64, 'medium'],
        [1, 'medium'], // nothing fits behind the queue: the fastest eligible, never below minAccuracy
      ],
    );
  });

  test('the size fit counts only the overhead still ahead: a big body already paid for its parsing', async () => {
    const s = setup({ r: { model: 'm', slo: { p99Ms: 25, minAccuracy: 0.9 } } });
    // 64 rows: large 129 ms, medium 5 ms, small 1 ms (the fastest).
    const at64: Record<string, number> = { large: 129, medium: 5, small: 1 };
    s.runtime.serviceMs = (_m, v) => at64[v] ?? 0;
    // The route's overhead is mostly parsing (9 ms end to end, 8 of them before routing, 1 after).
    const d = decision('r', { large: 1 }, { fallbackVariant: 'small' });
    s.decisions.set('r', { ...d, inputs: { ...d.inputs, overheadMs: 13 } });
    const recorder = new RouteSloRecorder({ routes: s.router.routes, metrics: s.metrics, clock: s.clock });
    const result = { outputs: [], model: 'm', variant: 'medium', serviceMs: 1, inferMs: 1, batchRows: 64 };
    for (let i = 0; i < 20; i++)
      recorder.record({
        route: 'r',
        variant: 'medium',
        statusCode: 200,
        totalMs: 10,
        result: { ...result, queueMs: 0, computeMs: 1, replicaId: 'fake', routedMs: 8 },
      });
    // Parsed 8 ms after arrival, 17 ms left: medium (5 ms) plus the 1 ms still ahead fits.
    s.clock.advance(8);
    await s.router.infer({ ...call('r', { admitted: admitted({ deadlineAtMs: 1025 }) }), rows: 64 });
    assert.equal(s.runtime.submitted[0]?.variant, 'medium');
  });

  describe('a request that could never make its deadline, even alone', () => {
    // 64 rows on large: 1 + 2 x 64 = 129 ms alone, against a 50 ms deadline.
    const setupBig = () => {
      const s = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
      s.runtime.serviceMs = (_m, _v, rows) => 1 + 2 * rows;
      const big = (o: Partial<Admitted> = {}) => ({
        ...call('r', { pinned: 'large', admitted: admitted(o) }),
        rows: 64,
      });
      return { s, big };
    };
    test('without a client timeout, on an idle server: served best-effort, flagged', async () => {
      const { s, big } = setupBig();
      const res = await s.router.infer(big());
      assert.equal(res.bestEffort, true);
      const sent = s.runtime.submitted[0];
      assert.ok(sent !== undefined && sent.deadlineAtMs >= 1000 + 2 * 129, `deadline ${sent?.deadlineAtMs}`);
    });
    test("with a client timeout: today's strict deadline (the runtime drops it)", async () => {
      const { s, big } = setupBig();
      const res = await s.router.infer(big({ clientTimeout: true }));
      assert.equal(res.bestEffort, false);
      assert.equal(s.runtime.submitted[0]?.deadlineAtMs, 1050);
    });
    test('under load: shed (429), nothing submitted', () => {
      const { s, big } = setupBig();
      s.runtime.backlog = { totalMs: 60, beforeMs: () => 60 };
      assert.throws(() => s.router.infer(big()), { code: 'SLOGATE_ERR_SHED' });
      assert.equal(s.runtime.submitted.length, 0);
    });
    test("a gateway overhead spike makes no request best-effort, nor moves it off the mix's variant", async () => {
      const { s } = setupBig();
      const d = decision('r', { large: 1 }, { fallbackVariant: 'small' });
      s.decisions.set('r', { ...d, inputs: { ...d.inputs, overheadMs: 40 } });
      const res = await s.router.infer({ ...call('r'), rows: 8 });
      assert.equal(res.bestEffort, false);
      assert.equal(s.runtime.submitted[0]?.variant, 'large');
    });
    test('a request that fits is served as usual', async () => {
      const { s } = setupBig();
      const res = await s.router.infer({ ...call('r', { pinned: 'large' }), rows: 8 });
      assert.equal(res.bestEffort, false);
      assert.equal(s.runtime.submitted[0]?.deadlineAtMs, 1050);
    });
  });

  test("the admission's deadline and priority travel with the request", async () => {
    const { router, runtime } = setup({ r: { model: 'm', slo: { p99Ms: 50 } } });
    await router.infer(call('r', { admitted: admitted({ deadlineAtMs: 1020, priority: -3 }) }));
    assert.equal(runtime.submitted[0]?.deadlineAtMs, 1020);
    assert.equal(runtime.submitted[0]?.priority, -3);
    assert.equal(runtime.submitted[0]?.arrivalMs, 1000);
  });
});

describe('router: the response cache', () => {
  const cached = { r: { model: 'm', slo: { p99Ms: 50 }, cache: { maxEntries: 10 } } };
  const hits = async (metrics: Metrics, outcome: string) =>
    (await metrics.cacheRequests.get()).values.find((v) => v.labels.result === outcome)?.value ?? 0;

  test('the second identical request is answered from the cache, without reaching the runtime', async () => {
    const { router, runtime, metrics } = setup(cached);
    const first = await router.infer(call('r'));
    const second = await router.infer(call('r'));
    assert.equal(runtime.submitted.length, 1);
    assert.equal(first.replicaId, 'fake');
    assert.equal(second.replicaId, 'cache');
    assert.equal(second.variant, 'large');
    assert.equal(await hits(metrics, 'miss'), 1);
    assert.equal(await hits(metrics, 'hit'), 1);
  });

  test('another variant is another entry (keyed by the variant served)', async () => {
    const { router, runtime } = setup(cached);
    await router.infer(call('r'));
    await router.infer(call('r', { pinned: 'small' }));
    await router.infer(call('r', { pinned: 'small' }));
    assert.deepEqual(
      runtime.submitted.map((s) => s.variant),
      ['large', 'small'],
    );
  });

  test('a request that may not use the cache neither reads nor fills it, nor counts in its metric', async () => {
    const { router, runtime, metrics } = setup(cached);
    await router.infer(call('r', { admitted: admitted({ useCache: false }) }));
    await router.infer(call('r'));
    await router.infer(call('r', { admitted: admitted({ useCache: false }) }));
    assert.equal(runtime.submitted.length, 3, 'nothing was cached by the first, the third did not read');
    assert.equal(await hits(metrics, 'miss'), 1);
    assert.equal(await hits(metrics, 'hit'), 0);
  });

  test('entries expire after the ttl (on the manual clock)', async () => {
    const { router, runtime, clock } = setup({ r: { ...cached.r, cache: { maxEntries: 10, ttlMs: 100 } } });
    await router.infer(call('r'));
    clock.advance(99);
    await router.infer(call('r'));
    clock.advance(2);
    await router.infer(call('r'));
    assert.equal(runtime.submitted.length, 2);
  });
});
