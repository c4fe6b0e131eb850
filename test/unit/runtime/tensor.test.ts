// V2 tensor decoding/encoding: JSON and binary inputs into the model's datatypes, half/bfloat16 bit patterns,
// output encodings, and the row stacking/splitting the scheduler relies on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ErrorCode, SlogateError } from '../../../core/errors.js';
import type { TensorSpec, V2Datatype } from '../../../core/types.js';
import {
  binaryData,
  checkShape,
  decodeBinaryTensor,
  decodeJsonTensor,
  fromBf16Bits,
  fromHalfBits,
  jsonDataString,
  MAX_ELEMENTS,
  parseBytesElements,
  rowSize,
  splitRows,
  stackRows,
  toBf16Bits,
  toHalfBits,
} from '../../../runtime/tensor.js';

const spec = (datatype: V2Datatype, shape: readonly number[], name = 'pixels'): TensorSpec => ({
  name,
  datatype,
  shape,
});
const FP32_ROWS = spec('FP32', [-1, 3]);

/** Runs fn, asserts it throws a SlogateError with `code` whose message names the input; returns the error. */
function throwsCode(fn: () => unknown, code: ErrorCode, inputName = 'pixels'): SlogateError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof SlogateError,
    `expected a SlogateError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.includes(`'${inputName}'`), `message should name input '${inputName}': ${caught.message}`);
  return caught;
}

/** Little-endian bytes of FP32 values, written independently of the code under test. */
function f32le(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

function u16le(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, values[i] as number, true);
  return out;
}

/** The BYTES binary layout: a u32 little-endian length before each element. */
function bytesLayout(items: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = items.map((s) => enc.encode(s));
  const out = new Uint8Array(parts.reduce((a, p) => a + 4 + p.byteLength, 0));
  const view = new DataView(out.buffer);
  let off = 0;
  for (const p of parts) {
    view.setUint32(off, p.byteLength, true);
    out.set(p, off + 4);
    off += 4 + p.byteLength;
  }
  return out;
}

describe('decodeJsonTensor', () => {
  test('flat data fills the model type row-major and keeps the request shape', () => {
    const t = decodeJsonTensor('pixels', 'FP32', [2, 3], [1, 2, 3, 4, 5, 6], FP32_ROWS, false);
    assert.equal(t.datatype, 'FP32');
    assert.deepEqual(t.shape, [2, 3]);
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual(Array.from(t.data), [1, 2, 3, 4, 5, 6]);
  });

  test('nested data shaped exactly like the tensor is flattened row-major', () => {
    const t = decodeJsonTensor(
      'pixels',
      'FP32',
      [2, 3],
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      FP32_ROWS,
      false,
    );
    assert.deepEqual(Array.from(t.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  });

  test('nested data whose rows, row count or depth disagree with the shape is an invalid tensor', () => {
    const cases: unknown[] = [
      [
        [1, 2],
        [3, 4, 5, 6],
      ], // ragged rows, right total
      [[1, 2, 3]], // one row for a shape of two
      [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
      ], // three rows for a shape of two
      [
        [[1], [2], [3]],
        [[4], [5], [6]],
      ], // deeper than the shape
      [[1, 2, 3], 4], // a row that is not an array
    ];
    for (const data of cases)
      throwsCode(
        () => decodeJsonTensor('pixels', 'FP32', [2, 3], data, FP32_ROWS, false),
        'SLOGATE_ERR_INVALID_TENSOR',
      );
  });

  test('flat data one element short or long of the shape product is an invalid tensor', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [2, 3], [1, 2, 3, 4, 5], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [2, 3], [1, 2, 3, 4, 5, 6, 7], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('data that is not an array is an invalid tensor', () => {
    for (const data of ['123456', 6, { 0: 1 }, null])
      throwsCode(
        () => decodeJsonTensor('pixels', 'FP32', [2, 3], data, FP32_ROWS, false),
        'SLOGATE_ERR_INVALID_TENSOR',
      );
  });

  test('a shape of the wrong rank is an invalid tensor even when the element count matches', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [6], [1, 2, 3, 4, 5, 6], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [1, 2, 3], [1, 2, 3, 4, 5, 6], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('a fixed dimension that differs from the model is an invalid tensor even when the element count matches', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [3, 2], [1, 2, 3, 4, 5, 6], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('null (how JSON spells NaN/Infinity) is refused as an invalid tensor', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP32', [1, 3], [1, null, 3], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
    // Also on the converting path (INT32 declared into FP32).
    throwsCode(
      () => decodeJsonTensor('pixels', 'INT32', [1, 3], [1, null, 3], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('strings, booleans and objects where numbers are expected are refused as invalid tensors', () => {
    for (const bad of ['1', true, {}, [1]]) {
      throwsCode(
        () => decodeJsonTensor('pixels', 'FP32', [1, 3], [1, bad, 3], FP32_ROWS, false),
        'SLOGATE_ERR_INVALID_TENSOR',
      );
    }
  });

  test('a float beyond FP32 range overflows to Infinity and is refused unless the model allows non-finite values', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'FP64', [1, 3], [1, 1e39, 3], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
    const t = decodeJsonTensor('pixels', 'FP64', [1, 3], [1, 1e39, -1e39], FP32_ROWS, true);
    assert.deepEqual(Array.from(t.data as Float32Array), [1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  });

  test('FP64 data is accepted into an FP32 input, rounded to the nearest FP32', () => {
    const t = decodeJsonTensor('pixels', 'FP64', [1, 3], [0.1, 1 / 3, -2.5], FP32_ROWS, false);
    assert.equal(t.datatype, 'FP32');
    assert.deepEqual(Array.from(t.data as Float32Array), [Math.fround(0.1), Math.fround(1 / 3), -2.5]);
  });

  test('INT32 data is accepted into an FP32 input', () => {
    const t = decodeJsonTensor('pixels', 'INT32', [1, 3], [-7, 0, 16777216], FP32_ROWS, false);
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual(Array.from(t.data), [-7, 0, 16777216]);
  });

  test('a fraction declared as INT32 is refused as an invalid tensor (not valid for its own datatype)', () => {
    throwsCode(
      () => decodeJsonTensor('pixels', 'INT32', [1, 3], [1, 2.5, 3], FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('FP32 data 2.5 into an INT32 input is refused with SLOGATE_ERR_DATATYPE; whole numbers convert', () => {
    const ints = spec('INT32', [-1, 3], 'ids');
    throwsCode(() => decodeJsonTensor('ids', 'FP32', [1, 3], [1, 2.5, 3], ints, false), 'SLOGATE_ERR_DATATYPE', 'ids');
    const t = decodeJsonTensor('ids', 'FP32', [1, 3], [1, -2, 3], ints, false);
    assert.ok(t.data instanceof Int32Array);
    assert.deepEqual(Array.from(t.data), [1, -2, 3]);
  });

  test('INT8 accepts exactly -128..127: out of range is refused as its own type or as a conversion target', () => {
    const int8 = spec('INT8', [-1, 2], 'q');
    const ok = decodeJsonTensor('q', 'INT8', [1, 2], [-128, 127], int8, false);
    assert.ok(ok.data instanceof Int8Array);
    assert.deepEqual(Array.from(ok.data), [-128, 127]);
    throwsCode(() => decodeJsonTensor('q', 'INT8', [1, 2], [0, 128], int8, false), 'SLOGATE_ERR_INVALID_TENSOR', 'q');
    throwsCode(() => decodeJsonTensor('q', 'INT32', [1, 2], [-129, 0], int8, false), 'SLOGATE_ERR_DATATYPE', 'q');
  });

  test('BOOL and numeric datatypes do not convert into each other', () => {
    const mask = spec('BOOL', [-1, 2], 'mask');
    throwsCode(
      () => decodeJsonTensor('pixels', 'BOOL', [1, 3], [true, false, true], FP32_ROWS, false),
      'SLOGATE_ERR_DATATYPE',
    );
    throwsCode(() => decodeJsonTensor('mask', 'FP32', [1, 2], [1, 0], mask, false), 'SLOGATE_ERR_DATATYPE', 'mask');
  });

  test('BOOL inputs take true/false only; 1/0 are refused', () => {
    const mask = spec('BOOL', [-1, 2], 'mask');
    const t = decodeJsonTensor('mask', 'BOOL', [2, 2], [true, false, false, true], mask, false);
    assert.deepEqual(Array.from(t.data as Uint8Array), [1, 0, 0, 1]);
    throwsCode(
      () => decodeJsonTensor('mask', 'BOOL', [1, 2], [1, 0], mask, false),
      'SLOGATE_ERR_INVALID_TENSOR',
      'mask',
    );
  });

  test('BYTES strings are stored UTF-8 encoded; non-strings and numeric conversion are refused', () => {
    const text = spec('BYTES', [-1], 'text');
    const t = decodeJsonTensor('text', 'BYTES', [3], ['abc', '', 'é'], text, false);
    const items = t.data as Uint8Array[];
    assert.equal(items.length, 3);
    assert.deepEqual(Array.from(items[0] as Uint8Array), [0x61, 0x62, 0x63]);
    assert.equal(items[1]?.byteLength, 0);
    assert.deepEqual(Array.from(items[2] as Uint8Array), [0xc3, 0xa9]); // U+00E9 in UTF-8
    throwsCode(
      () => decodeJsonTensor('text', 'BYTES', [2], ['a', 1], text, false),
      'SLOGATE_ERR_INVALID_TENSOR',
      'text',
    );
    throwsCode(() => decodeJsonTensor('text', 'FP32', [1], [1], text, false), 'SLOGATE_ERR_DATATYPE', 'text');
    throwsCode(
      () => decodeJsonTensor('pixels', 'BYTES', [1, 3], ['a', 'b', 'c'], FP32_ROWS, false),
      'SLOGATE_ERR_DATATYPE',
    );
  });
});

describe('decodeBinaryTensor', () => {
  test('the byte count must equal the shape product times the element size, exactly', () => {
    const good = f32le([1, 2, 3]);
    throwsCode(
      () => decodeBinaryTensor('pixels', 'FP32', [1, 3], good.subarray(0, 11), FP32_ROWS, false),
      'SLOGATE_ERR_BINARY_DATA',
    );
    throwsCode(
      () => decodeBinaryTensor('pixels', 'FP32', [1, 3], new Uint8Array(13), FP32_ROWS, false),
      'SLOGATE_ERR_BINARY_DATA',
    );
    throwsCode(() => decodeBinaryTensor('pixels', 'FP32', [2, 3], good, FP32_ROWS, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('FP32 little-endian bytes round-trip to the same values, as a copy of the request bytes', () => {
    const values = [1.5, -2.25, 3e-5, 1e30, 0, -0.125];
    const bytes = f32le(values);
    const t = decodeBinaryTensor('pixels', 'FP32', [2, 3], bytes, FP32_ROWS, false);
    assert.deepEqual(t.shape, [2, 3]);
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual(Array.from(t.data), values.map(Math.fround));
    bytes.fill(0);
    assert.equal(t.data[0], 1.5, 'the tensor must not alias the request body');
  });

  test('bytes at an unaligned offset inside a larger body decode correctly', () => {
    const body = new Uint8Array(1 + 12);
    body.set(f32le([7, 8, 9]), 1);
    const t = decodeBinaryTensor('pixels', 'FP32', [1, 3], body.subarray(1), FP32_ROWS, false);
    assert.deepEqual(Array.from(t.data as Float32Array), [7, 8, 9]);
  });

  test('decoded tensors keep their own values while many more are decoded, small and large alike', () => {
    const rows = (n: number) => spec('FP32', [-1, n]);
    const kept: { t: ReturnType<typeof decodeBinaryTensor>; first: number; n: number }[] = [];
    for (let i = 0; i < 300; i++) {
      // Every 50th is past a slab slice's size and gets a buffer of its own.
      const n = i % 50 === 0 ? 10_000 : 1 + (i % 97);
      const values = Array.from({ length: n }, (_, k) => i * 1000 + k);
      kept.push({ t: decodeBinaryTensor('pixels', 'FP32', [1, n], f32le(values), rows(n), false), first: i * 1000, n });
    }
    for (const { t, first, n } of kept) {
      const d = t.data as Float32Array;
      assert.equal(d.length, n);
      assert.equal(d[0], first);
      assert.equal(d[n - 1], first + n - 1);
    }
    const large = kept[0]?.t.data as Float32Array;
    assert.equal(large.byteLength, large.buffer.byteLength, 'a large tensor owns its buffer (it may move to a worker)');
  });

  test('NaN and infinities are refused unless the model allows non-finite values', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      throwsCode(
        () => decodeBinaryTensor('pixels', 'FP32', [1, 3], f32le([1, bad, 3]), FP32_ROWS, false),
        'SLOGATE_ERR_INVALID_TENSOR',
      );
    }
    const t = decodeBinaryTensor(
      'pixels',
      'FP32',
      [1, 3],
      f32le([Number.NaN, Number.POSITIVE_INFINITY, 1]),
      FP32_ROWS,
      true,
    );
    const d = t.data as Float32Array;
    assert.ok(Number.isNaN(d[0]));
    assert.equal(d[1], Number.POSITIVE_INFINITY);
  });

  test('a non-finite element is found at every position of a longer input, and finite extremes pass', () => {
    const wide = spec('FP32', [-1, 11]);
    for (let at = 0; at < 11; at++)
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        const values = Array.from({ length: 11 }, (_, i) => (i === at ? bad : i - 5));
        const e = throwsCode(
          () => decodeBinaryTensor('pixels', 'FP32', [1, 11], f32le(values), wide, false),
          'SLOGATE_ERR_INVALID_TENSOR',
        );
        assert.match(e.message, new RegExp(`element ${at} is not a finite number`));
      }
    const extremes = [3.4e38, -3.4e38, -0, 1e-45, -1e-45, 0, 1, -1, 2, -2, 65504];
    const t = decodeBinaryTensor('pixels', 'FP32', [1, 11], f32le(extremes), wide, false);
    assert.equal((t.data as Float32Array)[0], Math.fround(3.4e38));
  });

  test('non-finite FP16 is refused both as FP16 and when converted to FP32', () => {
    const half = spec('FP16', [-1, 2], 'h');
    throwsCode(
      () => decodeBinaryTensor('h', 'FP16', [1, 2], u16le([0x3c00, 0x7c00]), half, false),
      'SLOGATE_ERR_INVALID_TENSOR',
      'h',
    );
    throwsCode(
      () => decodeBinaryTensor('pixels', 'FP16', [1, 3], u16le([0x3c00, 0x7e00, 0]), FP32_ROWS, false),
      'SLOGATE_ERR_INVALID_TENSOR',
    );
  });

  test('FP16 bytes convert into an FP32 input by value', () => {
    // 0x3c00 = 1.0, 0xc000 = -2.0, 0x3800 = 0.5 (sign | exponent | mantissa of IEEE binary16).
    const t = decodeBinaryTensor('pixels', 'FP16', [1, 3], u16le([0x3c00, 0xc000, 0x3800]), FP32_ROWS, false);
    assert.deepEqual(Array.from(t.data as Float32Array), [1, -2, 0.5]);
  });

  test('BOOL bytes must be 0 or 1', () => {
    const mask = spec('BOOL', [-1, 3], 'mask');
    const t = decodeBinaryTensor('mask', 'BOOL', [1, 3], Uint8Array.of(1, 0, 1), mask, false);
    assert.deepEqual(Array.from(t.data as Uint8Array), [1, 0, 1]);
    throwsCode(
      () => decodeBinaryTensor('mask', 'BOOL', [1, 3], Uint8Array.of(1, 2, 0), mask, false),
      'SLOGATE_ERR_INVALID_TENSOR',
      'mask',
    );
  });

  test('BYTES are parsed as u32 little-endian length prefixes followed by the bytes', () => {
    const text = spec('BYTES', [-1], 'text');
    const t = decodeBinaryTensor('text', 'BYTES', [3], bytesLayout(['abc', '', 'hi']), text, false);
    const dec = new TextDecoder();
    assert.deepEqual(
      (t.data as Uint8Array[]).map((b) => dec.decode(b)),
      ['abc', '', 'hi'],
    );
  });

  test('BYTES with a cut-short prefix, an element past the end, or the wrong element count are refused', () => {
    const text = spec('BYTES', [-1], 'text');
    const two = bytesLayout(['ab', 'cd']);
    // A whole first element, then 3 bytes of the next prefix.
    throwsCode(
      () => decodeBinaryTensor('text', 'BYTES', [2], two.subarray(0, 6 + 3), text, false),
      'SLOGATE_ERR_BINARY_DATA',
      'text',
    );
    // The second prefix says 2 bytes, only 1 follows.
    throwsCode(
      () => decodeBinaryTensor('text', 'BYTES', [2], two.subarray(0, two.byteLength - 1), text, false),
      'SLOGATE_ERR_BINARY_DATA',
      'text',
    );
    throwsCode(() => decodeBinaryTensor('text', 'BYTES', [3], two, text, false), 'SLOGATE_ERR_BINARY_DATA', 'text');
    throwsCode(() => parseBytesElements('text', Uint8Array.of(1, 0, 0), 1), 'SLOGATE_ERR_BINARY_DATA', 'text');
  });
});

describe('half and bfloat16 bit patterns', () => {
  test('toHalfBits encodes known values (IEEE binary16)', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite half
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -15, 0x0200], // a subnormal: mantissa 0x200 * 2^-24
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
    ];
    for (const [v, bits] of cases) assert.equal(toHalfBits(v), bits, `toHalfBits(${v})`);
  });

  test('toHalfBits overflows to Infinity (0x7c00) beyond the largest half', () => {
    assert.equal(toHalfBits(1e6), 0x7c00);
    assert.equal(toHalfBits(-1e6), 0xfc00);
    // 65520 lies halfway between 65504 (odd mantissa 0x3ff) and 65536; ties go to even, which is the overflow.
    assert.equal(toHalfBits(65520), 0x7c00);
    assert.equal(toHalfBits(65519), 0x7bff);
  });

  test('toHalfBits rounds to nearest, ties to even', () => {
    // 1 + 2^-11 is halfway between 1.0 (0x3c00, even) and 1 + 2^-10 (0x3c01): goes down.
    assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00);
    // 1 + 3 * 2^-11 is halfway between 0x3c01 (odd) and 0x3c02 (even): goes up.
    assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02);
    // Just above halfway rounds up.
    assert.equal(toHalfBits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
    // 2047.5 is halfway between 2047 (0x67ff, odd) and 2048 (0x6800): the carry moves into the exponent.
    assert.equal(toHalfBits(2047.5), 0x6800);
    // Subnormal ties: 2^-25 is halfway between 0 and 2^-24 -> 0; 3 * 2^-25 between 2^-24 (odd) and 2^-23 -> 2^-23.
    assert.equal(toHalfBits(2 ** -25), 0x0000);
    assert.equal(toHalfBits(3 * 2 ** -25), 0x0002);
    assert.equal(toHalfBits(2 ** -26), 0x0000);
  });

  test('toHalfBits maps NaN to a NaN pattern', () => {
    const h = toHalfBits(Number.NaN);
    assert.equal(h & 0x7c00, 0x7c00);
    assert.notEqual(h & 0x3ff, 0);
  });

  test('fromHalfBits decodes known patterns, including subnormals and specials', () => {
    assert.equal(fromHalfBits(0x3c00), 1);
    assert.equal(fromHalfBits(0xc000), -2);
    assert.equal(fromHalfBits(0x7bff), 65504);
    assert.equal(fromHalfBits(0x0001), 2 ** -24);
    assert.equal(fromHalfBits(0x03ff), 1023 * 2 ** -24);
    assert.equal(fromHalfBits(0x7c00), Number.POSITIVE_INFINITY);
    assert.equal(fromHalfBits(0xfc00), Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(fromHalfBits(0x7e00)));
    assert.ok(Object.is(fromHalfBits(0x8000), -0));
  });

  test('every finite half pattern survives fromHalfBits -> toHalfBits unchanged', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // infinities and NaNs
      assert.equal(toHalfBits(fromHalfBits(h)), h, `pattern 0x${h.toString(16)}`);
    }
  });

  test('toBf16Bits / fromBf16Bits: known values, ties to even, NaN and overflow', () => {
    assert.equal(toBf16Bits(1), 0x3f80);
    assert.equal(toBf16Bits(-2), 0xc000);
    assert.equal(fromBf16Bits(0x3f80), 1);
    assert.equal(fromBf16Bits(0xc000), -2);
    // bfloat16 is the top half of an FP32: pi (0x40490fdb) truncates to 0x4049 = 3.140625.
    assert.equal(toBf16Bits(Math.PI), 0x4049);
    assert.equal(fromBf16Bits(0x4049), 3.140625);
    // 1 + 2^-8 is halfway between 0x3f80 (even) and 0x3f81: down; 1 + 3 * 2^-8 between 0x3f81 and 0x3f82 (even): up.
    assert.equal(toBf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(toBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(toBf16Bits(Number.POSITIVE_INFINITY), 0x7f80);
    assert.equal(fromBf16Bits(0x7f80), Number.POSITIVE_INFINITY);
    // The largest FP32 rounds up past bfloat16's largest finite value.
    assert.equal(toBf16Bits(3.4028234663852886e38), 0x7f80);
    assert.ok(Number.isNaN(fromBf16Bits(toBf16Bits(Number.NaN))));
  });

  test('every finite bfloat16 pattern survives fromBf16Bits -> toBf16Bits unchanged', () => {
    for (let b = 0; b < 0x10000; b++) {
      if ((b & 0x7f80) === 0x7f80) continue;
      assert.equal(toBf16Bits(fromBf16Bits(b)), b, `pattern 0x${b.toString(16)}`);
    }
  });
});

describe('output encodings', () => {
  test('jsonDataString writes INT64/UINT64 exactly, beyond 2^53', () => {
    // 2^53 + 1 is the first integer a double cannot hold; -2^63 and 2^64 - 1 are the type limits.
    const s = jsonDataString('INT64', BigInt64Array.of(2n ** 53n + 1n, -(2n ** 63n), 0n));
    assert.equal(s, '[9007199254740993,-9223372036854775808,0]');
    assert.equal(jsonDataString('UINT64', BigUint64Array.of(2n ** 64n - 1n)), '[18446744073709551615]');
  });

  test('jsonDataString writes non-finite floats as null and finite FP32 values so they parse back exactly', () => {
    const f = Float32Array.of(Math.fround(0.1), Number.NaN, Number.NEGATIVE_INFINITY, -0.25);
    const parsed = JSON.parse(jsonDataString('FP32', f)) as (number | null)[];
    assert.deepEqual(parsed, [Math.fround(0.1), null, null, -0.25]);
    assert.deepEqual(JSON.parse(jsonDataString('FP16', Uint16Array.of(0x3c00, 0x7c00, 0xc000))), [1, null, -2]);
  });

  test('jsonDataString writes BOOL as true/false, BYTES as strings, and an empty tensor as []', () => {
    assert.equal(jsonDataString('BOOL', Uint8Array.of(1, 0, 1)), '[true,false,true]');
    const enc = new TextEncoder();
    assert.deepEqual(JSON.parse(jsonDataString('BYTES', [enc.encode('ab'), enc.encode('')])), ['ab', '']);
    assert.equal(jsonDataString('FP32', new Float32Array(0)), '[]');
  });

  test('binaryData gives numeric data as little-endian bytes, viewing the same memory', () => {
    const backing = Float32Array.of(9, 1.5, -2, 9);
    const data = backing.subarray(1, 3);
    const bytes = binaryData('FP32', data);
    assert.equal(bytes.buffer, backing.buffer);
    assert.deepEqual(Array.from(bytes), Array.from(f32le([1.5, -2])));
    const i64 = binaryData('INT64', BigInt64Array.of(-1n));
    assert.deepEqual(Array.from(i64), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  test('binaryData length-prefixes BYTES elements, and decodeBinaryTensor reads them back', () => {
    const enc = new TextEncoder();
    const bytes = binaryData('BYTES', [enc.encode('abc'), enc.encode('')]);
    assert.deepEqual(Array.from(bytes), [3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0]);
    const back = decodeBinaryTensor('text', 'BYTES', [2], bytes, spec('BYTES', [-1], 'text'), false);
    assert.deepEqual(
      (back.data as Uint8Array[]).map((b) => new TextDecoder().decode(b)),
      ['abc', ''],
    );
  });
});

describe('batching: stackRows / splitRows / checkShape', () => {
  test('stackRows concatenates requests along the batch dimension; splitRows hands back views of the stacked buffer', () => {
    const a = Float32Array.of(1, 2, 3);
    const b = Float32Array.of(4, 5, 6, 7, 8, 9);
    const stacked = stackRows('FP32', [a, b]) as Float32Array;
    assert.ok(stacked instanceof Float32Array);
    assert.deepEqual(Array.from(stacked), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.notEqual(stacked.buffer, a.buffer);
    const parts = splitRows(stacked, rowSize([-1, 3]), [1, 2]) as Float32Array[];
    assert.equal(parts.length, 2);
    assert.deepEqual(Array.from(parts[0] as Float32Array), [1, 2, 3]);
    assert.deepEqual(Array.from(parts[1] as Float32Array), [4, 5, 6, 7, 8, 9]);
    for (const p of parts) assert.equal(p.buffer, stacked.buffer, 'split rows must be views, not copies');
    stacked[3] = 40;
    assert.equal(parts[1]?.[0], 40);
  });

  test('stacks of many batches never share bytes; a large stack owns its buffer', () => {
    const stacks = Array.from({ length: 200 }, (_, i) =>
      stackRows('FP32', [new Float32Array(7 + i).fill(i), new Float32Array(3).fill(-i)]),
    ) as Float32Array[];
    stacks.forEach((s, i) => {
      assert.equal(s.length, 10 + i);
      assert.equal(s[0], i);
      assert.equal(s[s.length - 1], -i);
    });
    const large = stackRows('FP32', [new Float32Array(5000), new Float32Array(5000)]) as Float32Array;
    assert.equal(large.byteLength, large.buffer.byteLength);
  });

  test('stackRows of a single request returns it as is (no copy)', () => {
    const a = Float32Array.of(1, 2);
    assert.equal(stackRows('FP32', [a]), a);
  });

  test('stackRows/splitRows round-trip INT64 and BYTES rows', () => {
    const i64 = stackRows('INT64', [BigInt64Array.of(1n), BigInt64Array.of(2n ** 60n, -3n)]) as BigInt64Array;
    assert.ok(i64 instanceof BigInt64Array);
    assert.deepEqual(Array.from(i64), [1n, 2n ** 60n, -3n]);
    const enc = new TextEncoder();
    const rows = [[enc.encode('a')], [enc.encode('b'), enc.encode('c')]];
    const stacked = stackRows('BYTES', rows) as Uint8Array[];
    assert.equal(stacked.length, 3);
    const back = splitRows(stacked, 1, [1, 2]) as Uint8Array[][];
    assert.deepEqual(
      back.map((r) => r.map((x) => new TextDecoder().decode(x))),
      [['a'], ['b', 'c']],
    );
  });

  test('rowSize is the product of all dimensions but the first', () => {
    assert.equal(rowSize([-1, 3, 4]), 12);
    assert.equal(rowSize([7]), 1);
  });

  test('checkShape returns the element count and enforces the element cap at its boundary', () => {
    const free = spec('FP32', [-1, -1]);
    assert.equal(checkShape('pixels', [3, 4], free), 12);
    assert.equal(checkShape('pixels', [2 ** 14, 2 ** 14], free), MAX_ELEMENTS);
    throwsCode(() => checkShape('pixels', [2 ** 14 + 1, 2 ** 14], free), 'SLOGATE_ERR_INVALID_TENSOR');
    throwsCode(() => checkShape('pixels', [2 ** 16, 2 ** 16], free), 'SLOGATE_ERR_INVALID_TENSOR');
  });

  test('checkShape refuses a batch dimension of 0', () => {
    throwsCode(() => checkShape('pixels', [0, 3], FP32_ROWS), 'SLOGATE_ERR_INVALID_TENSOR');
  });

  test('checkShape refuses negative, fractional and non-numeric dimensions and non-array shapes', () => {
    for (const shape of [
      [-1, 3],
      [1.5, 3],
      ['1', 3],
      [null, 3],
      [1, -3],
      '1,3',
      undefined,
      { 0: 1, 1: 3, length: 2 },
    ]) {
      throwsCode(() => checkShape('pixels', shape, FP32_ROWS), 'SLOGATE_ERR_INVALID_TENSOR');
    }
  });

  test('checkShape refuses a wrong-rank shape whose elements cannot be printed as an invalid tensor', () => {
    throwsCode(() => checkShape('pixels', [{ toString: 1 }], FP32_ROWS), 'SLOGATE_ERR_INVALID_TENSOR');
  });
});

test('half-precision inputs refuse finite values that would overflow to infinity (unless non-finite values are allowed)', async () => {
  const { decodeJsonTensor, toHalfBits } = await import('../../../runtime/tensor.js');
  const spec = { name: 'h', datatype: 'FP16' as const, shape: [-1, 2] };
  assert.equal(toHalfBits(65519), 0x7bff, '65519 still rounds to the largest half');
  assert.doesNotThrow(() => decodeJsonTensor('h', 'FP32', [1, 2], [65519, -65519], spec, false));
  assert.throws(
    () => decodeJsonTensor('h', 'FP32', [1, 2], [65520, 0], spec, false),
    (e: { code?: string }) => e.code === 'SLOGATE_ERR_DATATYPE',
  );
  assert.doesNotThrow(() => decodeJsonTensor('h', 'FP32', [1, 2], [1e6, 0], spec, true));
  const bf = { name: 'b', datatype: 'BF16' as const, shape: [-1, 1] };
  assert.throws(
    () => decodeJsonTensor('b', 'FP32', [1, 1], [3.4e38], bf, false),
    (e: { code?: string }) => e.code === 'SLOGATE_ERR_DATATYPE',
  );
  assert.doesNotThrow(() => decodeJsonTensor('b', 'FP32', [1, 1], [3.38e38], bf, false));
});
