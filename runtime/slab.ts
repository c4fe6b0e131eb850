// Storage for short-lived tensors (a request's decoded input, a batch's stacked rows) carved from shared slabs: one
// ArrayBuffer serves many tensors, where a buffer of their own (its backing store, its accounting, its sweep) costs
// more than copying their bytes. A slice never owns its whole buffer, so a worker gets a copy of its bytes
// (worker-inputs.ts). A live slice keeps its whole slab: what that pins is bounded by the slabs filled while the
// oldest live request waits, as with Node's own buffer pool.
import type { NumericArray, V2Datatype } from '../core/types.js';

const SLAB_BYTES = 128 * 1024;
/** Larger tensors take a buffer of their own: a few of them would use up a slab, and theirs may move to a worker. */
export const MAX_SLAB_TENSOR_BYTES = 32 * 1024;

type ArrayOf = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): NumericArray;
  readonly BYTES_PER_ELEMENT: number;
};
const ARRAYS: Readonly<Partial<Record<V2Datatype, ArrayOf>>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  FP16: Uint16Array,
  BF16: Uint16Array,
  INT16: Int16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

let slab = new ArrayBuffer(0);
let used = 0;

/**
 * `n` elements of `dt` (at most MAX_SLAB_TENSOR_BYTES) in a slab, 8-byte aligned and not cleared: the caller writes
 * every element before anyone reads one, or a request would see another's bytes.
 */
export function slabArray(dt: V2Datatype, n: number): NumericArray {
  const View = ARRAYS[dt];
  const bytes = n * (View?.BYTES_PER_ELEMENT ?? 0);
  if (View === undefined || bytes > MAX_SLAB_TENSOR_BYTES) throw new Error(`no slab storage for ${n} ${dt}`);
  if (used + bytes > slab.byteLength) {
    // Node's unpooled Buffer skips the zero-fill of `new ArrayBuffer`: every byte is written before it is read.
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
    used = 0;
  }
  const out = new View(slab, used, n);
  used += (bytes + 7) & ~7;
  return out;
}
