// Reads what bench scores from a V2 infer answer, JSON or binary tensor extension: the variant that served it
// (`model_version`) and the predicted class, from a `label` output or, for servers without one, the argmax of the
// first row of an output (the logits).
import type { Http1Response } from './http1-response.js';
import type { RunRecords } from './records.js';

export interface Scoring {
  /** Output to read. */
  readonly output: string;
  /** `label`: the output holds the class; `argmax`: the class is the index of its largest value in row 0. */
  readonly mode: 'label' | 'argmax';
}

export interface Answer {
  readonly variant: string | undefined;
  /** The predicted class; undefined when the output is missing or unreadable. */
  readonly predicted: number | undefined;
}

interface OutputDoc {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
  parameters?: { binary_data_size?: unknown };
}

/** Parses an answer; `jsonLength` is the Inference-Header-Content-Length (undefined for a pure JSON body). Never throws. */
export function readAnswer(body: Uint8Array, jsonLength: number | undefined, scoring: Scoring | undefined): Answer {
  let doc: { model_version?: unknown; outputs?: unknown };
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  try {
    doc = JSON.parse(buf.toString('utf8', 0, jsonLength ?? buf.byteLength)) as typeof doc;
  } catch {
    return { variant: undefined, predicted: undefined };
  }
  const variant = typeof doc.model_version === 'string' && doc.model_version !== '' ? doc.model_version : undefined;
  if (scoring === undefined || !Array.isArray(doc.outputs)) return { variant, predicted: undefined };
  const outputs = doc.outputs as OutputDoc[];
  let offset = jsonLength ?? 0;
  for (const o of outputs) {
    const size = typeof o.parameters?.binary_data_size === 'number' ? o.parameters.binary_data_size : undefined;
    if (o.name === scoring.output) {
      const values =
        size !== undefined && jsonLength !== undefined
          ? binaryValues(buf.subarray(offset, offset + size), String(o.datatype))
          : flatNumbers(o.data);
      return { variant, predicted: values === undefined ? undefined : predicted(values, o.shape, scoring.mode) };
    }
    if (size !== undefined) offset += size;
  }
  return { variant, predicted: undefined };
}

function predicted(values: readonly number[], shape: unknown, mode: Scoring['mode']): number | undefined {
  if (values.length === 0) return undefined;
  if (mode === 'label') return values[0];
  const rowLen =
    Array.isArray(shape) && shape.length > 1 ? (shape.slice(1) as number[]).reduce((a, b) => a * b, 1) : values.length;
  let best = 0;
  for (let i = 1; i < Math.min(rowLen, values.length); i++)
    if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function flatNumbers(data: unknown): number[] | undefined {
  if (!Array.isArray(data)) return undefined;
  const out: number[] = [];
  const walk = (x: unknown): boolean => {
    if (Array.isArray(x)) return x.every(walk);
    if (typeof x === 'number') out.push(x);
    else if (typeof x === 'boolean') out.push(x ? 1 : 0);
    else return false;
    return true;
  };
  return walk(data) ? out : undefined;
}

const READERS: Record<string, [number, (b: Buffer, o: number) => number]> = {
  INT64: [8, (b, o) => Number(b.readBigInt64LE(o))],
  UINT64: [8, (b, o) => Number(b.readBigUInt64LE(o))],
  INT32: [4, (b, o) => b.readInt32LE(o)],
  UINT32: [4, (b, o) => b.readUInt32LE(o)],
  INT16: [2, (b, o) => b.readInt16LE(o)],
  UINT16: [2, (b, o) => b.readUInt16LE(o)],
  INT8: [1, (b, o) => b.readInt8(o)],
  UINT8: [1, (b, o) => b.readUInt8(o)],
  BOOL: [1, (b, o) => b.readUInt8(o)],
  FP32: [4, (b, o) => b.readFloatLE(o)],
  FP64: [8, (b, o) => b.readDoubleLE(o)],
};

function binaryValues(bytes: Buffer, datatype: string): number[] | undefined {
  const r = READERS[datatype];
  if (r === undefined) return undefined;
  const [size, read] = r;
  const out: number[] = [];
  for (let o = 0; o + size <= bytes.byteLength; o += size) out.push(read(bytes, o));
  return out;
}

/**
 * Records slot `i`'s answer: its status and error code and, for a 200, the variant and whether it was right (against
 * `label`; -1 when unknown). True when the answer was a 200.
 */
export function recordAnswer(
  rec: RunRecords,
  i: number,
  res: Http1Response,
  latencyMs: number,
  scoring: Scoring | undefined,
  label: number,
): boolean {
  const code = res.headers['x-slogate-error-code'];
  if (res.status !== 200) {
    rec.answer(i, res.status, latencyMs, code, undefined, -1);
    return false;
  }
  const headerLength = res.headers['inference-header-content-length'];
  const answer = readAnswer(res.body, headerLength === undefined ? undefined : Number(headerLength), scoring);
  const correct = label < 0 || answer.predicted === undefined ? -1 : answer.predicted === label ? 1 : 0;
  rec.answer(i, 200, latencyMs, code, answer.variant, correct);
  return true;
}
