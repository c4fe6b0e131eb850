// V2 datatypes <-> typed arrays: decoding JSON and binary tensor data into the model's input types (with the
// coercion rules documented in docs/api.md), encoding outputs, and stacking/splitting rows for batching.
import { describeValue } from '../core/describe-value.js';
import { SlogateError } from '../core/errors.js';
import type { NumericArray, Tensor, TensorSpec, TensorStorage, V2Datatype } from '../core/types.js';
import { V2_DATATYPES } from '../core/types.js';
import { MAX_SLAB_TENSOR_BYTES, slabArray } from './slab.js';

export const ELEMENT_BYTES: Readonly<Record<V2Datatype, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BF16: 2,
  BYTES: 0,
};

/** Most elements one tensor may hold (guards shape products against overflow and absurd allocations). */
export const MAX_ELEMENTS = 1 << 28;

const INT_RANGES: Partial<Record<V2Datatype, readonly [number, number]>> = {
  UINT8: [0, 255],
  INT8: [-128, 127],
  UINT16: [0, 65535],
  INT16: [-32768, 32767],
  UINT32: [0, 4294967295],
  INT32: [-2147483648, 2147483647],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const FLOAT_TYPES: ReadonlySet<V2Datatype> = new Set(['FP16', 'FP32', 'FP64', 'BF16']);
/** Smallest magnitudes that round to infinity (the largest finite value plus half a unit in the last place). */
const FP16_OVERFLOW = 65520;
const BF16_OVERFLOW = 2 ** 128 - 2 ** 119;
const FP32_OVERFLOW = 2 ** 128 - 2 ** 103;

export function isV2Datatype(v: unknown): v is V2Datatype {
  return typeof v === 'string' && (V2_DATATYPES as readonly string[]).includes(v);
}

export function isNumericType(dt: V2Datatype): boolean {
  return dt !== 'BOOL' && dt !== 'BYTES';
}

export function isFloatType(dt: V2Datatype): boolean {
  return FLOAT_TYPES.has(dt);
}

/** Allocates zeroed storage for n elements of a datatype. */
export function allocate(dt: V2Datatype, n: number): TensorStorage {
  switch (dt) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(n);
    case 'INT8':
      return new Int8Array(n);
    case 'UINT16':
    case 'FP16':
    case 'BF16':
      return new Uint16Array(n);
    case 'INT16':
      return new Int16Array(n);
    case 'UINT32':
      return new Uint32Array(n);
    case 'INT32':
      return new Int32Array(n);
    case 'UINT64':
      return new BigUint64Array(n);
    case 'INT64':
      return new BigInt64Array(n);
    case 'FP32':
      return new Float32Array(n);
    case 'FP64':
      return new Float64Array(n);
    case 'BYTES':
      return new Array<Uint8Array>(n);
  }
}

function tensorError(
  code: 'SLOGATE_ERR_INVALID_TENSOR' | 'SLOGATE_ERR_DATATYPE' | 'SLOGATE_ERR_BINARY_DATA',
  name: string,
  msg: string,
): SlogateError {
  return new SlogateError(code, `input '${name}': ${msg}`);
}

/** Checks a request shape against the spec; returns the element count. */
export function checkShape(name: string, shape: unknown, spec: TensorSpec): number {
  if (!Array.isArray(shape))
    throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, 'shape must be an array of non-negative integers');
  // Elements first: every message below prints the shape, which is only safe once it holds plain numbers.
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as unknown;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      throw tensorError(
        'SLOGATE_ERR_INVALID_TENSOR',
        name,
        `shape[${i}] must be a non-negative integer, got ${describeValue(d)}`,
      );
  }
  const dims = shape as number[];
  if (dims.length !== spec.shape.length) {
    throw tensorError(
      'SLOGATE_ERR_INVALID_TENSOR',
      name,
      `shape ${shapeText(dims)} has rank ${dims.length}, the model expects rank ${spec.shape.length} [${spec.shape.join(',')}]`,
    );
  }
  let n = 1;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i] as number;
    const want = spec.shape[i] as number;
    if (want >= 0 && d !== want)
      throw tensorError(
        'SLOGATE_ERR_INVALID_TENSOR',
        name,
        `shape ${shapeText(dims)} does not match the model's [${spec.shape.join(',')}] at dimension ${i}`,
      );
    n *= d;
    if (n > MAX_ELEMENTS)
      throw tensorError(
        'SLOGATE_ERR_INVALID_TENSOR',
        name,
        `shape ${shapeText(dims)} holds more than ${MAX_ELEMENTS} elements`,
      );
  }
  if (spec.shape.length > 0 && spec.shape[0] === -1 && dims[0] === 0)
    throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, 'batch dimension must be at least 1');
  return n;
}

