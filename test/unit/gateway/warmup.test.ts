// The start-up warm-up's requests: what they are made of (pure logic; the live warm-up is tested in
// test/integration/warmup.test.ts against real replicas).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RouteSchema } from '../../../core/config.js';
import { Metrics } from '../../../core/metrics.js';
import type { ModelSignature, V2Datatype } from '../../../core/types.js';
import { parseInferRequest } from '../../../gateway/v2/codec.js';
import { WARMUP_PATH, warmupBodies, warmupTargets } from '../../../gateway/warmup.js';
import { Router } from '../../../policies/router.js';
import { FakeRuntime } from '../policies/fake-runtime.js';

const TYPES: readonly [V2Datatype, number[]][] = [
  ['FP32', [-1, 784]],
  ['INT64', [-1, 3]],
  ['BOOL', [-1, 2, 2]],
  ['FP16', [-1, 4]],
  ['UINT8', [-1, 5]],
  ['BYTES', [-1, 1]],
  ['FP64', [-1, -1]],
];
const SIG: ModelSignature = {
  inputs: TYPES.map(([datatype, shape], i) => ({ name: `in${i}`, datatype, shape })),
  outputs: [{ name: 'out', datatype: 'FP32', shape: [-1, 1] }],
  batchable: true,
};

describe('warm-up requests', () => {
  test('one row of zeros for every input of the signature, accepted by the real parser in binary and in JSON', () => {
    const { binary, json } = warmupBodies(SIG);
    const jsonLength = Number(binary.headers['inference-header-content-length']);
    assert.ok(jsonLength > 0 && jsonLength < binary.payload.byteLength);
    for (const [form, parsed] of [
      ['binary', parseInferRequest(binary.payload, jsonLength, SIG, false)],
      ['json', parseInferRequest(json.payload, undefined, SIG, false)],
    ] as const) {
      assert.equal(parsed.rows, 1, form);
      assert.equal(parsed.binaryOutput, form === 'binary', `${form}: outputs in the request's own form`);
      assert.deepEqual(
        parsed.inputs.map((t) => [t.name, t.datatype, t.shape]),
        SIG.inputs.map((s) => [s.name, s.datatype, s.shape.map((d) => (d < 0 ? 1 : d))]),
        form,
      );
      for (const t of parsed.inputs) {
        const values =
          t.datatype === 'BYTES'
            ? (t.data as Uint8Array[]).map((b) => b.byteLength)
            : Array.from(t.data as ArrayLike<number | bigint>, Number);
        assert.ok(
          values.every((v) => v === 0),
          `${form} ${t.name}: zeros`,
        );
      }
    }
  });

  test("every route with a signature: its own URL and each allowed variant's, three binary requests to one JSON", () => {
    const routes = [
      { name: 'a', model: { name: 'm' }, allowed: ['large', 'small'] },
      { name: 'b c', model: { name: 'm' }, allowed: ['small'] },
      { name: 'loading', model: { name: 'pending' }, allowed: ['x'] },
    ];
    const targets = warmupTargets(routes, (m) => (m === 'm' ? SIG : undefined));
    const urls = [...new Set(targets.map((t) => t.url))];
    assert.deepEqual(urls, [
      '/v2/models/a/infer',
      '/v2/models/a/versions/large/infer',
      '/v2/models/a/versions/small/infer',
      '/v2/models/b%20c/infer',
      '/v2/models/b%20c/versions/small/infer',
    ]);
    for (const url of urls) {
      const kinds = targets.filter((t) => t.url === url).map((t) => t.body.headers['content-type']);
      assert.deepEqual(kinds.sort(), [
        'application/json',
        'application/octet-stream',
        'application/octet-stream',
        'application/octet-stream',
      ]);
    }
  });
});

describe('the warm-up request path', () => {
  test('admits everything uncounted, with a 30 s deadline, past the cache; records, logs and traces nothing', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const router = new Router({
      runtime: new FakeRuntime('m', { a: 0.9 }),
      clock: new ManualClock(0),
      metrics,
      routes: { r: RouteSchema.parse({ model: 'm', slo: { p99Ms: 5 }, priority: 2 }) },
    });
    const route = router.route('r');
    for (const stage of ['before-body', 'after-body', 'whole'] as const) {
      const a = WARMUP_PATH.gate.check({ route, arrivalMs: 100, stage, pinned: false });
      assert.deepEqual(a, { admitted: true, deadlineAtMs: 30_100, priority: 2, useCache: false }, stage);
    }
    const a = WARMUP_PATH.gate.check({ route, arrivalMs: 0, stage: 'after-body', pinned: true, priority: -1 });
    assert.equal(a.admitted && a.priority, -1);
    assert.equal(route.stats.rate.pending, 0, 'no arrival counted');
    WARMUP_PATH.recorder.record({ route: 'r', statusCode: 200, totalMs: 1, variant: 'a' });
    assert.equal((await metrics.requests.get()).values.length, 0);
    assert.equal(route.stats.totals.met, 0);
    assert.equal(WARMUP_PATH.observed, false, 'out of the request log and traces');
  });
});
