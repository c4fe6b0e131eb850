// The direct line to a worker: answers reach the batch they belong to, whatever their order, and a worker that goes
// away fails every batch still waiting and every later one (the pool then retries them on another replica).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import type { ChannelReply, ChannelRequest, RunTask, WorkerResult } from '../../../runtime/worker/messages.js';
import { WorkerChannel } from '../../../runtime/worker-channel.js';

const task = (variant: string): RunTask => ({ kind: 'run', model: 'm', variant, inputs: [] });
const answer = (variant: string): WorkerResult => ({
  ok: true,
  kind: 'run',
  outputs: [{ name: variant, datatype: 'FP32', shape: [1], data: new Float32Array([1]) }],
  inferMs: 0,
  workerMs: 0,
});

test('each answer settles the batch of its id, in any order, and the channel goes idle after the last', async () => {
  const { port1, port2 } = new MessageChannel();
  const channel = new WorkerChannel(port1);
  const seen: ChannelRequest[] = [];
  port2.on('message', (m: ChannelRequest) => {
    seen.push(m);
    if (seen.length < 2) return;
    // Answered in reverse order.
    for (const r of [...seen].reverse())
      port2.postMessage({ id: r.id, result: answer(r.task.variant) } satisfies ChannelReply);
  });
  const a = channel.run(task('a'), []);
  const b = channel.run(task('b'), []);
  assert.equal(channel.pending, 2);
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.ok && ra.kind === 'run' ? ra.outputs[0]?.name : undefined, 'a');
  assert.equal(rb.ok && rb.kind === 'run' ? rb.outputs[0]?.name : undefined, 'b');
  await channel.idle();
  assert.equal(channel.pending, 0);
  channel.close();
  port2.close();
});

test('a worker that goes away fails the batches waiting on it and every later one', async () => {
  const { port1, port2 } = new MessageChannel();
  const channel = new WorkerChannel(port1);
  const waiting = channel.run(task('a'), []);
  const idle = channel.idle();
  port2.close(); // the worker's end closes with its thread
  await assert.rejects(waiting, /closed/);
  await idle;
  await assert.rejects(channel.run(task('b'), []), /closed/);
});

test('fail() rejects what waits with the reason given', async () => {
  const { port1, port2 } = new MessageChannel();
  const channel = new WorkerChannel(port1);
  const waiting = channel.run(task('a'), []);
  channel.fail(new Error('the worker exited'));
  await assert.rejects(waiting, /the worker exited/);
  channel.close();
  port2.close();
});
