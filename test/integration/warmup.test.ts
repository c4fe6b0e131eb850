// The start-up warm-up against real replicas: its requests reach every variant through the real request path, and
// leave no trace in what the routes, the engine and Prometheus count.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, EVAL_PATH, VARIANTS } from '../helpers.js';

const WARMUP = 120;

async function start(requests: number): Promise<{ sg: Slogate; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as Record<string, unknown>) });
  const config = digitsConfig({
    server: { warmup: { requests, concurrency: 8 }, requestLog: true },
    routes: {
      digits: { model: 'digits', slo: { p99Ms: 200 } },
      cached: {
        model: 'digits',
        slo: { p99Ms: 200 },
        cache: { maxEntries: 100 },
        policy: { static: { variant: 'small', maxBatch: 8, maxQueueDelayMs: 0 } },
      },
    },
  });
  const sg = await createSlogate({ config, logger, defaultMetrics: false, env: {} });
  return { sg, logs };
}

function sample(text: string, name: string): number[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
}

describe('start-up warm-up', () => {
  let sg: Slogate | undefined;
  after(async () => {
    await sg?.close();
  });

  test('runs through every variant before the server listens, and nothing counts it', async () => {
    const started = await start(WARMUP);
    sg = started.sg;
    const line = started.logs.find((l) => l.msg === 'request path warmed');
    assert.ok(line !== undefined, 'logged');
    assert.equal(line.requests, WARMUP);
    assert.equal(line.failed, 0);
    assert.equal(started.logs.filter((l) => l.msg === 'request').length, 0, 'no request log line');
    // Every request reached a replica (none answered from the cache, none dropped), on every variant.
    const stats = sg.runtime.queueStats();
    assert.equal(
      stats.reduce((a, s) => a + s.rowsServed, 0),
      WARMUP,
    );
    assert.equal(
      stats.reduce((a, s) => a + s.dropped, 0),
      0,
    );
    for (const v of VARIANTS) assert.ok((stats.find((s) => s.variant === v)?.rowsServed ?? 0) > 0, `${v} warmed`);
    // Nothing in the routes' books, the cache or the engine's inputs.
    for (const r of sg.router.routes.values()) {
      assert.deepEqual(r.stats.totals, { arrivals: 0, met: 0, missed: 0, shed: 0, dropped: 0 }, r.name);
      assert.equal(r.cache?.size ?? 0, 0);
    }
    assert.equal(sg.controller.current('digits')?.inputs.rateFast, 0);
    // The latency profiles do learn from its batches (the worker's own time): without a sweep (profiling is off
    // here) they are the first service-time estimates, before any client.
    assert.ok(
      sg.runtime.profileSnapshot().some((p) => p.points.length > 0),
      'service times learnt',
    );
    assert.equal(sg.controller.utilisation.replicas, 0, 'the warm-up is no load');
    let text = await sg.metrics.registry.metrics();
    assert.deepEqual(sample(text, 'slogate_requests_total{'), [], 'no request counted');
    assert.deepEqual([...new Set(sample(text, 'slogate_slo_requests_total{'))], [0], 'no SLO outcome');
    assert.deepEqual(sample(text, 'slogate_batch_size_count{'), [], 'batch series reset');
    assert.deepEqual(sample(text, 'slogate_cache_requests_total{'), [], 'no cache lookup');

    // The first real request is counted as the first.
    const url = await sg.listen(0);
    const set = readEvalSet(EVAL_PATH);
    const res = await fetch(`${url}/v2/models/cached/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          {
            name: 'pixels',
            datatype: 'FP32',
            shape: [1, set.features],
            data: Array.from(set.data.subarray(0, set.features)),
          },
        ],
      }),
    });
    assert.equal(res.status, 200);
    text = await sg.metrics.registry.metrics();
    assert.deepEqual(sample(text, 'slogate_requests_total{'), [1]);
    assert.deepEqual(sample(text, 'slogate_batch_size_count{'), [1]);
    assert.equal(sg.router.route('cached').stats.totals.arrivals, 1);
    await sg.close();
    sg = undefined;
  });

  test('requests: 0 turns it off', async () => {
    const started = await start(0);
    sg = started.sg;
    assert.equal(
      started.logs.find((l) => l.msg === 'request path warmed'),
      undefined,
    );
    assert.equal(
      sg.runtime.queueStats().reduce((a, s) => a + s.batches, 0),
      0,
    );
    await sg.close();
    sg = undefined;
  });
});
