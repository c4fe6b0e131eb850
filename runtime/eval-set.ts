// Reads a model's eval set (models/digits/README.md describes the format): labelled rows of features stored as
// little-endian u16 fixed-point values, turned back into FP32.
import { readFileSync } from 'node:fs';
import { SlogateError } from '../core/errors.js';

export interface EvalSet {
  /** Samples. */
  readonly count: number;
  /** Features per sample. */
  readonly features: number;
  readonly labels: Uint8Array;
  /** count x features, row-major. */
  readonly data: Float32Array;
}

const MAGIC = 'SLGEVAL1';

export function parseEvalSet(buf: Uint8Array, source = 'eval set'): EvalSet {
  const fail = (msg: string) => new SlogateError('SLOGATE_ERR_MODEL_LOAD', `${source}: ${msg}`);
  if (buf.byteLength < 24 || Buffer.from(buf.subarray(0, 8)).toString('latin1') !== MAGIC)
    throw fail(`not an eval set (magic ${MAGIC} missing)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = view.getUint32(8, true);
  const features = view.getUint32(12, true);
  const scale = view.getUint32(16, true);
  if (count === 0 || features === 0 || scale === 0) throw fail('count, features and scale must be positive');
  const labelsAt = 24;
  const dataAt = Math.ceil((labelsAt + count) / 8) * 8;
  const need = dataAt + count * features * 2;
  if (buf.byteLength !== need) throw fail(`size is ${buf.byteLength} bytes, the header implies ${need}`);
  const labels = buf.slice(labelsAt, labelsAt + count);
  const data = new Float32Array(count * features);
  for (let i = 0; i < data.length; i++) data[i] = view.getUint16(dataAt + 2 * i, true) / scale;
  return { count, features, labels, data };
}

export function readEvalSet(path: string): EvalSet {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `cannot read eval set ${path}: ${(err as Error).message}`);
  }
  return parseEvalSet(buf, path);
}

/** Row i of the eval set (a view, no copy). */
export function evalRow(set: EvalSet, i: number): Float32Array {
  return set.data.subarray(i * set.features, (i + 1) * set.features);
}
