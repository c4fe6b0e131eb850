// Removing a variant from a running scheduler: nothing new is queued on it, what is queued and running finishes, and
// only then is it forgotten; at the timeout the rest is refused with its own code and counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import type { SlogateError } from '../../../core/errors.js';
import { LatencyProfiles } from '../../../runtime/latency-profile.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { Scheduler } from '../../../runtime/scheduler.js';
import { FakeReplica, flush } from './fake-replica.js';

function setup() {
  const clock = new ManualClock(1000);
  const replica = new FakeReplica('r0');
  const pool = new ReplicaPool([replica], { clock, retryWaitMs: 1000 });
  const profiles = new LatencyProfiles();
  const drops: string[] = [];
  const scheduler = new Scheduler({
    clock,
    pool,
    profiles,
    maxQueueRows: 1000,
    events: { onDrop: (_m, _v, code) => drops.push(code) },
  });
  for (const v of ['old', 'keep']) {
    profiles.setPoints('m', v, [{ rows: 1, p50Ms: 1, p99Ms: 2, samples: 100 }]);
    scheduler.addVariant('m', v, { maxBatch: 1, maxQueueDelayMs: 0 }, true);
  }
  const submit = (variant: string) => {
    const out: { ok?: boolean; code?: string } = {};
    const done = scheduler
      .submit({
        model: 'm',
        variant,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: new Float32Array(1) }],
        rows: 1,
        arrivalMs: clock.now(),
        deadlineAtMs: clock.now() + 60_000,
        priority: 0,
      })
      .then(
        () => {
          out.ok = true;
        },
        (e: SlogateError) => {
          out.code = e.code;
        },
      );
    return { out, done };
  };
  /** Finishes the running batch and lets the next one start. */
  const step = async () => {
    replica.running[0]?.finish();
    await flush();
    clock.advance(10);
    await flush();
  };
  return { clock, scheduler, drops, submit, step };
}

test('queued and running requests of a removed variant finish; new ones are refused; then it is gone', async () => {
  const s = setup();
  const reqs = [s.submit('old'), s.submit('old'), s.submit('old')];
  await flush();
  let resolved: boolean | undefined;
  const removing = s.scheduler.removeVariant('m', 'old', 5000).then((d) => {
    resolved = d;
  });
  const late = s.submit('old');
  await late.done;
  assert.equal(late.out.code, 'SLOGATE_ERR_VARIANT_REMOVED');
  for (let i = 0; i < 3; i++) {
    assert.equal(resolved, undefined, 'waits while the variant has work');
    await s.step();
  }
  await removing;
  assert.equal(resolved, true);
  for (const r of reqs) {
    await r.done;
    assert.equal(r.out.ok, true);
  }
  assert.throws(() => s.scheduler.knobs('m', 'old'), { code: 'SLOGATE_ERR_VARIANT_NOT_FOUND' });
  assert.equal(s.scheduler.migrate('m', 'keep', 'old', 'r', 1), 0, 'nothing moves to a removed variant');
});

test('at the timeout what is still queued is refused with SLOGATE_ERR_VARIANT_REMOVED and counted', async () => {
  const s = setup();
  const running = s.submit('old');
  const queued = s.submit('old');
  await flush();
  const removing = s.scheduler.removeVariant('m', 'old', 50);
  for (let i = 0; i < 6; i++) {
    s.clock.advance(10);
    await flush();
  }
  assert.equal(await removing, false);
  await queued.done;
  assert.equal(queued.out.code, 'SLOGATE_ERR_VARIANT_REMOVED');
  assert.deepEqual(s.drops, ['SLOGATE_ERR_VARIANT_REMOVED']);
  await s.step();
  await running.done;
  assert.equal(running.out.ok, true, 'the batch already running is answered');
});
