// Health with real worker replicas, through inject(): readiness follows the replicas (what inference would answer),
// a worker whose replacement cannot load its model is retried with a capped backoff until it can (neither a tight
// loop nor down for good), and liveness fails once no slot has been ready for livenessTimeoutMs.
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import type { LocalReplica } from '../../runtime/replica.js';
import { DIGITS_DIR, digitsConfig, tempDir, until } from '../helpers.js';

const dir = tempDir();
const MODEL = join(dir, 'tiny.onnx');
const LIVENESS_MS = 1500;
let sg: Slogate;
// The server's timers are unref'd and inject() opens no socket: this keeps the process up while a request waits.
let keepAlive: NodeJS.Timeout;

before(async () => {
  keepAlive = setInterval(() => {}, 1000);
  copyFileSync(join(DIGITS_DIR, 'tiny.onnx'), MODEL);
  sg = await createSlogate({
    config: digitsConfig({
      server: { logLevel: 'silent', warmup: { requests: 0 } },
      runtime: {
        workers: 2,
        profile: { enabled: false },
        health: { minReadySlots: 2, livenessTimeoutMs: LIVENESS_MS, respawnInitialMs: 100, respawnMaxMs: 400 },
      },
      models: { digits: { variants: { tiny: { path: MODEL } } } },
      routes: { digits: { model: 'digits', slo: { p99Ms: 1000 }, policy: { static: { variant: 'tiny' } } } },
    }),
    logger: pino({ level: 'silent' }),
    defaultMetrics: false,
  });
  await sg.app.ready();
});

after(async () => {
  await sg.close();
  clearInterval(keepAlive);
});

const get = async (url: string) => {
  const r = await sg.app.inject(url);
  return { status: r.statusCode, body: r.json() as { ready?: boolean; live?: boolean; reason?: string } };
};
const infer = async () =>
  (
    await sg.app.inject({
      method: 'POST',
      url: '/v2/models/digits/infer',
      payload: { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] },
    })
  ).statusCode;

const replica = (i: number) => sg.runtime.pool.replicas[i] as LocalReplica;
const attempts = (i: number) => Number(/attempt (\d+)/.exec(sg.runtime.replicaStats()[i]?.lastChange ?? '')?.[1] ?? 0);

test('replicas that cannot reload: ready and live tell the truth, retries back off, and both recover', async () => {
  assert.equal((await get('/v2/health/ready')).status, 200);
  assert.equal(await infer(), 200);

  // The model file breaks, then a worker dies: its replacement cannot load.
  writeFileSync(MODEL, 'not an onnx model');
  await replica(0).worker?.terminate();
  await until(
    () => replica(0).state === 'down',
    10_000,
    'the first replica down',
    () => sg.runtime.replicaStats(),
  );
  const one = await get('/v2/health/ready');
  assert.equal(one.status, 503, 'one ready slot of the two required');
  assert.match(one.body.reason ?? '', /too few ready slots \(minimum 2\): digits has 1/);
  assert.equal(await infer(), 200, 'the other worker still serves');
  assert.equal((await get('/v2/health/live')).status, 200, 'a slot is ready: live');

  await replica(1).worker?.terminate();
  await until(
    () => replica(1).state === 'down',
    10_000,
    'the second replica down',
    () => sg.runtime.replicaStats(),
  );
  const none = await get('/v2/health/ready');
  assert.equal(none.status, 503);
  assert.match(none.body.reason ?? '', /digits has 0/);
  assert.equal(await infer(), 503, 'no replica: inference is refused, as readiness said');

  // Attempts go on past the five the old code made before giving up, spaced by the backoff (100, 200, 400, 400 ...
  // ms after each failed load): no tight loop.
  const noSlotSince = Date.now();
  const before = attempts(0);
  await until(
    () => attempts(0) >= 6,
    20_000,
    'a sixth replacement attempt',
    () => sg.runtime.replicaStats(),
  );
  const made = attempts(0) - before;
  const elapsedMs = Date.now() - noSlotSince;
  assert.ok(elapsedMs >= 100 * made, `${made} attempts in ${elapsedMs} ms: spaced, not a loop`);
  assert.equal(sg.runtime.replicaStats()[0]?.restarts, 1, 'one exit, one restart counted, however many attempts');
  await new Promise((r) => setTimeout(r, Math.max(0, LIVENESS_MS - elapsedMs)));
  const live = await get('/v2/health/live');
  assert.equal(live.status, 503, `no ready slot for ${LIVENESS_MS} ms: not live`);
  assert.match(live.body.reason ?? '', /no replica slot has been ready for \d+ ms/);

  // The file is fixed: the next attempts load it, without anyone restarting anything.
  copyFileSync(join(DIGITS_DIR, 'tiny.onnx'), MODEL);
  await until(
    () => sg.runtime.pool.replicas.every((r) => r.state === 'ready'),
    10_000,
    'both replicas back',
    () => sg.runtime.replicaStats(),
  );
  assert.equal((await get('/v2/health/ready')).status, 200);
  assert.equal((await get('/v2/health/live')).status, 200);
  assert.equal(await infer(), 200);
});
