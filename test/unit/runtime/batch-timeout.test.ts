// The batch timeout rule, table-driven: a batch is never given up while its latest deadline is ahead, nor within
// p99Factor of its variant's p99 time; the margin is added to the longer of the two, and the floor bounds it below.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { batchTimeoutMs } from '../../../runtime/batch-timeout.js';

const KNOBS = { p99Factor: 4, marginMs: 100, floorMs: 250 };

describe('batchTimeoutMs = max(floor, max(latest deadline - now, factor x p99) + margin)', () => {
  const cases: [string, { now: number; deadline: number; p99: number }, number][] = [
    ['a far deadline wins: 500 ms left + 100', { now: 1000, deadline: 1500, p99: 10 }, 600],
    ['a slow variant wins: 4 x 200 ms + 100', { now: 1000, deadline: 1050, p99: 200 }, 900],
    ['a tight deadline and a fast variant get the floor', { now: 1000, deadline: 1020, p99: 2 }, 250],
    ['a deadline already passed counts as 0 left', { now: 1000, deadline: 900, p99: 100 }, 500],
    ['no profile (p99 0) and no deadline left: the floor', { now: 1000, deadline: 1000, p99: 0 }, 250],
    ['a non-finite deadline falls back to the floor', { now: 0, deadline: Number.POSITIVE_INFINITY, p99: 1 }, 250],
  ];
  for (const [name, c, want] of cases) {
    test(name, () => {
      assert.equal(batchTimeoutMs({ nowMs: c.now, latestDeadlineAtMs: c.deadline, p99Ms: c.p99 }, KNOBS), want);
    });
  }

  test('the margin is added once, after the longer term', () => {
    const t = batchTimeoutMs({ nowMs: 0, latestDeadlineAtMs: 1000, p99Ms: 100 }, { ...KNOBS, marginMs: 7 });
    assert.equal(t, 1007);
  });
});
