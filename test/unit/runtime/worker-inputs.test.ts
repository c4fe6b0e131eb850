// What reaches a worker: a view into a larger buffer travels as a copy of its own bytes (posting it would clone the
// whole buffer), a whole buffer moves only when the task may give it up, and the task's own tensors stay intact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import type { WireTensor } from '../../../runtime/worker/messages.js';
import { postedInputs } from '../../../runtime/worker-inputs.js';

const tensor = (name: string, data: WireTensor['data']): WireTensor => ({
  name,
  datatype: data instanceof Float32Array ? 'FP32' : 'BYTES',
  shape: [1, Array.isArray(data) ? data.length : (data as Float32Array).length],
  data,
});

/** What the other end of a real channel receives. */
function post<T>(value: T, transferList: ArrayBuffer[]): Promise<T> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.once('message', (m: T) => {
      port1.close();
      port2.close();
      resolve(m);
    });
    port1.postMessage(value, transferList);
  });
}

test('a view into a larger buffer is posted as a copy of its bytes, which moves; the original stays', async () => {
  const big = new ArrayBuffer(64 * 1024);
  const view = new Float32Array(big, 1024, 4);
  view.set([1, 2, 3, 4]);
  const task = [tensor('x', view)];
  const { inputs, transferList } = postedInputs(task, false);
  const posted = inputs[0]?.data as Float32Array;
  assert.notEqual(posted.buffer, big);
  assert.deepEqual(transferList, [posted.buffer]);
  const received = await post(inputs, transferList);
  const data = received[0]?.data as Float32Array;
  assert.equal(data.buffer.byteLength, 16, "only the view's bytes may cross to the worker");
  assert.deepEqual(Array.from(data), [1, 2, 3, 4]);
  assert.equal(task[0]?.data, view);
  assert.equal(big.byteLength, 64 * 1024, 'the original buffer must not be moved');
  assert.deepEqual(Array.from(view), [1, 2, 3, 4]);
});

test('a whole buffer moves when the task may give it up, and is cloned when a retry needs it', () => {
  const own = Float32Array.of(1, 2);
  const moved = postedInputs([tensor('a', own), tensor('b', own)], true);
  assert.deepEqual(moved.transferList, [own.buffer], 'a buffer shared by two inputs is listed once');
  assert.equal(moved.inputs[0]?.data, own);
  const kept = postedInputs([tensor('a', own)], false);
  assert.deepEqual(kept.transferList, []);
  assert.equal(kept.inputs[0]?.data, own);
});

test('BYTES elements are posted as they are', () => {
  const items = [Uint8Array.of(1), Uint8Array.of(2, 3)];
  const { inputs, transferList } = postedInputs([tensor('s', items)], true);
  assert.equal(inputs[0]?.data, items);
  assert.deepEqual(transferList, []);
});
