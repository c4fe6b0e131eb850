// The rollout runner on the manual clock with a fake runtime: the shares it sets at each step, the rollback that
// takes the candidate's traffic to 0 before anything else, promotion, and what it records in the store and metrics.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../../core/clock.js';
import { silentLogger } from '../../../../core/logger.js';
import { Metrics } from '../../../../core/metrics.js';
import { RolloutPolicySchema } from '../../../../core/rollout-config.js';
import { RolloutRunner, slowerOf } from '../../../../policies/rollout/rollout-runner.js';
import { LatencyProfiles } from '../../../../runtime/latency-profile.js';
import { ModelStore } from '../../../../runtime/model-store.js';
import type { RuntimeRevisions } from '../../../../runtime/revisions.js';
import { TrafficSplit } from '../../../../runtime/traffic-split.js';
import { tempDir } from '../../../helpers.js';

const who = { who: 'test', why: 'test' };

function setup() {
  const clock = new ManualClock();
  const store = ModelStore.open(tempDir(), { keepRevisions: 5, maxFileBytes: 1024 });
  const active = store.add('m', 'v', new Uint8Array([1]), 'upload', who).revision;
  store.activate('m', 'v', active, who);
  const revision = store.add('m', 'v', new Uint8Array([2]), 'upload', who).revision;
  const calls: string[] = [];
  const revisions = {
    activate: async () => void calls.push('activate'),
    unload: async () => void calls.push('unload'),
  } as unknown as RuntimeRevisions;
  const split = new TrafficSplit();
  const metrics = new Metrics({ defaultMetrics: false });
  const runtime = { split, revisions, profiles: new LatencyProfiles() };
  const runner = new RolloutRunner({ runtime, store, metrics, logger: silentLogger, clock });
  const policy = RolloutPolicySchema.parse({
    shadowPercent: 0,
    steps: [10, 100],
    bakeSeconds: 1,
    minRequests: 20,
  });
  const candidate = { model: 'm', variant: 'v', revision, path: '/x', sizeBytes: 1 };
  const start = () =>
    runner.start({
      candidate,
      policy,
      previous: active,
      accuracy: 0.9,
      candidatePoints: undefined,
      activePoints: undefined,
    });
  /** Batches of 1 row on each revision, all fine unless `errors`. */
  const feed = (role: 'active' | 'candidate', n: number, computeMs: number, errors = 0) => {
    for (let i = 0; i < n; i++)
      split.reportBatch({
        model: 'm',
        variant: 'v',
        role,
        rows: 1,
        requests: 1,
        computeMs: i < errors ? undefined : computeMs,
        error: i < errors ? 'SLOGATE_ERR_INTERNAL' : undefined,
      });
  };
  return { clock, store, split, runner, start, feed, calls, metrics, active, revision };
}

