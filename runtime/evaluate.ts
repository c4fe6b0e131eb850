// `slogate eval`: runs every variant of a model over its eval set through the real runtime (worker replicas,
// batching) and records the measured accuracy in the model's metadata file. No accuracy is ever typed by hand.
import { writeFileSync } from 'node:fs';
import { basename, dirname, relative } from 'node:path';
import { stringify } from 'yaml';
import { SlogateError } from '../core/errors.js';
import type { ModelSignature, Tensor, TensorSpec } from '../core/types.js';
import type { EvalSet } from './eval-set.js';
import { readEvalSet } from './eval-set.js';
import type { ModelMetadataFile } from './model-repository.js';
import { sha256File } from './model-repository.js';
import type { Runtime } from './runtime.js';

export interface VariantAccuracy {
  readonly variant: string;
  readonly sha256: string;
  readonly correct: number;
  readonly samples: number;
  readonly accuracy: number;
}

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
    const rows = Math.min(rowsPer, set.count - start);
    const data = set.data.slice(start * set.features, (start + rows) * set.features);
    const shape = [rows, ...input.shape.slice(1)];
    jobs.push(
      run([{ name: input.name, datatype: 'FP32', shape, data }], rows).then((outputs) => {
        const pred = predictions(outputs, rows);
        let ok = 0;
        for (let i = 0; i < rows; i++) if (pred[i] === set.labels[start + i]) ok++;
        return ok;
      }),
    );
  }
  return (await Promise.all(jobs)).reduce((a, b) => a + b, 0);
}

export async function evaluateVariant(
  runtime: Runtime,
  model: string,
  variant: string,
  set: EvalSet,
  batchRows = 64,
): Promise<VariantAccuracy> {
  const sig = runtime.repository.signature(model);
  const rowsPer = sig.batchable ? Math.min(batchRows, runtime.repository.model(model).config.maxBatch) : 1;
  const run: EvalBatchRunner = async (inputs, rows) => {
    const now = performance.now();
    const r = await runtime.submit({
      model,
      variant,
      inputs,
      rows,
      arrivalMs: now,
      deadlineAtMs: now + 3_600_000,
      priority: 0,
    });
    return r.outputs;
  };
  const correct = await countCorrect(run, model, sig, set, rowsPer);
  const v = runtime.repository.variant(model, variant);
  return { variant, sha256: v.sha256, correct, samples: set.count, accuracy: round4(correct / set.count) };
}

export function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

/** Evaluates every variant of a model and writes the metadata file; returns what it wrote. */
export async function evaluateModel(runtime: Runtime, model: string): Promise<ModelMetadataFile> {
  const m = runtime.repository.model(model);
  if (m.config.eval === undefined)
    throw new SlogateError('SLOGATE_ERR_CONFIG', `model ${model} has no eval set (models.${model}.eval)`);
  const set = readEvalSet(m.config.eval);
  const file: ModelMetadataFile = {
    model,
    eval: { file: basename(m.config.eval), sha256: await sha256File(m.config.eval), samples: set.count },
    evaluatedAt: new Date().toISOString(),
    variants: {},
  };
  for (const v of m.variants.values()) {
    const acc = await evaluateVariant(runtime, model, v.name, set);
    file.variants[v.name] = {
      sha256: acc.sha256,
      accuracy: acc.accuracy,
      correct: acc.correct,
      samples: acc.samples,
      provider: runtime.provider,
    };
    v.accuracy = acc.accuracy;
  }
  const target = m.config.metadata as string;
  const header = `# Written by \`slogate eval\` from ${relative(dirname(target), m.config.eval) || basename(m.config.eval)}; do not edit by hand.\n# Accuracy is trusted only while a variant's sha256 matches its file.\n`;
  writeFileSync(target, header + stringify(file));
  return file;
}