/** A client's shape for a message: its first dimensions only (a shape can be as long as the body allows). */
function shapeText(dims: readonly number[]): string {
  const shown = dims.length <= SHAPE_DIMS_SHOWN ? dims : [...dims.slice(0, SHAPE_DIMS_SHOWN), '...'];
  return `[${shown.join(',')}]`;
}

const SHAPE_DIMS_SHOWN = 8;

/** Conversion of request datatype `from` into model datatype `to`: same type, or numeric to numeric. */
export function checkConvertible(name: string, from: V2Datatype, to: V2Datatype): void {
  if (from === to) return;
  if (isNumericType(from) && isNumericType(to)) return;
  throw tensorError('SLOGATE_ERR_DATATYPE', name, `datatype ${from} cannot be converted to the model's ${to}`);
}

// ---------- scalar conversions ----------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits from a number, round to nearest even. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry rounds up into the exponent, as it should
  return sign | half;
}

export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  if (Number.isNaN(value)) return 0x7fc0;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function fromBf16Bits(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0] as number;
}

/** Reads element i of storage as a JS number (BigInt types converted; may lose precision beyond 2^53). */
function readNumber(dt: V2Datatype, data: NumericArray, i: number): number {
  const v = data[i] as number | bigint;
  if (dt === 'FP16') return fromHalfBits(v as number);
  if (dt === 'BF16') return fromBf16Bits(v as number);
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Stores a JS number into element i of `to`-typed storage, checking the target domain. */
function storeNumber(
  name: string,
  to: V2Datatype,
  out: NumericArray,
  i: number,
  v: number,
  allowNonFinite: boolean,
): void {
  if (isFloatType(to)) {
    if (!allowNonFinite && !Number.isFinite(v))
      throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} is not a finite number`);
    // A finite value too large for the half-precision type would silently become infinite: refuse it like FP32 does.
    if (
      !allowNonFinite &&
      Number.isFinite(v) &&
      Math.abs(v) >=
        (to === 'FP16'
          ? FP16_OVERFLOW
          : to === 'BF16'
            ? BF16_OVERFLOW
            : to === 'FP32'
              ? FP32_OVERFLOW
              : Number.POSITIVE_INFINITY)
    ) {
      throw tensorError('SLOGATE_ERR_DATATYPE', name, `element ${i} (${v}) overflows ${to}`);
    }
    if (to === 'FP16') (out as Uint16Array)[i] = toHalfBits(v);
    else if (to === 'BF16') (out as Uint16Array)[i] = toBf16Bits(v);
    else (out as Float32Array)[i] = v;
    return;
  }
  const range = INT_RANGES[to] as readonly [number, number];
  if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
    throw tensorError('SLOGATE_ERR_DATATYPE', name, `element ${i} (${v}) is not representable as ${to}`);
  }
  if (to === 'INT64' || to === 'UINT64') (out as BigInt64Array)[i] = BigInt(v);
  else (out as Int32Array)[i] = v;
}

// ---------- JSON decoding ----------

/** Flattens V2 tensor `data` (flat, or nested exactly as `shape`) into a plain array of n elements. */
export function flattenData(name: string, data: unknown, shape: readonly number[], n: number): unknown[] {
  if (!Array.isArray(data)) throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, 'data must be an array');
  if (data.length > 0 && Array.isArray(data[0]) && shape.length > 1) {
    const out: unknown[] = [];
    const walk = (node: unknown, dim: number, path: string): void => {
      const want = shape[dim] as number;
      if (dim === shape.length - 1) {
        if (!Array.isArray(node) || node.length !== want)
          throw tensorError(
            'SLOGATE_ERR_INVALID_TENSOR',
            name,
            `nested data at ${path} must have ${want} elements to match shape [${shape.join(',')}]`,
          );
        for (const x of node) {
          if (Array.isArray(x))
            throw tensorError(
              'SLOGATE_ERR_INVALID_TENSOR',
              name,
              `nested data at ${path} is deeper than shape [${shape.join(',')}]`,
            );
          out.push(x);
        }
        return;
      }
      if (!Array.isArray(node) || node.length !== want)
        throw tensorError(
          'SLOGATE_ERR_INVALID_TENSOR',
          name,
          `nested data at ${path} must have ${want} elements to match shape [${shape.join(',')}]`,
        );
      for (let i = 0; i < node.length; i++) walk(node[i], dim + 1, `${path}[${i}]`);
    };
    walk(data, 0, 'data');
    return out;
  }
  if (data.length !== n)
    throw tensorError(
      'SLOGATE_ERR_INVALID_TENSOR',
      name,
      `data has ${data.length} elements, shape [${shape.join(',')}] needs ${n}`,
    );
  return data;
}

/**
 * Decodes a JSON tensor into storage of the model's datatype. Values are checked against the declared datatype
 * first, then converted: numeric types convert to each other when every value is representable in the target.
 */
export function decodeJsonTensor(
  name: string,
  datatype: V2Datatype,
  shape: readonly number[],
  data: unknown,
  spec: TensorSpec,
  allowNonFinite: boolean,
): Tensor {
  const n = checkShape(name, shape, spec);
  checkConvertible(name, datatype, spec.datatype);
  const flat = flattenData(name, data, shape, n);
  const to = spec.datatype;
  if (to === 'BYTES') {
    const out = new Array<Uint8Array>(n);
    const enc = new TextEncoder();
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'string')
        throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} must be a string for BYTES`);
      out[i] = enc.encode(v);
    }
    return { name, datatype: to, shape: [...shape], data: out };
  }
  if (to === 'BOOL') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'boolean')
        throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} must be true or false for BOOL`);
      out[i] = v ? 1 : 0;
    }
    return { name, datatype: to, shape: [...shape], data: out };
  }
  const out = allocate(to, n) as NumericArray;
  if (to === 'FP32' && (datatype === 'FP32' || datatype === 'FP64')) {
    // Hot path: the common case, kept branch-light.
    const o = out as Float32Array;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'number') throw notANumber(name, i, v);
      o[i] = v;
    }
    if (!allowNonFinite) assertFinite(name, o);
    return { name, datatype: to, shape: [...shape], data: o };
  }
  const declaredRange = INT_RANGES[datatype];
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw notANumber(name, i, v);
    if (declaredRange !== undefined && (!Number.isInteger(v) || v < declaredRange[0] || v > declaredRange[1])) {
      throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} (${v}) is not a valid ${datatype}`);
    }
    storeNumber(name, to, out, i, v, allowNonFinite);
  }
  return { name, datatype: to, shape: [...shape], data: out };
}

