// The direct session on real onnxruntime: the answers of the public API, the outputs asked for, onnxruntime's errors;
// and an inline batch that answers in the event-loop turn it was sent in.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { InlineRunner } from '../../runtime/inline-runner.js';
import type { BatchTask } from '../../runtime/replica.js';
import { openDirectSession } from '../../runtime/worker/ort-direct.js';
import { sessionOptions } from '../../runtime/worker/ort-tensors.js';
import { DIGITS_DIR } from '../helpers.js';

const SMALL = join(DIGITS_DIR, 'small.onnx');
const rows = (n: number, fill: number) => new ort.Tensor('float32', new Float32Array(n * 784).fill(fill), [n, 784]);

describe('direct onnxruntime sessions', () => {
  test('answer what the public API answers, for every output or the ones asked for', async () => {
    const options = sessionOptions(1, { cuda: false });
    const direct = openDirectSession(SMALL, options);
    assert.ok(direct, 'onnxruntime-node 1.30 has the binding this relies on');
    const reference = await ort.InferenceSession.create(SMALL, options);
    try {
      assert.deepEqual(direct.outputNames, reference.outputNames);
      const feeds = { pixels: rows(3, 0.25) };
      const got = direct.run(feeds);
      const want = await reference.run(feeds);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
      for (const name of reference.outputNames) {
        assert.deepEqual(got[name]?.dims, want[name]?.dims);
        assert.deepEqual(
          Array.from((got[name] as ort.Tensor).data as Float32Array),
          Array.from(want[name]?.data as Float32Array),
        );
      }
      assert.deepEqual(Object.keys(direct.run(feeds, ['label'])), ['label']);
    } finally {
      direct.release();
      direct.release();
      await reference.release();
    }
  });

  test("throw onnxruntime's error for input it refuses", () => {
    const direct = openDirectSession(SMALL, sessionOptions(1, { cuda: false }));
    assert.ok(direct);
    try {
      assert.throws(() => direct.run({ pixels: new ort.Tensor('float32', new Float32Array(10), [1, 10]) }));
      assert.throws(() => direct.run({ pixels: rows(1, 0) }, ['no-such-output']));
    } finally {
      direct.release();
    }
  });

  test('an inline batch answers in the event-loop turn it was sent in', async () => {
    const runner = new InlineRunner(1);
    const task: BatchTask = {
      model: 'digits',
      variant: 'small',
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 784], data: new Float32Array(2 * 784).fill(0.5) }],
      rows: 2,
      transfer: false,
      expectedMs: 0.05,
    };
    try {
      for (const stop = Date.now() + 5000; !runner.accepts(task, SMALL); ) {
        assert.ok(Date.now() < stop, 'the session loads within 5 s');
        await sleep(5);
      }
      let turned = false;
      setImmediate(() => {
        turned = true;
      });
      const outcome = await runner.run(task, 'main');
      assert.equal(turned, false, 'no later turn ran before the answer');
      assert.equal(outcome.inline, true);
      assert.deepEqual(outcome.outputs.find((o) => o.name === 'logits')?.shape, [2, 10]);
    } finally {
      runner.close();
    }
  });
});
