// Best-effort service (pure): which requests get it, which keep a strict deadline, and when load sheds them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BestEffortQuery, bestEffortDeadline } from '../../../policies/best-effort.js';

const query = (o: Partial<BestEffortQuery> = {}): BestEffortQuery => ({
  nowMs: 0,
  deadlineAtMs: 25,
  idleMs: 90,
  idleP99Ms: () => 100,
  clientTimeout: false,
  backlogMs: () => 0,
  p99Ms: 25,
  underPressure: false,
  ...o,
});

const cases: { name: string; q: Partial<BestEffortQuery>; want: number | undefined | 'shed' }[] = [
  { name: 'it fits alone: served as usual', q: { idleMs: 20 }, want: undefined },
  { name: 'never fits, no client timeout, idle: best-effort, behind the queue', q: {}, want: 0 + 0 + 200 + 25 },
  { name: 'the queue ahead pushes the best-effort deadline', q: { backlogMs: () => 10 }, want: 10 + 200 + 25 },
  { name: 'a client timeout keeps the deadline strict', q: { clientTimeout: true }, want: undefined },
  { name: 'under pressure: shed', q: { underPressure: true }, want: 'shed' },
  { name: 'a queue longer than the p99 target: shed', q: { backlogMs: () => 26 }, want: 'shed' },
];
for (const c of cases)
  test(c.name, () => {
    if (c.want === 'shed') assert.throws(() => bestEffortDeadline(query(c.q)), { code: 'SLOGATE_ERR_SHED' });
    else assert.equal(bestEffortDeadline(query(c.q)), c.want);
  });
