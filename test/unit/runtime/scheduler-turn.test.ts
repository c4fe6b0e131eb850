// Batches per event-loop turn: under a clock with afterTurn (the system clock's setImmediate), a submit's dispatch
// waits until the turn's other requests are queued, so they go out together instead of the first alone.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientGone } from '../../../core/cancel.js';
import { ManualClock } from '../../../core/clock.js';
import { LatencyProfiles } from '../../../runtime/latency-profile.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { Scheduler } from '../../../runtime/scheduler.js';
import { FakeReplica, flush } from './fake-replica.js';

/** A manual clock whose turn ends when the test says so. */
class TurnClock extends ManualClock {
  readonly due: (() => void)[] = [];

  afterTurn(fn: () => void): void {
    this.due.push(fn);
  }

  endTurn(): void {
    for (const fn of this.due.splice(0)) fn();
  }
}

function setup() {
  const clock = new TurnClock(1000);
  const replica = new FakeReplica('r0');
  const pool = new ReplicaPool([replica], { clock, retryWaitMs: 1000 });
  const profiles = new LatencyProfiles({ now: () => clock.now() });
  const scheduler = new Scheduler({ clock, pool, profiles, maxQueueRows: 1000 });
  profiles.setPoints('m', 'v', [
    { rows: 1, p50Ms: 1, p99Ms: 2, samples: 100 },
    { rows: 8, p50Ms: 4, p99Ms: 6, samples: 100 },
  ]);
  scheduler.addVariant('m', 'v', { maxBatch: 8, maxQueueDelayMs: 0 }, true);
  const submit = (id: number, signal?: ClientGone) =>
    scheduler.submit({
      model: 'm',
      variant: 'v',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: new Float32Array([id]) }],
      rows: 1,
      arrivalMs: clock.now(),
      deadlineAtMs: clock.now() + 100,
      priority: 0,
      signal,
    });
  const rowsOf = (batch: number) => Array.from((replica.history[batch]?.inputs[0]?.data ?? []) as Float32Array);
  return { clock, replica, scheduler, submit, rowsOf };
}

describe('Scheduler: one batch per event-loop turn', () => {
  test("the turn's requests wait for its end and then go out as one batch", async () => {
    const s = setup();
    const answers = [s.submit(0), s.submit(1), s.submit(2)];
    await flush();
    assert.equal(s.replica.history.length, 0, 'nothing runs before the turn ends');
    assert.equal(s.clock.due.length, 1, 'one dispatch is due, however many requests');
    assert.equal(s.scheduler.queuedRows('m', 'v'), 3);
    s.clock.endTurn();
    await flush();
    assert.deepEqual(s.rowsOf(0), [0, 1, 2]);
    s.replica.running[0]?.finish();
    const results = await Promise.all(answers);
    assert.deepEqual(
      results.map((r) => r.batchRows),
      [3, 3, 3],
    );
  });

  test('a request of a later turn, with the replica busy, waits for the slot as before', async () => {
    const s = setup();
    const first = s.submit(0);
    s.clock.endTurn();
    await flush();
    const second = s.submit(1);
    s.clock.endTurn();
    await flush();
    assert.equal(s.replica.history.length, 1, 'the replica is busy with the first');
    s.replica.running[0]?.finish();
    await flush();
    assert.deepEqual(s.rowsOf(1), [1]);
    s.replica.running[0]?.finish();
    await Promise.all([first, second]);
  });

  test('a request whose client left before the turn ended never runs', async () => {
    const s = setup();
    const gone = new ClientGone();
    const kept = s.submit(0);
    const left = s.submit(1, gone).catch((e: Error & { code?: string }) => e.code);
    gone.abort();
    s.clock.endTurn();
    await flush();
    assert.deepEqual(s.rowsOf(0), [0]);
    assert.equal(await left, 'SLOGATE_ERR_CANCELLED');
    s.replica.running[0]?.finish();
    await kept;
  });
});
