import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelSignature, Tensor } from '../../../core/types.js';
import { countCorrect } from '../../../runtime/accuracy.js';
import type { EvalSet } from '../../../runtime/eval-set.js';

const sig = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
} as unknown as ModelSignature;

/** Rows [i, 0], labelled i % 2. */
function set(count: number): EvalSet {
  const data = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) data[2 * i] = i;
  return { count, features: 2, labels: Uint8Array.from({ length: count }, (_, i) => i % 2), data };
}

/** Predicts class 1 for odd first features: right on every row. */
function parity(inputs: Tensor[], rows: number): Tensor[] {
  const x = (inputs[0] as Tensor).data as Float32Array;
  const y = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) y[2 * r + ((x[2 * r] as number) % 2)] = 1;
  return [{ name: 'y', datatype: 'FP32', shape: [rows, 2], data: y }];
}

describe('countCorrect', () => {
  test('counts right predictions over every batch, each batch made on its own turn of the event loop', async () => {
    let otherWorkRan = false;
    setImmediate(() => {
      otherWorkRan = true;
    });
    const seen: { rows: number; otherWorkRan: boolean }[] = [];
    const correct = await countCorrect(
      async (inputs, rows) => {
        seen.push({ rows, otherWorkRan });
        return parity(inputs, rows);
      },
      'm',
      sig,
      set(10),
      4,
    );
    assert.equal(correct, 10);
    assert.deepEqual(
      seen.map((s) => s.rows),
      [4, 4, 2],
    );
    assert.equal(seen[0]?.otherWorkRan, false);
    assert.equal(seen[1]?.otherWorkRan, true, 'work queued before the second batch ran before it was made');
  });

  test('a batch that fails fails the count, even while later batches are still being made', async () => {
    await assert.rejects(
      countCorrect(
        async (inputs, rows) => {
          if ((inputs[0] as Tensor).data[0] === 0) throw new Error('batch failed');
          return parity(inputs, rows);
        },
        'm',
        sig,
        set(10),
        4,
      ),
      /batch failed/,
    );
  });
});