function notANumber(name: string, i: number, v: unknown): SlogateError {
  const why =
    v === null
      ? 'null (JSON cannot carry NaN or infinities; use the binary extension if the model allows them)'
      : describeValue(v);
  return tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} must be a number, got ${why}`);
}

function assertFinite(name: string, data: Float32Array | Float64Array): void {
  if (nonFiniteSum(data) === 0) return;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (v - v !== 0) throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} is not a finite number`);
  }
}

/**
 * 0 when every element is finite, NaN otherwise (x * 0 is NaN for NaN and the infinities). Four sums and no branch
 * per element: about twice as fast as testing each element, and every request's input passes through here.
 */
function nonFiniteSum(d: Float32Array | Float64Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const end = d.length - (d.length % 4);
  let i = 0;
  for (; i < end; i += 4) {
    s0 += (d[i] as number) * 0;
    s1 += (d[i + 1] as number) * 0;
    s2 += (d[i + 2] as number) * 0;
    s3 += (d[i + 3] as number) * 0;
  }
  for (; i < d.length; i++) s0 += (d[i] as number) * 0;
  return s0 + s1 + s2 + s3;
}

// ---------- binary decoding ----------

/** Parses the BYTES binary layout: each element a 4-byte little-endian length, then its bytes. */
export function parseBytesElements(name: string, bytes: Uint8Array, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (off < bytes.byteLength) {
    if (off + 4 > bytes.byteLength)
      throw tensorError('SLOGATE_ERR_BINARY_DATA', name, 'BYTES element length prefix is cut short');
    const len = view.getUint32(off, true);
    off += 4;
    if (off + len > bytes.byteLength)
      throw tensorError('SLOGATE_ERR_BINARY_DATA', name, 'BYTES element runs past its binary_data_size');
    out.push(bytes.slice(off, off + len));
    off += len;
  }
  if (out.length !== n)
    throw tensorError(
      'SLOGATE_ERR_BINARY_DATA',
      name,
      `binary BYTES data holds ${out.length} elements, shape needs ${n}`,
    );
  return out;
}

/**
 * The bytes copied out of the request body into a typed array of `dt`: the body's bytes need not be aligned for it.
 * A small tensor's copy lies in a shared slab (runtime/slab.ts).
 */
function viewAs(dt: V2Datatype, bytes: Uint8Array): NumericArray {
  const n = bytes.byteLength;
  const out = toFill(dt, n / ELEMENT_BYTES[dt]);
  new Uint8Array(out.buffer, out.byteOffset, n).set(bytes);
  return out;
}

