// Accuracy of a model over an eval set: the predicted class of each row and the count of correct ones, for
// `slogate eval` and a deploy's accuracy gate alike (each supplies how a batch runs).
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { SlogateError } from '../core/errors.js';
import type { ModelSignature, Tensor, TensorSpec } from '../core/types.js';
import type { EvalSet } from './eval-set.js';

/** The predicted class of each row: an integer output named `label` if the model has one, else argmax of the first output. */
export function predictions(outputs: readonly Tensor[], rows: number): Int32Array {
  const out = new Int32Array(rows);
  const label = outputs.find((o) => o.name === 'label' && (o.datatype === 'INT64' || o.datatype === 'INT32'));
  if (label !== undefined) {
    const d = label.data as BigInt64Array | Int32Array;
    for (let i = 0; i < rows; i++) out[i] = Number(d[i]);
    return out;
  }
  const first = outputs[0];
  if (first === undefined) throw new SlogateError('SLOGATE_ERR_INTERNAL', 'model returned no outputs');
  const d = first.data as Float32Array;
  const classes = d.length / rows;
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if ((d[i * classes + c] as number) > (d[i * classes + best] as number)) best = c;
    out[i] = best;
  }
  return out;
}

/** Runs one batch of eval rows and answers its outputs. */
export type EvalBatchRunner = (inputs: Tensor[], rows: number) => Promise<readonly Tensor[]>;

/** Correct predictions of `run` over the whole eval set, in batches of at most `rowsPer` rows run at once. */
export async function countCorrect(
  run: EvalBatchRunner,
  model: string,
  sig: ModelSignature,
  set: EvalSet,
  rowsPer: number,
): Promise<number> {
  const input = sig.inputs[0] as TensorSpec;
  if (sig.inputs.length !== 1 || input.datatype !== 'FP32')
    throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `model ${model}: eval needs a single FP32 input`);
  const rowElems = input.shape.slice(1).reduce((a, b) => a * b, 1);
  if (rowElems !== set.features)
    throw new SlogateError(
      'SLOGATE_ERR_MODEL_LOAD',
      `model ${model}: eval set rows have ${set.features} features, the input needs ${rowElems}`,
    );
  const jobs: Promise<number>[] = [];
  for (let start = 0; start < set.count; start += rowsPer) {
    // Each batch's copy of its rows is made on its own turn of the event loop: the whole set at once would hold up
    // the requests a serving process receives meanwhile.
    if (start > 0) await yieldToLoop();
    const rows = Math.min(rowsPer, set.count - start);
    const data = set.data.slice(start * set.features, (start + rows) * set.features);
    const shape = [rows, ...input.shape.slice(1)];
    const job = run([{ name: input.name, datatype: 'FP32', shape, data }], rows).then((outputs) => {
      const pred = predictions(outputs, rows);
      let ok = 0;
      for (let i = 0; i < rows; i++) if (pred[i] === set.labels[start + i]) ok++;
      return ok;
    });
    // A batch may fail while later ones are still being made: Promise.all below reports it, not the process.
    job.catch(() => {});
    jobs.push(job);
  }
  return (await Promise.all(jobs)).reduce((a, b) => a + b, 0);
}

/** Accuracy as recorded: four decimals. */
export function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
