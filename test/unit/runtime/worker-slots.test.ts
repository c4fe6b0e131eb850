// Batches in shared memory: what goes into a slot comes out the same (rows stacked from their parts, every tensor
// aligned for its type), what does not fit is refused so the port carries it, and the channel's slots are handed
// back after each answer, whichever way it came.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ChannelReply, ChannelRequest, RunTask, WorkerResult } from '../../../runtime/worker/messages.js';
import { openInbox } from '../../../runtime/worker/shared-inbox.js';
import {
  createSlotMemory,
  readReply,
  readRequest,
  SlotMemory,
  storageBytes,
  writeReply,
  writeRequest,
} from '../../../runtime/worker/shared-slots.js';
import { WorkerChannel } from '../../../runtime/worker-channel.js';

const LAYOUT = { slots: 2, slotBytes: 4096 };
const bytes = (a: Float32Array): Uint8Array => storageBytes(a) as Uint8Array;

test('a batch written from its parts reads back stacked, with its metadata', () => {
  const mem = new SlotMemory(createSlotMemory(LAYOUT), LAYOUT);
  const a = new Float32Array([1, 2, 3]);
  const b = new Float32Array([4, 5, 6]);
  const task: RunTask = {
    kind: 'run',
    model: 'm',
    variant: 'v',
    revision: 'sha256:x',
    outputs: ['y'],
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [2, 3], data: new Float32Array(0) },
      { name: 'k', datatype: 'INT64', shape: [1], data: new BigInt64Array([7n]) },
    ],
  };
  const k = task.inputs[1]?.data as BigInt64Array;
  assert.equal(writeRequest(mem, 1, 42, task, [[bytes(a), bytes(b)], [new Uint8Array(k.buffer)]]), true);
  const r = readRequest(mem, 1, new Uint8Array(0));
  assert.equal(r.id, 42);
  assert.equal(r.task.revision, 'sha256:x');
  assert.deepEqual(r.task.outputs, ['y']);
  assert.deepEqual(Array.from(r.task.inputs[0]?.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(r.task.inputs[0]?.shape, [2, 3]);
  // 24 bytes of floats, then the int64 on an 8-byte boundary.
  assert.deepEqual(Array.from(r.task.inputs[1]?.data as BigInt64Array), [7n]);
  // The inputs are copies: the slot may be reused while the run still reads them.
  const x = r.task.inputs[0]?.data as Float32Array;
  assert.equal(x.buffer instanceof SharedArrayBuffer, false);
});

test('answers round-trip, an odd-sized output keeps the next one aligned, and failures carry their error', () => {
  const mem = new SlotMemory(createSlotMemory(LAYOUT), LAYOUT);
  const result: WorkerResult = {
    ok: true,
    kind: 'run',
    inferMs: 1.5,
    workerMs: 2,
    outputs: [
      { name: 'logits', datatype: 'FP32', shape: [1, 3], data: new Float32Array([0.5, 1.5, 2.5]) },
      { name: 'label', datatype: 'INT64', shape: [1], data: new BigInt64Array([2n]) },
    ],
  };
  assert.equal(writeReply(mem, 0, 7, result), true);
  const back = readReply(mem, 0);
  assert.equal(back.id, 7);
  assert.deepEqual(back.result, result);
  const failed: WorkerResult = { ok: false, error: { code: 'SLOGATE_ERR_INFERENCE_FAILED', message: 'no' } };
  assert.equal(writeReply(mem, 0, 8, failed), true);
  assert.deepEqual(readReply(mem, 0).result, failed);
});

test('what does not fit a slot is refused: a batch too large, BYTES outputs', () => {
  const mem = new SlotMemory(createSlotMemory(LAYOUT), LAYOUT);
  const big = new Float32Array(LAYOUT.slotBytes / 4);
  const task: RunTask = {
    kind: 'run',
    model: 'm',
    variant: 'v',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [big.length], data: big }],
  };
  assert.equal(writeRequest(mem, 0, 1, task, [[bytes(big)]]), false);
  const strings: WorkerResult = {
    ok: true,
    kind: 'run',
    inferMs: 0,
    workerMs: 0,
    outputs: [{ name: 's', datatype: 'BYTES', shape: [1], data: [new Uint8Array([104, 105])] }],
  };
  assert.equal(writeReply(mem, 0, 1, strings), false);
});