export function decodeBinaryTensor(
  name: string,
  datatype: V2Datatype,
  shape: readonly number[],
  bytes: Uint8Array,
  spec: TensorSpec,
  allowNonFinite: boolean,
): Tensor {
  const n = checkShape(name, shape, spec);
  checkConvertible(name, datatype, spec.datatype);
  const to = spec.datatype;
  if (datatype === 'BYTES') return { name, datatype: to, shape: [...shape], data: parseBytesElements(name, bytes, n) };
  const want = n * ELEMENT_BYTES[datatype];
  if (bytes.byteLength !== want)
    throw tensorError(
      'SLOGATE_ERR_BINARY_DATA',
      name,
      `binary_data_size is ${bytes.byteLength} bytes, shape [${shape.join(',')}] of ${datatype} needs ${want}`,
    );
  const src = viewAs(datatype, bytes);
  if (datatype === 'BOOL') {
    for (let i = 0; i < n; i++)
      if ((src[i] as number) > 1)
        throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} is not a valid BOOL byte (0 or 1)`);
    return { name, datatype: to, shape: [...shape], data: src };
  }
  if (datatype === to) {
    if (!allowNonFinite) {
      if (to === 'FP32' || to === 'FP64') assertFinite(name, src as Float32Array);
      else if (to === 'FP16' || to === 'BF16')
        for (let i = 0; i < n; i++)
          if (!Number.isFinite(readNumber(to, src, i)))
            throw tensorError('SLOGATE_ERR_INVALID_TENSOR', name, `element ${i} is not a finite number`);
    }
    return { name, datatype: to, shape: [...shape], data: src };
  }
  const out = allocate(to, n) as NumericArray;
  for (let i = 0; i < n; i++) storeNumber(name, to, out, i, readNumber(datatype, src, i), allowNonFinite);
  return { name, datatype: to, shape: [...shape], data: out };
}

// ---------- encoding outputs ----------

/** The tensor's data as a JSON array literal (exact for 64-bit integers; non-finite floats become null). */
export function jsonDataString(dt: V2Datatype, data: TensorStorage): string {
  if (dt === 'BYTES') {
    const dec = new TextDecoder();
    return JSON.stringify((data as Uint8Array[]).map((b) => dec.decode(b)));
  }
  if (dt === 'BOOL') {
    const d = data as Uint8Array;
    let s = '[';
    for (let i = 0; i < d.length; i++) s += (i === 0 ? '' : ',') + (d[i] !== 0 ? 'true' : 'false');
    return `${s}]`;
  }
  const d = data as NumericArray;
  if (dt === 'FP16' || dt === 'BF16') {
    const parts = new Array<string>(d.length);
    for (let i = 0; i < d.length; i++) {
      const v = readNumber(dt, d, i);
      parts[i] = Number.isFinite(v) ? String(v) : 'null';
    }
    return `[${parts.join(',')}]`;
  }
  if (dt === 'FP32' || dt === 'FP64') {
    const f = d as Float32Array;
    for (let i = 0; i < f.length; i++) {
      const v = f[i] as number;
      if (v - v !== 0) return `[${Array.from(f, (x) => (Number.isFinite(x) ? String(x) : 'null')).join(',')}]`;
    }
  }
  return `[${d.join(',')}]`;
}

/** The tensor's data as little-endian bytes, as the binary tensor extension carries it (a view when possible). */
export function binaryData(dt: V2Datatype, data: TensorStorage): Uint8Array {
  if (dt === 'BYTES') {
    const items = data as Uint8Array[];
    let size = 0;
    for (const b of items) size += 4 + b.byteLength;
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let off = 0;
    for (const b of items) {
      view.setUint32(off, b.byteLength, true);
      out.set(b, off + 4);
      off += 4 + b.byteLength;
    }
    return out;
  }
  const d = data as NumericArray;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

// ---------- batching ----------

/** Elements per row (product of all but the first dimension). */
export function rowSize(shape: readonly number[]): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) n *= shape[i] as number;
  return n;
}

/** Storage for `n` elements that the caller fills entirely: a slab's slice when small, else a buffer of its own. */
function toFill(dt: V2Datatype, n: number): NumericArray {
  return n * ELEMENT_BYTES[dt] <= MAX_SLAB_TENSOR_BYTES ? slabArray(dt, n) : (allocate(dt, n) as NumericArray);
}

/** Concatenates same-typed tensors along the first dimension into one new storage (one copy; a slab's when small). */
export function stackRows(dt: V2Datatype, parts: readonly TensorStorage[]): TensorStorage {
  if (parts.length === 1) return parts[0] as TensorStorage;
  if (dt === 'BYTES') return (parts as Uint8Array[][]).flat();
  let total = 0;
  for (const p of parts) total += (p as NumericArray).length;
  const out = toFill(dt, total);
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p as Float32Array, off);
    off += (p as NumericArray).length;
  }
  return out;
}

/** Splits storage along the first dimension into views of `rows[i]` rows each (no copy for numeric types). */
export function splitRows(data: TensorStorage, rowElems: number, rows: readonly number[]): TensorStorage[] {
  const out: TensorStorage[] = [];
  let off = 0;
  for (const r of rows) {
    const len = r * rowElems;
    out.push(Array.isArray(data) ? data.slice(off, off + len) : (data as Float32Array).subarray(off, off + len));
    off += len;
  }
  return out;
}
