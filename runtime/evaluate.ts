// `slogate eval`: runs every variant of a model over its eval set through the real runtime (worker replicas,
// batching) and records the measured accuracy in the model's metadata file. No accuracy is ever typed by hand.
import { writeFileSync } from 'node:fs';
import { basename, dirname, relative } from 'node:path';
import { stringify } from 'yaml';
import { SlogateError } from '../core/errors.js';
import { countCorrect, type EvalBatchRunner, round4 } from './accuracy.js';
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
