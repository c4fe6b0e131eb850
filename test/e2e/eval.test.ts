// The accuracy recorded in models/digits/model.yaml must be what a fresh evaluation through the real runtime
// measures now, for files with the recorded hashes: nobody types an accuracy by hand.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SystemClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { evaluateModel, evaluateVariant } from '../../runtime/evaluate.js';
import { readMetadataFile } from '../../runtime/model-repository.js';
import { Runtime } from '../../runtime/runtime.js';
import { DIGITS_DIR, digitsConfig, EVAL_PATH, tempDir, VARIANTS } from '../helpers.js';

test('recorded accuracies and hashes in model.yaml match a fresh evaluation of every variant', async () => {
  const recorded = readMetadataFile(join(DIGITS_DIR, 'model.yaml'));
  assert.ok(recorded !== undefined, 'models/digits/model.yaml exists');
  const rt = await Runtime.create({
    config: digitsConfig(),
    clock: new SystemClock(),
    metrics: new Metrics({ defaultMetrics: false }),
    logger: silentLogger,
  });
  await rt.start();
  try {
    const set = readEvalSet(EVAL_PATH);
    assert.equal(recorded.eval?.samples, set.count);
    for (const v of VARIANTS) {
      const fresh = await evaluateVariant(rt, 'digits', v, set);
      const rec: { sha256: string; accuracy: number; correct: number } | undefined = recorded.variants[v];
      assert.ok(rec !== undefined, `${v} recorded`);
      assert.equal(rec.sha256, fresh.sha256, `${v}: the recorded hash is the file's`);
      assert.equal(
        rec.correct,
        fresh.correct,
        `${v}: recorded ${rec.correct} correct, fresh evaluation ${fresh.correct}`,
      );
      assert.equal(rec.accuracy, fresh.accuracy);
      assert.equal(
        rt.repository.variant('digits', v).accuracy,
        rec.accuracy,
        'the repository trusts the record while hashes match',
      );
    }
  } finally {
    await rt.close();
  }
});

test('evaluateModel writes a metadata file that the next load trusts, and a changed file loses its accuracy', async () => {
  const dir = tempDir();
  copyFileSync(join(DIGITS_DIR, 'tiny.onnx'), join(dir, 'a.onnx'));
  copyFileSync(join(DIGITS_DIR, 'small.onnx'), join(dir, 'b.onnx'));
  const raw = {
    models: {
      m: {
        eval: EVAL_PATH,
        metadata: join(dir, 'model.yaml'),
        variants: { a: { path: join(dir, 'a.onnx') }, b: { path: join(dir, 'b.onnx') } },
      },
    },
    routes: { r: { model: 'm', slo: { p99Ms: 100 } } },
  };
  const cfg = digitsConfig(raw);
  const deps = {
    config: cfg,
    clock: new SystemClock(),
    metrics: new Metrics({ defaultMetrics: false }),
    logger: silentLogger,
  };
  const rt = await Runtime.create(deps);
  await rt.start();
  try {
    const meta = await evaluateModel(rt, 'm');
    assert.ok((meta.variants.a?.accuracy ?? 0) > 0.8);
  } finally {
    await rt.close();
  }
  const again = await Runtime.create(deps);
  assert.equal(
    again.repository.variant('m', 'a').accuracy,
    readMetadataFile(join(dir, 'model.yaml'))?.variants.a?.accuracy,
  );
  copyFileSync(join(DIGITS_DIR, 'medium.onnx'), join(dir, 'a.onnx'));
  const changed = await Runtime.create(deps);
  assert.equal(changed.repository.variant('m', 'a').accuracy, undefined, 'a changed file has no trusted accuracy');
  assert.ok(changed.repository.warnings.some((w) => w.includes('m/a')));
});
