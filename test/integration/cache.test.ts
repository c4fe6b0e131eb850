// The response cache through the real server: identical inputs to the same variant are answered without running
// the model; anything different is a miss; routes without a cache never use one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import { digitsConfig } from '../helpers.js';

let sg: Slogate;
before(async () => {
  sg = await createSlogate({
    config: digitsConfig({
      server: { logLevel: 'silent' },
      routes: {
        cached: {
          model: 'digits',
          slo: { p99Ms: 500 },
          policy: { static: { variant: 'small' } },
          cache: { maxEntries: 100, ttlMs: 60_000 },
        },
        plain: { model: 'digits', slo: { p99Ms: 500 }, policy: { static: { variant: 'small' } } },
      },
    }),
    logger: pino({ level: 'silent' }),
    defaultMetrics: false,
  });
});
after(async () => {
  await sg.close();
});

const request = (route: string, value: number) =>
  sg.app.inject({
    method: 'POST',
    url: `/v2/models/${route}/infer`,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(value) }],
    }),
  });

function batches(): number {
  return sg.runtime.queueStats().reduce((n, q) => n + q.batches, 0);
}

test('an identical request is answered from the cache, with the same outputs and no model run', async () => {
  const first = await request('cached', 0.25);
  assert.equal(first.statusCode, 200);
  const ran = batches();
  const second = await request('cached', 0.25);
  assert.equal(second.statusCode, 200);
  assert.equal(batches(), ran, 'no batch ran for the hit');
  assert.deepEqual((second.json() as { outputs: unknown }).outputs, (first.json() as { outputs: unknown }).outputs);
  assert.match(String(second.headers['server-timing']), /infer;dur=0\.000/);
  const other = await request('cached', 0.5);
  assert.equal(other.statusCode, 200);
  assert.equal(batches(), ran + 1, 'different input: a miss that runs');
  const m = await sg.metrics.registry.metrics();
  assert.match(m, /^slogate_cache_requests_total\{route="cached",result="hit"\} 1$/m);
  assert.match(m, /^slogate_cache_requests_total\{route="cached",result="miss"\} 2$/m);
});

test('routes without a cache configured do not cache', async () => {
  await request('plain', 0.75);
  const ran = batches();
  await request('plain', 0.75);
  assert.equal(batches(), ran + 1);
  assert.doesNotMatch(await sg.metrics.registry.metrics(), /slogate_cache_requests_total\{route="plain"/);
});
