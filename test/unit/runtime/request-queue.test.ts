import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QueueItem } from '../../../runtime/request-queue.js';
import { EdfQueue } from '../../../runtime/request-queue.js';

function item(seq: number, deadlineAtMs: number, priority = 0, rows = 1): QueueItem {
  return { seq, deadlineAtMs, priority, rows, heapIndex: -1 };
}

test('EdfQueue pops by deadline, then priority (higher first), then arrival', () => {
  const q = new EdfQueue<QueueItem>();
  const items = [item(0, 50), item(1, 10), item(2, 50, 3), item(3, 10), item(4, 30, -2)];
  for (const i of items) q.push(i);
  const order: number[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) order.push(x.seq);
  assert.deepEqual(order, [1, 3, 4, 2, 0]);
});

test('EdfQueue tracks rows and removes any item in O(log n), keeping heap order', () => {
  const q = new EdfQueue<QueueItem>();
  const items = Array.from({ length: 200 }, (_, i) => item(i, (i * 7919) % 997, 0, 1 + (i % 3)));
  for (const i of items) q.push(i);
  const removed = items.filter((_, i) => i % 3 === 0);
  for (const r of removed) assert.equal(q.remove(r), true);
  assert.equal(q.remove(removed[0] as QueueItem), false, 'a removed item is gone');
  const kept = items.filter((_, i) => i % 3 !== 0);
  assert.equal(q.size, kept.length);
  assert.equal(
    q.rows,
    kept.reduce((n, i) => n + i.rows, 0),
  );
  let last = Number.NEGATIVE_INFINITY;
  for (let x = q.shift(); x !== undefined; x = q.shift()) {
    assert.ok(x.deadlineAtMs >= last);
    last = x.deadlineAtMs;
  }
  assert.equal(q.rows, 0);
});
