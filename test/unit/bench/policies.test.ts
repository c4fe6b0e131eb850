import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bestBatching,
  defaultPolicyIds,
  derivePolicyConfig,
  type PolicyContext,
  parsePolicyId,
  policySlug,
} from '../../../bench/policies.js';
import { parseConfig } from '../../../core/config.js';

// Only the config schema: these tests stay independent of the server's modules.
const ROOT = '/repo';
const VARIANTS = ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large'];
const digitsConfig = (routes: Record<string, unknown>) =>
  parseConfig(
    {
      server: { port: 0, logLevel: 'silent' },
      models: {
        digits: {
          eval: 'models/digits/eval.bin',
          variants: Object.fromEntries(VARIANTS.map((v) => [v, { path: `models/digits/${v}.onnx` }])),
        },
      },
      routes,
    },
    ROOT,
    'test config',
  );

const ctx: PolicyContext = {
  variants: ['large', 'medium', 'tiny'],
  fastest: 'tiny',
  modelMaxBatch: 64,
  best: (v) => (v === 'tiny' ? { maxBatch: 64, maxQueueDelayMs: 5 } : { maxBatch: 2, maxQueueDelayMs: 5 }),
};

test('bestBatching: the most rows per ms among batches whose wait + 2 x p99 fits 80% of the SLO', () => {
  // Per-row cost falls with the batch; at 25 ms: wait 5 ms, budget 20 ms -> p99 <= 7.5 ms.
  const points = [
    { rows: 1, p50Ms: 1, p99Ms: 2 },
    { rows: 2, p50Ms: 1.5, p99Ms: 3 },
    { rows: 4, p50Ms: 2, p99Ms: 7 },
    { rows: 8, p50Ms: 3, p99Ms: 9 },
  ];
  assert.deepEqual(bestBatching(points, 25), { maxBatch: 4, maxQueueDelayMs: 5 });
  // A looser SLO admits batch 8; a tight one only batch 1 (the wait is 20% of the SLO then).
  assert.deepEqual(bestBatching(points, 100), { maxBatch: 8, maxQueueDelayMs: 5 });
  assert.deepEqual(bestBatching(points, 5), { maxBatch: 1, maxQueueDelayMs: 0 });
});

test('bestBatching: no batching when batches are no cheaper per row', () => {
  const linear = [1, 2, 4, 8].map((rows) => ({ rows, p50Ms: rows, p99Ms: rows * 1.2 }));
  assert.deepEqual(bestBatching(linear, 100), { maxBatch: 1, maxQueueDelayMs: 0 });
});

test('policy ids: quick compares the extremes, the full run every variant at batch 1 and best batching', () => {
  assert.deepEqual(defaultPolicyIds(ctx, true), [
    'adaptive',
    'static:large:b1',
    'static:large:best',
    'static:tiny:best',
    'fixed',
    'aimd',
    'naive',
    'raw',
  ]);
  const full = defaultPolicyIds(ctx, false);
  assert.equal(full.filter((id) => id.startsWith('static:')).length, 6);
  assert.ok(full.includes('static:medium:best'));
});

test('parsePolicyId turns ids into route policies', () => {
  assert.deepEqual(parsePolicyId('adaptive', ctx), {
    kind: 'slogate',
    id: 'adaptive',
    label: 'adaptive (slogate engine)',
    policy: 'adaptive',
  });
  assert.deepEqual(parsePolicyId('static:tiny:best', ctx), {
    kind: 'slogate',
    id: 'static:tiny:best',
    label: 'static tiny b64 5ms (best)',
    policy: { static: { variant: 'tiny', maxBatch: 64, maxQueueDelayMs: 5 } },
    variant: 'tiny',
  });
  assert.deepEqual(
    parsePolicyId('static:medium:b16:2ms', ctx).kind === 'slogate' && parsePolicyId('static:medium:b16:2ms', ctx),
    {
      kind: 'slogate',
      id: 'static:medium:b16:2ms',
      label: 'static medium b16 2ms',
      policy: { static: { variant: 'medium', maxBatch: 16, maxQueueDelayMs: 2 } },
      variant: 'medium',
    },
  );
  const fixed = parsePolicyId('fixed', ctx);
  assert.ok(
    fixed.kind === 'slogate' &&
      typeof fixed.policy === 'object' &&
      'static' in fixed.policy &&
      fixed.policy.static.maxBatch === 8,
  );
  const aimd = parsePolicyId('aimd', ctx);
  assert.ok(
    aimd.kind === 'slogate' &&
      typeof aimd.policy === 'object' &&
      'aimd' in aimd.policy &&
      aimd.policy.aimd.variant === 'large' &&
      aimd.policy.aimd.maxBatch === 64,
  );
  assert.deepEqual(parsePolicyId('naive:tiny', ctx), {
    kind: 'naive',
    id: 'naive:tiny',
    label: 'naive Fastify + ORT tiny',
    variant: 'tiny',
  });
  assert.equal(parsePolicyId('raw', ctx).kind, 'raw');
  assert.throws(() => parsePolicyId('static:huge:b1', ctx), /no variant 'huge'/);
  assert.throws(() => parsePolicyId('oracle', ctx), /unknown policy/);
  assert.throws(() => parsePolicyId('static:tiny:x9', ctx), /expected static/);
  assert.equal(policySlug('static:tiny:b8:5ms'), 'static-tiny-b8-5ms');
});

test('derived configs are valid slogate configs: the route keeps its SLO, only its policy changes', () => {
  const base = digitsConfig({
    digits: { model: 'digits', slo: { p99Ms: 25, minAccuracy: 0.9 } },
    other: { model: 'digits', slo: { p99Ms: 8 } },
  });
  const spec = parsePolicyId('static:tiny:best', ctx);
  assert.equal(spec.kind, 'slogate');
  if (spec.kind !== 'slogate') return;
  const raw = derivePolicyConfig(base, 'digits', spec);
  const parsed = parseConfig(raw, ROOT, 'derived');
  assert.deepEqual(Object.keys(parsed.routes), ['digits']);
  assert.deepEqual(parsed.routes.digits?.slo, { p99Ms: 25, minAccuracy: 0.9 });
  assert.deepEqual(parsed.routes.digits?.policy, { kind: 'static', variant: 'tiny', maxBatch: 64, maxQueueDelayMs: 5 });
  assert.deepEqual(Object.keys(parsed.models.digits?.variants ?? {}), ['tiny']);
  assert.equal(parsed.server.logLevel, 'warn');
  const adaptive = parseConfig(
    derivePolicyConfig(base, 'digits', { kind: 'slogate', id: 'adaptive', label: '', policy: 'adaptive' }),
    ROOT,
    'derived',
  );
  assert.equal(Object.keys(adaptive.models.digits?.variants ?? {}).length, 6);
  assert.deepEqual(adaptive.routes.digits?.policy, { kind: 'adaptive' });
  assert.throws(() => derivePolicyConfig(base, 'nope', spec), /no route 'nope'/);
});
