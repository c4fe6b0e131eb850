// The request a remote replica sends: the batch's time left rides as Triton's `timeout` parameter (microseconds).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRequest } from '../../../runtime/remote-replica.js';
import type { BatchTask } from '../../../runtime/replica.js';

const task = (deadlineAtMs?: number): BatchTask => ({
  model: 'm',
  variant: 'v',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }],
  rows: 1,
  transfer: false,
  deadlineAtMs,
});

function parameters(t: BatchTask, nowMs: number): Record<string, unknown> {
  const { body, jsonLength } = encodeRequest(t, nowMs);
  return (JSON.parse(body.subarray(0, jsonLength).toString()) as { parameters: Record<string, unknown> }).parameters;
}

test('the time left to the batch deadline is sent in microseconds, at least 1; none without a deadline', () => {
  assert.equal(parameters(task(1050.25), 1000).timeout, 50_250);
  assert.equal(parameters(task(900), 1000).timeout, 1, 'already late: the node refuses it at once');
  assert.equal(parameters(task(), 1000).timeout, undefined);
  assert.equal(parameters(task(Number.POSITIVE_INFINITY), 1000).timeout, undefined);
  assert.equal(parameters(task(), 1000).binary_data_output, true);
});
