// The rollout judge, table-driven: wait, advance, promote, or roll back at once, with the reason in numbers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RolloutPolicySchema } from '../../../../core/rollout-config.js';
import {
  decideRollout,
  type RevisionEvidence,
  type RolloutSnapshot,
  tailQuantile,
} from '../../../../policies/rollout/decide-rollout.js';

const policy = RolloutPolicySchema.parse({});
/** Service time at one batch size: every tail quantile at `tailMs`. */
const lat = (rows: number, samples: number, tailMs: number, p50Ms = tailMs / 2) => ({
  rows,
  samples,
  p50Ms,
  p75Ms: tailMs,
  p90Ms: tailMs,
  p95Ms: tailMs,
  p99Ms: tailMs,
});
const ev = (requests: number, errors = 0, latency: RevisionEvidence['latency'] = []): RevisionEvidence => ({
  requests,
  errors,
  latency,
});

function snap(over: Partial<RolloutSnapshot>): RolloutSnapshot {
  return {
    nowMs: 100_000,
    policy,
    phase: 'canary',
    step: 1,
    phaseStartedMs: 0,
    paused: false,
    candidate: ev(500, 0, [lat(4, 40, 12.5)]),
    active: ev(2000, 0, [lat(4, 200, 12.1)]),
    shadow: { comparedRows: 0, agreedRows: 0, dropped: 0 },
    ...over,
  };
}

describe('tailQuantile', () => {
  for (const [n, name] of [
    [20, 'p75'],
    [50, 'p90'],
    [100, 'p95'],
    [499, 'p95'],
    [500, 'p99'],
  ] as const)
    test(`${n} samples: ${name}`, () => assert.equal(tailQuantile(n).name, name));
});

