import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readAnswer } from '../../../bench/v2-response.js';

const LABEL = { output: 'label', mode: 'label' } as const;
const ARGMAX = { output: 'logits', mode: 'argmax' } as const;

function binaryAnswer(doc: unknown, ...blobs: Buffer[]): { body: Buffer; jsonLength: number } {
  const head = Buffer.from(JSON.stringify(doc));
  return { body: Buffer.concat([head, ...blobs]), jsonLength: head.byteLength };
}

const int64 = (...xs: number[]) => {
  const b = Buffer.alloc(8 * xs.length);
  xs.forEach((x, i) => {
    b.writeBigInt64LE(BigInt(x), 8 * i);
  });
  return b;
};

test('JSON answer: the variant from model_version and the class from the label output', () => {
  const body = Buffer.from(
    '{"model_name":"digits","model_version":"large","outputs":[{"name":"label","datatype":"INT64","shape":[1,1],"data":[7]}]}',
  );
  assert.deepEqual(readAnswer(body, undefined, LABEL), { variant: 'large', predicted: 7 });
});

test('JSON answer without a label output: argmax of the first row of the logits (nested data too)', () => {
  const body = Buffer.from(
    JSON.stringify({
      model_version: '1',
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 4], data: [[0.1, 2.5, -1, 2.4]] }],
    }),
  );
  assert.deepEqual(readAnswer(body, undefined, ARGMAX), { variant: '1', predicted: 1 });
});

test('binary answer: the label is read from the bytes after the JSON header', () => {
  const { body, jsonLength } = binaryAnswer(
    {
      model_version: 'tiny',
      outputs: [{ name: 'label', datatype: 'INT64', shape: [1, 1], parameters: { binary_data_size: 8 } }],
    },
    int64(3),
  );
  assert.deepEqual(readAnswer(body, jsonLength, LABEL), { variant: 'tiny', predicted: 3 });
});

test('binary answer with several outputs: offsets skip the outputs before the one scored', () => {
  const logits = Buffer.alloc(12);
  [0.5, 0.1, 0.9].forEach((x, i) => {
    logits.writeFloatLE(x, 4 * i);
  });
  const { body, jsonLength } = binaryAnswer(
    {
      model_version: 'v',
      outputs: [
        { name: 'logits', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: 12 } },
        { name: 'label', datatype: 'INT64', shape: [1, 1], parameters: { binary_data_size: 8 } },
      ],
    },
    logits,
    int64(9),
  );
  assert.equal(readAnswer(body, jsonLength, LABEL).predicted, 9);
  assert.equal(readAnswer(body, jsonLength, { output: 'logits', mode: 'argmax' }).predicted, 2);
});

test('unreadable answers give undefined, never throw', () => {
  assert.deepEqual(readAnswer(Buffer.from('not json'), undefined, LABEL), { variant: undefined, predicted: undefined });
  assert.deepEqual(readAnswer(Buffer.from('{"outputs":[]}'), undefined, LABEL), {
    variant: undefined,
    predicted: undefined,
  });
  assert.deepEqual(
    readAnswer(Buffer.from('{"model_version":"x","outputs":[{"name":"label","data":["a"]}]}'), undefined, LABEL),
    { variant: 'x', predicted: undefined },
  );
  assert.deepEqual(readAnswer(Buffer.from('{"model_version":"x"}'), undefined, undefined), {
    variant: 'x',
    predicted: undefined,
  });
});
