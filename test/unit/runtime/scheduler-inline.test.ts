// What the scheduler tells a replica for inline runs (runtime/inline-runner.ts): each batch's predicted compute time
// (the profile's p50 less the hop), withheld for a variant without a profile or in a rollout; and an inline batch
// feeds the profile its run time plus the hop, as the worker's path would have cost. A batch the replica runs inline
// runs before the dispatch returns: no timeout timer, no second build; one it leaves goes to run() as built.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { LatencyProfiles } from '../../../runtime/latency-profile.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { Scheduler } from '../../../runtime/scheduler.js';
import { TrafficSplit } from '../../../runtime/traffic-split.js';
import { FakeReplica, flush } from './fake-replica.js';

function setup(replicas = [new FakeReplica('r0')]) {
  const clock = new ManualClock(1000);
  const replica = replicas[0] as FakeReplica;
  const pool = new ReplicaPool(replicas, { clock, retryWaitMs: 1000 });
  const profiles = new LatencyProfiles({ now: () => clock.now() });
  const split = new TrafficSplit();
  const computeMs: number[] = [];
  const scheduler = new Scheduler({
    clock,
    pool,
    profiles,
    split,
    maxQueueRows: 1000,
    batchTimeout: { p99Factor: 4, marginMs: 10, floorMs: 50 },
    events: { onBatch: (b) => computeMs.push(b.computeMs) },
  });
  // 1 row: 1 ms p50; 8 rows: 4.5 ms p50.
  profiles.setPoints('m', 'v', [
    { rows: 1, p50Ms: 1, p99Ms: 2, samples: 100 },
    { rows: 8, p50Ms: 4.5, p99Ms: 6, samples: 100 },
  ]);
  for (const v of ['v', 'unprofiled']) scheduler.addVariant('m', v, { maxBatch: 8, maxQueueDelayMs: 0 }, true);
  const submit = (variant: string, rows: number) =>
    scheduler.submit({
      model: 'm',
      variant,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 1], data: new Float32Array(rows) }],
      rows,
      arrivalMs: clock.now(),
      deadlineAtMs: clock.now() + 100,
      priority: 0,
    });
  return { clock, replica, pool, profiles, split, computeMs, submit };
}

describe('Scheduler: predicted compute time for inline runs', () => {
  test('each batch carries its profile p50 less the hop; none without a profile', async () => {
    const s = setup();
    const answers = [s.submit('v', 1), s.submit('v', 3), s.submit('unprofiled', 1)];
    await flush();
    s.replica.running[0]?.finish();
    await flush();
    s.replica.running[0]?.finish();
    await flush();
    s.replica.running[0]?.finish();
    await Promise.all(answers);
    const expected = s.replica.history.map((t) => [t.variant, t.rows, t.expectedMs]);
    // 3 rows: 1 + (2/7) x 3.5 = 2 ms p50, less the 0.1 ms hop.
    assert.deepEqual(expected, [
      ['v', 1, 1 - s.profiles.hopMs],
      ['v', 3, 2 - s.profiles.hopMs],
      ['unprofiled', 1, undefined],
    ]);
  });

  test('a variant with a candidate (canary or shadow) gets no prediction, so no batch of it runs inline', async () => {
    const s = setup();
    s.split.set('m', 'v', { revision: 'sha256:c', canaryShare: 0, shadowShare: 0 });
    const answer = s.submit('v', 1);
    await flush();
    s.replica.running[0]?.finish();
    await answer;
    assert.equal(s.replica.history[0]?.expectedMs, undefined);
  });

  test("an inline batch feeds its run time plus the hop; a worker's, at most what the gateway saw", async () => {
    const s = setup();
    const inline = s.submit('v', 1);
    await flush();
    s.replica.running[0]?.finish(0.5, true);
    await inline;
    const worker = s.submit('v', 1);
    await flush();
    s.replica.running[0]?.finish(0.5);
    await worker;
    // The manual clock did not move: the gateway saw 0 ms; the inline batch still counts the hop the profile models.
    assert.deepEqual(s.computeMs, [0.5 + s.profiles.hopMs, 0]);
  });
});

describe('Scheduler: batches run now', () => {
  const rowsOf = (r: { outputs: { data: unknown }[] }) => Array.from(r.outputs[0]?.data as Float32Array);

  test('a batch the replica runs inline is answered with no timeout timer and no call to run()', async () => {
    const s = setup();
    s.replica.inline = 'run';
    const answer = s.submit('v', 2);
    assert.equal(s.replica.offeredNow.length, 1, 'offered at dispatch');
    assert.equal(s.replica.running.length, 0, 'run() never called');
    assert.equal(s.clock.pendingTimers, 0, 'no batch timeout armed');
    assert.deepEqual(rowsOf(await answer), [0, 0]);
    assert.deepEqual(s.computeMs, [0.05 + s.profiles.hopMs]);
    const expected = s.replica.offeredNow[0]?.expectedMs as number;
    assert.ok(Math.abs(expected - (1.5 - s.profiles.hopMs)) < 1e-9, `predicted ${expected}`);
  });

  test("a failing inline run is its requests' error; the next batch is served", async () => {
    const s = setup();
    s.replica.inline = 'fail';
    const failed = await s.submit('v', 1).catch((e: { code?: string }) => e.code);
    assert.equal(failed, 'SLOGATE_ERR_INFERENCE_FAILED');
    s.replica.inline = 'run';
    assert.deepEqual(rowsOf(await s.submit('v', 1)), [0]);
    assert.equal(s.clock.pendingTimers, 0);
  });

  test('a batch left to run() goes as built, with its timeout; a retry elsewhere builds its own task', async () => {
    const s = setup([new FakeReplica('r0'), new FakeReplica('r1')]);
    const answer = s.submit('v', 1);
    await flush();
    const offered = s.replica.offeredNow[0];
    const ran = s.replica.running[0]?.task;
    assert.ok(offered !== undefined && ran === offered, 'the task offered is the one run');
    assert.equal(s.clock.pendingTimers, 1, 'its batch timeout');
    s.replica.running[0]?.fault();
    await flush();
    const other = s.pool.replicas[1] as FakeReplica;
    const retried = other.running[0]?.task;
    assert.ok(retried !== undefined && retried !== offered, 'the retry has a task of its own');
    assert.deepEqual(retried.inputs, offered.inputs);
    other.running[0]?.finish();
    assert.deepEqual(rowsOf(await answer), [0]);
  });

  test('a canary batch is never offered to run now', async () => {
    const s = setup();
    s.replica.inline = 'run';
    s.split.set('m', 'v', { revision: 'sha256:c', canaryShare: 1, shadowShare: 0 });
    const answer = s.submit('v', 1);
    await flush();
    assert.equal(s.replica.offeredNow.length, 0);
    s.replica.running[0]?.finish();
    await answer;
  });
});