describe('RolloutRunner', () => {
  test('canary steps on the clock, then promotion: shares, store, events', async () => {
    const s = setup();
    s.start();
    assert.equal(s.split.get('m', 'v')?.canaryShare, 0.1);
    assert.equal(s.store.describe('m', 'v').revisions.find((r) => r.revision === s.revision)?.state, 'canary');
    s.feed('active', 200, 1);
    s.feed('candidate', 25, 1);
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v')?.canaryShare, 0.1, 'the bake is not over');
    s.clock.advance(1000);
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v')?.canaryShare, 1, 'advanced to the last step');
    s.feed('candidate', 25, 1);
    s.clock.advance(1000);
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v'), undefined);
    assert.deepEqual(s.calls, ['activate']);
    assert.equal(s.store.activeRevision('m', 'v'), s.revision);
    const done = s.runner.list().finished[0];
    assert.deepEqual(
      done?.events.map((e) => e.event),
      ['started', 'advanced', 'promoted'],
    );
    const text = await s.metrics.registry.metrics();
    assert.match(text, /slogate_rollout_events_total\{model="m",variant="v",event="promoted"\} 1/);
  });

  test('an error rolls back at once: share 0, revision rolled-back with the reason, candidate unloaded', async () => {
    const s = setup();
    s.start();
    s.feed('active', 200, 1);
    s.feed('candidate', 5, 1, 1);
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v'), undefined);
    assert.deepEqual(s.calls, ['unload']);
    assert.equal(s.store.activeRevision('m', 'v'), s.active);
    assert.equal(s.store.describe('m', 'v').revisions.find((r) => r.revision === s.revision)?.state, 'rolled-back');
    assert.match(s.store.history('m').at(-1)?.why ?? '', /^canary 10%: error rate 0\.0500 \(1 of 5\)/);
    assert.equal(s.runner.list().running.length, 0);
  });

  test('a candidate run a runtime node cannot run (here a shadow run) rolls back at once naming the node', async () => {
    const s = setup();
    s.start();
    s.feed('active', 200, 1);
    s.split.reportShadow({
      model: 'm',
      variant: 'v',
      outcome: 'compared',
      rows: 1,
      agreedRows: 0,
      computeMs: undefined,
      activeComputeMs: 1,
      error: 'SLOGATE_ERR_NODE_REVISION',
      detail: 'runtime node remote-1 (http://127.0.0.1:9) cannot run sha256:x: HTTP 404',
    });
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v'), undefined);
    assert.deepEqual(s.calls, ['unload']);
    const why = s.store.history('m').at(-1)?.why ?? '';
    assert.equal(why, 'canary 10%: runtime node remote-1 (http://127.0.0.1:9) cannot run sha256:x: HTTP 404');
  });

  test("the engine's note names the rollout, and in shadow the extra work on the variant's replicas", async () => {
    const s = setup();
    const policy = RolloutPolicySchema.parse({ shadowPercent: 50, shadowSeconds: 1, steps: [10, 100], minRequests: 1 });
    const candidate = { model: 'm', variant: 'v', revision: s.revision, path: '/x', sizeBytes: 1 };
    const points = (ms: number) => [{ rows: 8, p50Ms: ms, p99Ms: ms, samples: 50 }];
    s.runner.start({
      candidate,
      policy,
      previous: s.active,
      accuracy: 0.9,
      candidatePoints: points(1.9),
      activePoints: points(1.2),
    });
    assert.equal(s.split.get('m', 'v')?.shadowShare, 0.5);
    assert.equal(
      s.runner.note('m', 'v'),
      "v at shadow 50%: planning with the candidate's 1.9 ms at batch 8, 50% more work on its replicas",
    );
    assert.equal(s.runner.note('m', 'other'), undefined);
  });

  test('pause holds, resume lets go, abort rolls back; a second start of the variant is refused', async () => {
    const s = setup();
    s.start();
    assert.throws(() => s.start(), /already running/);
    s.runner.pause('m', 'v', true);
    s.feed('active', 200, 1);
    s.feed('candidate', 25, 1);
    s.clock.advance(5000);
    await s.runner.tick();
    assert.equal(s.split.get('m', 'v')?.canaryShare, 0.1);
    assert.equal(s.runner.list().running[0]?.next.reason, 'canary 10%: paused');
    await s.runner.abort('m', 'v', 'test');
    assert.equal(s.split.get('m', 'v'), undefined);
    assert.equal(s.runner.list().finished[0]?.state, 'aborted');
    assert.throws(() => s.runner.pause('m', 'v', false), /no running rollout/);
  });

  test('the engine plans with the slower profile point by point', () => {
    const p = (rows: number, p50Ms: number, p99Ms: number) => ({ rows, p50Ms, p99Ms, samples: 5 });
    assert.deepEqual(slowerOf([p(1, 1, 2), p(2, 3, 4)], [p(1, 2, 1), p(2, 1, 9)]), [p(1, 2, 2), p(2, 3, 9)]);
    assert.deepEqual(slowerOf(undefined, [p(1, 1, 1)]), [p(1, 1, 1)]);
  });
});
