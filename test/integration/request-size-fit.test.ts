// Requests of 1, 8, 32 and 64 rows to a route like the bundled `digits` (p99 25 ms, minAccuracy 0.9) on a real
// server at low load: each is answered by the most accurate variant that can make its deadline at its size, so the
// big ones get the accurate small model rather than the fastest, with its accuracy on the eval rows they carry.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { Slogate } from '../../main.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { readMetadataFile } from '../../runtime/model-repository.js';
import { DIGITS_DIR, digitsConfig, EVAL_PATH, startSlogate, tempDir } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const recorded = readMetadataFile(`${DIGITS_DIR}/model.yaml`);
const accuracyOf = (v: string) => recorded?.variants[v]?.accuracy ?? Number.NaN;

let sg: Slogate;
let url: string;
before(async () => {
  // Over real HTTP (reading and parsing a 64-row body is part of what the deadline must cover), with a measured
  // profile cached in a fresh folder: the size fit reads service times per batch size.
  ({ sg, url } = await startSlogate(
    digitsConfig({
      runtime: { workers: 1, profile: { enabled: true, samples: 30, budgetMs: 4000, cacheDir: tempDir() } },
      routes: { digits: { model: 'digits', slo: { p99Ms: 25, minAccuracy: 0.9 } } },
    }),
  ));
});
after(async () => {
  await sg.close();
});

interface Tally {
  readonly variants: Map<string, number>;
  requests: number;
  correct: number;
  scored: number;
}

/** Sends `count` requests of `rows` eval rows each, one at a time, and scores the answers against the labels. */
async function send(rows: number, count: number): Promise<Tally> {
  const t: Tally = { variants: new Map(), requests: 0, correct: 0, scored: 0 };
  for (let i = 0; i < count; i++) {
    const start = (i * rows) % (set.count - rows);
    const data = Array.from(set.data.subarray(start * set.features, (start + rows) * set.features));
    const res = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'pixels', shape: [rows, set.features], datatype: 'FP32', data }],
        outputs: [{ name: 'label' }],
      }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, text);
    const body = JSON.parse(text) as { model_version: string; outputs: { data: number[] }[] };
    t.requests++;
    t.variants.set(body.model_version, (t.variants.get(body.model_version) ?? 0) + 1);
    const labels = body.outputs[0]?.data ?? [];
    for (let r = 0; r < rows; r++) {
      t.scored++;
      if (labels[r] === set.labels[start + r]) t.correct++;
    }
  }
  return t;
}

const share = (t: Tally, ...variants: string[]) =>
  variants.reduce((n, v) => n + (t.variants.get(v) ?? 0), 0) / Math.max(1, t.requests);
const mix = (t: Tally) => JSON.stringify(Object.fromEntries(t.variants));

test('1- and 8-row requests follow the decision: a variant at least as accurate as cnn-small', async () => {
  for (const rows of [1, 8]) {
    const t = await send(rows, 40);
    assert.ok(share(t, 'large', 'cnn-small') >= 0.9, `${rows} rows: ${mix(t)}`);
  }
});

test('32- and 64-row requests get cnn-small (large cannot make 25 ms at their size), at its eval accuracy', async () => {
  for (const rows of [32, 64]) {
    const t = await send(rows, Math.floor(set.count / rows));
    assert.equal(t.variants.get('large') ?? 0, 0, `${rows} rows: ${mix(t)}`);
    assert.ok(share(t, 'cnn-small') >= 0.9, `${rows} rows: ${mix(t)}`);
    const accuracy = t.correct / t.scored;
    assert.ok(
      accuracy >= accuracyOf('cnn-small') - 0.005,
      `${rows} rows: accuracy ${(100 * accuracy).toFixed(2)}% against cnn-small's ${100 * accuracyOf('cnn-small')}% (${mix(t)})`,
    );
  }
});