describe('decideRollout', () => {
  const cases: [string, Partial<RolloutSnapshot>, string, RegExp][] = [
    ['healthy step after its bake: advance', {}, 'advance', /^canary 25% held 30\.0 s: 500 requests, 0 errors/],
    [
      'last step after its bake: promote',
      { step: 3 },
      'promote',
      /^canary 100% held 30\.0 s: .*p75 12\.5 ms vs active 12\.1 ms at batch 4/,
    ],
    ['bake time not over: wait', { nowMs: 10_000 }, 'wait', /^canary 25%: bake 20\.0 s more$/],
    [
      'too few requests: wait however long',
      { candidate: ev(150, 0, [lat(4, 40, 12)]) },
      'wait',
      /^canary 25%: 150 of 200 requests$/,
    ],
    ['paused: wait', { paused: true }, 'wait', /^canary 25%: paused$/],
    [
      'a runtime node cannot run the candidate: roll back at once, paused or not, naming it',
      {
        nowMs: 5_000,
        paused: true,
        candidate: ev(3, 1),
        unservable: 'runtime node remote-0 (http://n:1) cannot run x',
      },
      'roll-back',
      /^canary 25%: runtime node remote-0 \(http:\/\/n:1\) cannot run x$/,
    ],
    [
      'p99 over the limit on 500 batches each: roll back, even before the bake ends',
      { nowMs: 5_000, candidate: ev(2000, 0, [lat(4, 500, 31.2)]), active: ev(9000, 0, [lat(4, 512, 12.1)]) },
      'roll-back',
      /^canary 25%: p99 31\.2 ms vs active 12\.1 ms at batch 4, limit \+20%$/,
    ],
    [
      'tail over the limit on 30 batches: judged on the p75 (five samples above it, not one stall)',
      { nowMs: 5_000, candidate: ev(120, 0, [lat(4, 30, 31.2)]) },
      'roll-back',
      /^canary 25%: p75 31\.2 ms vs active 12\.1 ms at batch 4, limit \+20%$/,
    ],
    [
      'p99 over the limit on too few batches: not judged yet',
      { nowMs: 5_000, candidate: ev(40, 0, [lat(4, 10, 31.2)]) },
      'wait',
      /^canary 25%: bake/,
    ],
    [
      'no batch size both ran 20 times: wait for latency evidence, however long the bake',
      { candidate: ev(500, 0, [lat(4, 19, 12), lat(2, 40, 12)]) },
      'wait',
      /^canary 25%: latency: 19 of 20 candidate batches at a size the active revision ran$/,
    ],
    [
      'p50 over the limit while a stall lifted the active p99: roll back on the p50',
      { candidate: ev(500, 0, [lat(4, 40, 31, 30)]), active: ev(2000, 0, [lat(4, 200, 40, 6)]) },
      'roll-back',
      /^canary 25%: p50 30\.0 ms vs active 6\.0 ms at batch 4, limit \+20%$/,
    ],
    [
      'a first step at 100%: the active revision ran no batches, latency is not compared',
      { step: 3, active: ev(0), candidate: ev(500, 0, [lat(4, 40, 99)]) },
      'promote',
      /^canary 100% held 30\.0 s: 500 requests, 0 errors$/,
    ],
    [
      'a sub-millisecond tail over the ratio, the p50 level: scheduling noise, advance',
      {
        candidate: ev(2000, 0, [lat(1, 600, 1.0, 0.3)]),
        active: ev(9000, 0, [lat(1, 900, 0.6, 0.3)]),
      },
      'advance',
      /p99 1\.0 ms vs active 0\.6 ms/,
    ],
    [
      'a p50 0.1 ms slower at 0.4 ms: over the ratio, under the p50 floor: advance',
      {
        candidate: ev(2000, 0, [lat(1, 600, 0.7, 0.5)]),
        active: ev(9000, 0, [lat(1, 900, 0.6, 0.4)]),
      },
      'advance',
      /p99 0\.7 ms vs active 0\.6 ms/,
    ],
    [
      'a sub-millisecond model twice as slow: the p50 rolls it back (0.4 ms slower)',
      {
        candidate: ev(2000, 0, [lat(1, 600, 0.9, 0.8)]),
        active: ev(9000, 0, [lat(1, 900, 0.5, 0.4)]),
      },
      'roll-back',
      /^canary 25%: p50 0\.8 ms vs active 0\.4 ms at batch 1, limit \+20%$/,
    ],
    [
      'p99 within the limit',
      { candidate: ev(500, 0, [lat(4, 40, 14.5)]) },
      'advance',
      /p75 14\.5 ms vs active 12\.1 ms/,
    ],
    [
      'compared at the batch size both ran most',
      { candidate: ev(500, 0, [lat(1, 25, 99), lat(4, 60, 12)]), active: ev(900, 0, [lat(1, 20, 1), lat(4, 90, 12)]) },
      'advance',
      /at batch 4/,
    ],
    [
      'one early error: divided by minRequests, over the limit',
      { nowMs: 1_000, candidate: ev(10, 1) },
      'roll-back',
      /^canary 25%: error rate 0\.0050 \(1 of 10\) vs active 0\.0000 \(0 of 2000\), limit \+0\.0010$/,
    ],
    [
      'errors no worse than the active revision: fine',
      { candidate: ev(1000, 1, [lat(4, 40, 12)]), active: ev(1000, 1, [lat(4, 40, 12)]) },
      'advance',
      /1 errors/,
    ],
    [
      'shadow agreement below the floor: roll back at the 5th disagreement of 200',
      {
        phase: 'shadow',
        step: 0,
        nowMs: 1000,
        candidate: ev(60),
        shadow: { comparedRows: 60, agreedRows: 55, dropped: 0 },
      },
      'roll-back',
      /^shadow 5%: agreement 0\.917 \(55 of 60 rows\), limit 0\.980$/,
    ],
    [
      'shadow with 4 disagreements in 60: not judged yet',
      {
        phase: 'shadow',
        step: 0,
        nowMs: 1000,
        candidate: ev(60),
        shadow: { comparedRows: 60, agreedRows: 56, dropped: 0 },
      },
      'wait',
      /^shadow 5%: bake 59\.0 s more, 60 of 200 shadowed rows, latency: 0 of 20 candidate batches at a size/,
    ],
    [
      'shadow starved of capacity: wait, saying so',
      {
        phase: 'shadow',
        step: 0,
        nowMs: 70_000,
        candidate: ev(10),
        shadow: { comparedRows: 10, agreedRows: 10, dropped: 7 },
      },
      'wait',
      /10 of 200 shadowed rows \(7 shadow runs dropped for lack of capacity\)/,
    ],
    [
      'shadow done: advance to the first canary step',
      {
        phase: 'shadow',
        step: 0,
        nowMs: 61_000,
        candidate: ev(300, 0, [lat(4, 75, 12)]),
        shadow: { comparedRows: 300, agreedRows: 299, dropped: 0 },
      },
      'advance',
      /^shadow 5% held 60\.0 s: .*agreement 0\.997 over 300 rows/,
    ],
  ];
  for (const [name, over, action, reason] of cases)
    test(name, () => {
      const d = decideRollout(snap(over));
      assert.equal(d.action, action, d.reason);
      assert.match(d.reason, reason);
    });

  test('a wait on bake time alone says until when', () => {
    assert.equal(decideRollout(snap({ nowMs: 10_000 })).untilMs, 30_000);
    assert.equal(decideRollout(snap({ candidate: ev(150) })).untilMs, undefined);
  });

  test('a paused rollout still rolls back on a crossed threshold', () => {
    assert.equal(decideRollout(snap({ paused: true, candidate: ev(100, 5) })).action, 'roll-back');
  });
});
