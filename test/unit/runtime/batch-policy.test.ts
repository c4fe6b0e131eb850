import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchKnobs, BatchPlan, QueueState } from '../../../runtime/batch-policy.js';
import { oneByOne, planBatch } from '../../../runtime/batch-policy.js';

// Service time 1 ms + 0.5 ms per extra row (p99).
const svc = (rows: number) => 1 + 0.5 * (rows - 1);
const NOW = 100;

interface Case {
  name: string;
  q: QueueState;
  knobs: BatchKnobs;
  want: BatchPlan;
}

const q = (rows: number, headDeadlineMs = 1000, headArrivalMs = NOW, headRows = 1): QueueState => ({
  rows,
  headRows,
  headArrivalMs,
  headDeadlineMs,
});

const cases: Case[] = [
  {
    name: 'work-conserving: no delay sends what is queued',
    q: q(3),
    knobs: { maxBatch: 8, maxQueueDelayMs: 0 },
    want: { action: 'send', rows: 3 },
  },
  {
    name: 'full queue sends maxBatch',
    q: q(20),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5 },
    want: { action: 'send', rows: 8 },
  },
  {
    name: 'under maxBatch with a delay: wait until arrival + delay',
    q: q(3),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5 },
    want: { action: 'wait', untilMs: NOW + 5 },
  },
  {
    name: 'no arrivals expected (rate 0): never waits for partners that cannot come',
    q: q(1),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5, arrivalRps: 0 },
    want: { action: 'send', rows: 1 },
  },
  {
    name: 'fewer than one arrival expected within the wait (100/s x 5 ms = 0.5): send',
    q: q(1),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5, arrivalRps: 100 },
    want: { action: 'send', rows: 1 },
  },
  {
    name: 'one arrival expected within the wait (200/s x 5 ms): wait',
    q: q(1),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5, arrivalRps: 200 },
    want: { action: 'wait', untilMs: NOW + 5 },
  },
  {
    name: 'expected arrivals count over what is left of the wait (1000/s, 0.5 ms left): send',
    q: q(2, 1000, NOW - 4.5),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5, arrivalRps: 1000 },
    want: { action: 'send', rows: 2 },
  },
  {
    name: 'delay already spent: send',
    q: q(3, 1000, NOW - 6),
    knobs: { maxBatch: 8, maxQueueDelayMs: 5 },
    want: { action: 'send', rows: 3 },
  },
  {
    name: 'head deadline bounds the wait: latest start = deadline - S(rows + 1)',
    q: q(3, NOW + 4),
    knobs: { maxBatch: 8, maxQueueDelayMs: 50 },
    want: { action: 'wait', untilMs: NOW + 4 - svc(4) },
  },
  {
    name: 'past the latest start: send now',
    q: q(3, NOW + 2.4),
    knobs: { maxBatch: 8, maxQueueDelayMs: 50 },
    want: { action: 'send', rows: 3 },
  },
  {
    name: 'preferred size reached: send it',
    q: q(4),
    knobs: { maxBatch: 8, maxQueueDelayMs: 50, preferredBatchSizes: [4] },
    want: { action: 'send', rows: 4 },
  },
  {
    name: 'beyond the largest preferred size: send',
    q: q(6),
    knobs: { maxBatch: 8, maxQueueDelayMs: 50, preferredBatchSizes: [2, 4] },
    want: { action: 'send', rows: 6 },
  },
  {
    name: 'between preferred sizes: wait',
    q: q(3),
    knobs: { maxBatch: 8, maxQueueDelayMs: 50, preferredBatchSizes: [2, 4] },
    want: { action: 'wait', untilMs: NOW + 50 },
  },
  {
    name: 'batch shrinks to fit the head deadline (8 rows = 4.5 ms, only 3 ms left -> 5 rows)',
    q: q(8, NOW + 3),
    knobs: { maxBatch: 8, maxQueueDelayMs: 0 },
    want: { action: 'send', rows: 5 },
  },
  {
    name: 'a head larger than maxBatch still goes, alone',
    q: q(12, 1000, NOW, 12),
    knobs: { maxBatch: 8, maxQueueDelayMs: 0 },
    want: { action: 'send', rows: 12 },
  },
  {
    name: 'never shrinks below the head, even when it cannot make it',
    q: q(4, NOW + 0.1, NOW, 2),
    knobs: { maxBatch: 8, maxQueueDelayMs: 0 },
    want: { action: 'send', rows: 2 },
  },
];

for (const c of cases) {
  test(`planBatch: ${c.name}`, () => {
    assert.deepEqual(planBatch(c.q, c.knobs, NOW, svc), c.want);
  });
}

// A model whose rows cost the same batched or not: 0.1 ms per batch + 1.1 ms per row.
const linear = (rows: number) => 0.1 + 1.1 * rows;

test('planBatch: rows that cost the same batched go one by one while the queue so served meets the head deadline', () => {
  const work = { maxBatch: 8, maxQueueDelayMs: 0 };
  assert.deepEqual(planBatch(q(4, NOW + 20), work, NOW, linear), { action: 'send', rows: 1 });
  // A multi-row head goes whole; the rest wait for the next turn.
  assert.deepEqual(planBatch(q(5, NOW + 20, NOW, 2), work, NOW, linear), { action: 'send', rows: 2 });
  // No waiting for partners that would not pay for themselves.
  assert.deepEqual(planBatch(q(1, NOW + 20), { maxBatch: 8, maxQueueDelayMs: 5 }, NOW, linear), {
    action: 'send',
    rows: 1,
  });
});

test('planBatch: past what one by one can serve by the head deadline, throughput wins and the rows batch', () => {
  // 12 rows one by one take 14.4 ms; 10 ms are left.
  assert.deepEqual(planBatch(q(12, NOW + 10), { maxBatch: 8, maxQueueDelayMs: 0 }, NOW, linear), {
    action: 'send',
    rows: 8,
  });
});

test('oneByOne: a batch that beats its rows run in turn on mean completion is kept', () => {
  assert.equal(oneByOne(q(4), 8, NOW, svc), false, '1 ms + 0.5 ms a row: the fixed cost pays for batching');
  assert.equal(
    oneByOne(q(4), 8, NOW, (rows) => 0.5 + 0.5 * rows),
    false,
    'fixed cost equal to the row cost',
  );
  assert.equal(
    oneByOne(q(4), 8, NOW, (rows) => 0.4 + 0.6 * rows),
    true,
    'row cost over the fixed cost',
  );
  assert.equal(oneByOne(q(4), 1, NOW, linear), false, 'maxBatch 1: no batch to weigh');
});
