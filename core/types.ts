// Plain data types shared by every layer: tensors as the V2 protocol names them, and what a request carries.

export const V2_DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
  'BF16',
] as const;
export type V2Datatype = (typeof V2_DATATYPES)[number];

/** Element storage per datatype: numeric types as typed arrays (FP16/BF16 as raw 16-bit patterns), BYTES as byte strings. */
export type NumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;
export type TensorStorage = NumericArray | Uint8Array[];

/** A tensor's declared signature; -1 marks a variable dimension (the first is the batch dimension when batchable). */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
}

export interface Tensor {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  readonly data: TensorStorage;
}

/** A model's input/output signature, identical for every variant of the model. */
export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** True when every input and output has a variable first (batch) dimension, so requests can be stacked. */
  readonly batchable: boolean;
}

/** What a client asked for on one output. */
export interface OutputRequest {
  readonly name: string;
  readonly binary: boolean;
}

/** One variant across the codebase: maps, metrics labels and logs name it `model/variant` (names are unique per model). */
export function variantKey(model: string, variant: string): string {
  return `${model}/${variant}`;
}
