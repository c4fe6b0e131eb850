// Shadow copies in the scheduler: every batch is copied at light load; near saturation the gate (shadow-gate.ts)
// lets one through per floor interval, so live batches rarely find the replica running a copy.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { LatencyProfiles } from '../../../runtime/latency-profile.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { Scheduler } from '../../../runtime/scheduler.js';
import { TrafficSplit } from '../../../runtime/traffic-split.js';
import { FakeReplica, flush } from './fake-replica.js';

const CANDIDATE = 'sha256:c';

function setup() {
  const clock = new ManualClock(1000);
  const replica = new FakeReplica('r0');
  const pool = new ReplicaPool([replica], { clock, retryWaitMs: 1000 });
  const profiles = new LatencyProfiles({ now: () => clock.now() });
  const split = new TrafficSplit();
  const scheduler = new Scheduler({ clock, pool, profiles, split, maxQueueRows: 1000 });
  // A 1-row batch takes 1 ms (p50).
  profiles.setPoints('m', 'v', [
    { rows: 1, p50Ms: 1, p99Ms: 2, samples: 100 },
    { rows: 8, p50Ms: 4, p99Ms: 6, samples: 100 },
  ]);
  scheduler.addVariant('m', 'v', { maxBatch: 8, maxQueueDelayMs: 0 }, true);
  /** One-row requests every `gapMs` for `forMs`, each answered (with any shadow copy) before the next. */
  const run = async (gapMs: number, forMs: number) => {
    for (let t = 0; t < forMs; t += gapMs) {
      clock.advance(gapMs);
      const answer = scheduler.submit({
        model: 'm',
        variant: 'v',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: new Float32Array(1) }],
        rows: 1,
        arrivalMs: clock.now(),
        deadlineAtMs: clock.now() + 100,
        priority: 0,
      });
      for (let i = 0; i < 4; i++) {
        await flush();
        for (const b of [...replica.running]) b.finish();
      }
      await answer;
    }
  };
  const shadows = () => replica.history.filter((t) => t.revision === CANDIDATE).length;
  return { split, run, shadows };
}

describe('Scheduler: shadow copies only on spare capacity', () => {
  test('at light load every batch is copied', async () => {
    const s = setup();
    s.split.set('m', 'v', { revision: CANDIDATE, canaryShare: 0, shadowShare: 1 });
    await s.run(20, 1000); // 0.05 arrivals per ms: 0.05 expected during a 1 ms copy
    assert.equal(s.shadows(), 50);
  });

  test('near saturation one copy runs per floor interval', async () => {
    const s = setup();
    await s.run(2, 1000); // 0.5 arrivals per ms, no rollout yet
    s.split.set('m', 'v', { revision: CANDIDATE, canaryShare: 0, shadowShare: 1 });
    await s.run(2, 600); // 300 batches, 0.5 expected arrivals during each copy
    assert.equal(s.shadows(), 3, 'at 0, 250 and 500 ms');
  });
});
