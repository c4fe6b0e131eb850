// Small tensors share slabs: each gets its own aligned bytes, none overlaps another, and a full slab gives way to a
// new one; larger tensors, and the datatypes without a typed array, are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NumericArray, V2Datatype } from '../../../core/types.js';
import { MAX_SLAB_TENSOR_BYTES, slabArray } from '../../../runtime/slab.js';

const span = (a: NumericArray) => ({ buffer: a.buffer, start: a.byteOffset, end: a.byteOffset + a.byteLength });

test('slices are 8-byte aligned, never overlap, and a full slab is followed by a new one', () => {
  const seen: { buffer: ArrayBufferLike; start: number; end: number }[] = [];
  const buffers = new Set<ArrayBufferLike>();
  // Odd sizes, so the alignment of the next slice is tested, and enough of them to fill several slabs.
  for (let i = 0; i < 400; i++) {
    const n = 1 + ((i * 37) % 3000);
    const a = slabArray('UINT8', n);
    assert.equal(a.length, n);
    assert.equal(a.byteOffset % 8, 0, `slice ${i} at ${a.byteOffset} is not 8-byte aligned`);
    const s = span(a);
    for (const o of seen)
      if (o.buffer === s.buffer) assert.ok(s.end <= o.start || s.start >= o.end, `slice ${i} overlaps another`);
    seen.push(s);
    buffers.add(a.buffer);
  }
  assert.ok(buffers.size > 1, 'a full slab must give way to a new one');
  for (const b of buffers) assert.ok(b.byteLength > MAX_SLAB_TENSOR_BYTES);
});

test('writing one slice leaves its neighbours as they were', () => {
  const a = slabArray('FP32', 5) as Float32Array;
  const b = slabArray('FP32', 5) as Float32Array;
  a.fill(1);
  b.fill(2);
  a.fill(3);
  assert.deepEqual(Array.from(b), [2, 2, 2, 2, 2]);
  assert.deepEqual(Array.from(a), [3, 3, 3, 3, 3]);
});

test('each datatype gets its typed array, with the element count asked for', () => {
  const cases: [V2Datatype, new (n: number) => NumericArray, number][] = [
    ['BOOL', Uint8Array, 1],
    ['INT8', Int8Array, 1],
    ['FP16', Uint16Array, 2],
    ['BF16', Uint16Array, 2],
    ['INT16', Int16Array, 2],
    ['UINT32', Uint32Array, 4],
    ['INT32', Int32Array, 4],
    ['UINT64', BigUint64Array, 8],
    ['INT64', BigInt64Array, 8],
    ['FP32', Float32Array, 4],
    ['FP64', Float64Array, 8],
  ];
  for (const [dt, View, size] of cases) {
    const a = slabArray(dt, 3);
    assert.ok(a instanceof View, `${dt} gave ${a.constructor.name}`);
    assert.equal(a.length, 3);
    assert.equal(a.byteLength, 3 * size);
  }
});

test('a tensor larger than a slab slice, or BYTES, is refused', () => {
  assert.throws(() => slabArray('UINT8', MAX_SLAB_TENSOR_BYTES + 1), /no slab storage/);
  assert.throws(() => slabArray('FP64', MAX_SLAB_TENSOR_BYTES / 8 + 1), /no slab storage/);
  assert.throws(() => slabArray('BYTES', 1), /no slab storage/);
  assert.equal(slabArray('UINT8', MAX_SLAB_TENSOR_BYTES).length, MAX_SLAB_TENSOR_BYTES);
});
