// V2 request bodies for load generation: real eval samples (so answers can be scored) or random tensors shaped
// from a model's metadata, in JSON or with the binary tensor data extension.
import type { EvalSet } from '../runtime/eval-set.js';

export type Protocol = 'json' | 'binary';

export interface V2Body {
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  /** The eval labels of the rows, when the body came from the eval set. */
  readonly labels?: readonly number[];
}

export interface InputSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * One request of `rows` rows starting at eval sample `start` (wrapping around). With `binaryOutputs` false, a binary
 * request asks for its outputs as JSON (for clients that read the answer as text).
 */
export function evalBody(
  set: EvalSet,
  input: InputSpec,
  start: number,
  rows: number,
  protocol: Protocol,
  outputs: readonly string[] = ['label'],
  binaryOutputs = true,
): V2Body {
  const data = new Float32Array(rows * set.features);
  const labels: number[] = [];
  for (let r = 0; r < rows; r++) {
    const i = (start + r) % set.count;
    data.set(set.data.subarray(i * set.features, (i + 1) * set.features), r * set.features);
    labels.push(set.labels[i] as number);
  }
  return {
    ...encodeFp32(
      input.name,
      [rows, ...input.shape.slice(1).map((d) => (d < 0 ? 1 : d))],
      data,
      protocol,
      outputs,
      binaryOutputs,
    ),
    labels,
  };
}

/** Random FP32 values in [0, 1) for a shape (variable dimensions become 1). */
export function randomBody(
  input: InputSpec,
  rows: number,
  protocol: Protocol,
  rand: () => number = Math.random,
  outputs: readonly string[] = [],
  binaryOutputs = true,
): V2Body {
  const shape = [rows, ...input.shape.slice(1).map((d) => (d < 0 ? 1 : d))];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rand();
  return encodeFp32(input.name, shape, data, protocol, outputs, binaryOutputs);
}

export function encodeFp32(
  name: string,
  shape: readonly number[],
  data: Float32Array,
  protocol: Protocol,
  outputs: readonly string[],
  binaryOutputs = true,
): V2Body {
  const jsonOuts = protocol === 'binary' && !binaryOutputs;
  const outs =
    outputs.length > 0
      ? outputs.map((o) => (jsonOuts ? { name: o, parameters: { binary_data: false } } : { name: o }))
      : undefined;
  if (protocol === 'json') {
    const doc = {
      inputs: [{ name, shape, datatype: 'FP32', data: Array.from(data) }],
      ...(outs === undefined ? {} : { outputs: outs }),
    };
    return { body: Buffer.from(JSON.stringify(doc)), headers: { 'content-type': 'application/json' } };
  }
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name, shape, datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
      ...(outs === undefined ? {} : { outputs: outs }),
      parameters: { binary_data_output: binaryOutputs },
    }),
  );
  return {
    body: Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
  };
}
