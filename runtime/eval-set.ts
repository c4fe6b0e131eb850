// Reads a model's eval set (models/digits/README.md describes the format): labelled rows of features stored as
// little-endian u16 fixed-point values, turned back into FP32.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
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

/** Rows converted between two yields to the event loop by loadEvalSet: well under a millisecond of work each. */
const ROWS_PER_SLICE = 64;

interface Layout {
  readonly count: number;
  readonly features: number;
  readonly scale: number;
  readonly labelsAt: number;
  readonly dataAt: number;
  readonly view: DataView;
}

function layoutOf(buf: Uint8Array, source: string): Layout {
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
  return { count, features, scale, labelsAt, dataAt, view };
}

/** Converts rows [fromRow, toRow) of the fixed-point values into `data`. */
function convertRows(l: Layout, data: Float32Array, fromRow: number, toRow: number): void {
  const { view, dataAt, scale } = l;
  const end = toRow * l.features;
  for (let i = fromRow * l.features; i < end; i++) data[i] = view.getUint16(dataAt + 2 * i, true) / scale;
}

export function parseEvalSet(buf: Uint8Array, source = 'eval set'): EvalSet {
  const l = layoutOf(buf, source);
  const data = new Float32Array(l.count * l.features);
  convertRows(l, data, 0, l.count);
  return { count: l.count, features: l.features, labels: buf.slice(l.labelsAt, l.labelsAt + l.count), data };
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

/**
 * readEvalSet for a server that is serving: the file is read off the event loop and converted a slice of rows at a
 * time, yielding between slices, so requests arriving meanwhile are not held behind the whole conversion.
 */
export async function loadEvalSet(path: string): Promise<EvalSet> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `cannot read eval set ${path}: ${(err as Error).message}`);
  }
  return parseEvalSetInSlices(buf, path);
}

/** parseEvalSet in slices of rows, awaiting `pause` between two slices. */
export async function parseEvalSetInSlices(
  buf: Uint8Array,
  source: string,
  pause: () => Promise<unknown> = yieldToLoop,
): Promise<EvalSet> {
  const l = layoutOf(buf, source);
  const data = new Float32Array(l.count * l.features);
  for (let row = 0; row < l.count; row += ROWS_PER_SLICE) {
    if (row > 0) await pause();
    convertRows(l, data, row, Math.min(l.count, row + ROWS_PER_SLICE));
  }
  return { count: l.count, features: l.features, labels: buf.slice(l.labelsAt, l.labelsAt + l.count), data };
}

/** Row i of the eval set (a view, no copy). */
export function evalRow(set: EvalSet, i: number): Float32Array {
  return set.data.subarray(i * set.features, (i + 1) * set.features);
}