/** A worker side in this thread: doubles x, or answers a BYTES output (which must go on the port). */
function fakeWorker(mem: SlotMemory, p: MessagePort) {
  const seen = { slot: 0, port: 0 };
  const run = async (task: RunTask): Promise<WorkerResult> => {
    const x = task.inputs[0]?.data as Float32Array;
    if (task.variant === 'strings')
      return {
        ok: true,
        kind: 'run',
        inferMs: 0,
        workerMs: 0,
        outputs: [{ name: 's', datatype: 'BYTES', shape: [1], data: [new Uint8Array([1])] }],
      };
    return {
      ok: true,
      kind: 'run',
      inferMs: 0,
      workerMs: 0,
      outputs: [{ name: 'y', datatype: 'FP32', shape: [x.length], data: x.map((v) => v * 2) }],
    };
  };
  p.on('message', (m: ChannelRequest) => {
    seen.port++;
    void run(m.task).then((result) => p.postMessage({ id: m.id, result } satisfies ChannelReply));
  });
  openInbox(mem, p, (t) => {
    seen.slot++;
    return run(t);
  });
  return seen;
}

const batch = (variant: string, values: number[]): RunTask => ({
  kind: 'run',
  model: 'm',
  variant,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [values.length], data: new Float32Array(values) }],
});
const plain = (t: RunTask) => ({ stacked: () => ({ task: t, transferList: [] }) });
const ys = (r: WorkerResult): number[] =>
  r.ok && r.kind === 'run' ? Array.from(r.outputs[0]?.data as Float32Array) : [];

test('batches go in slots while one is free and fit, on the port otherwise, and every slot comes back', async () => {
  const sab = createSlotMemory(LAYOUT);
  const { port1, port2 } = new MessageChannel();
  const channel = new WorkerChannel(port1, new SlotMemory(sab, LAYOUT));
  const seen = fakeWorker(new SlotMemory(sab, LAYOUT), port2);
  // Three at once on two slots: the third takes the port.
  const three = [
    channel.run(plain(batch('v', [1]))),
    channel.run(plain(batch('v', [2]))),
    channel.run(plain(batch('v', [3]))),
  ];
  assert.equal(channel.busySlots, 2);
  assert.deepEqual((await Promise.all(three)).map(ys), [[2], [4], [6]]);
  assert.deepEqual(seen, { slot: 2, port: 1 });
  // Too large for a slot: the port.
  const big = Array.from({ length: LAYOUT.slotBytes / 4 }, (_, i) => i);
  assert.equal(ys(await channel.run(plain(batch('v', big)))).length, big.length);
  assert.equal(seen.port, 2);
  // The answer does not fit the slot: the worker answers on the port and the slot is freed all the same.
  const s = await channel.run(plain(batch('strings', [1])));
  assert.equal(s.ok && s.kind === 'run' ? s.outputs[0]?.datatype : undefined, 'BYTES');
  assert.equal(seen.slot, 3);
  await channel.idle();
  assert.equal(channel.busySlots, 0);
  // Parts given apart are stacked in the slot.
  const parts = [[new Float32Array([1, 2]), new Float32Array([3])]];
  const unstacked = { stacked: () => assert.fail('stacked'), unstacked: { task: batch('v', []), parts } };
  assert.deepEqual(ys(await channel.run(unstacked)), [2, 4, 6]);
  channel.close();
  port2.close();
});

test('a worker that goes away fails the batches waiting in its slots', async () => {
  const sab = createSlotMemory(LAYOUT);
  const { port1, port2 } = new MessageChannel();
  const channel = new WorkerChannel(port1, new SlotMemory(sab, LAYOUT));
  const waiting = channel.run(plain(batch('v', [1]))); // nobody takes it
  assert.equal(channel.busySlots, 1);
  port2.close();
  await assert.rejects(waiting, /closed/);
  await assert.rejects(channel.run(plain(batch('v', [1]))), /closed/);
});
