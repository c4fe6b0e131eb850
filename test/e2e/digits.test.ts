// End to end: a real server on a free loopback port, real eval digits over JSON and over the binary extension,
// predictions checked against the labels; accuracy must match what `slogate eval` recorded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { readMetadataFile } from '../../runtime/model-repository.js';
import { DIGITS_DIR, digitsConfig, EVAL_PATH, startSlogate, VARIANTS } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const recorded = readMetadataFile(`${DIGITS_DIR}/model.yaml`);
const ROWS = 50; // eval rows per request

let sg: Slogate;
let url: string;

before(async () => {
  // A loose SLO: this file checks answers, not latency (the whole eval set is sent at once).
  ({ sg, url } = await startSlogate(digitsConfig({ routes: { digits: { model: 'digits', slo: { p99Ms: 60_000 } } } })));
});
after(async () => {
  await sg.close();
});

interface V2Response {
  model_version: string;
  outputs: {
    name: string;
    shape: number[];
    datatype: string;
    data?: number[];
    parameters?: { binary_data_size: number };
  }[];
}

async function inferJson(variant: string, start: number, rows: number): Promise<number[]> {
  const data = Array.from(set.data.subarray(start * set.features, (start + rows) * set.features));
  const res = await request(`${url}/v2/models/digits/versions/${variant}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'pixels', shape: [rows, 784], datatype: 'FP32', data }],
      outputs: [{ name: 'label' }],
    }),
  });
  assert.equal(res.statusCode, 200);
  const b = (await res.body.json()) as V2Response;
  assert.equal(b.model_version, variant);
  return b.outputs[0]?.data ?? [];
}

async function inferBinary(variant: string, start: number, rows: number): Promise<number[]> {
  const pixels = set.data.slice(start * set.features, (start + rows) * set.features);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'pixels', shape: [rows, 784], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } },
      ],
      outputs: [{ name: 'label', parameters: { binary_data: true } }],
    }),
  );
  const res = await request(`${url}/v2/models/digits/versions/${variant}/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
    body: Buffer.concat([header, Buffer.from(pixels.buffer)]),
  });
  assert.equal(res.statusCode, 200);
  const hl = Number(res.headers['inference-header-content-length']);
  const raw = Buffer.from(await res.body.arrayBuffer());
  const json = JSON.parse(raw.subarray(0, hl).toString()) as V2Response;
  const out = json.outputs[0];
  assert.equal(out?.datatype, 'INT64');
  assert.equal(out?.parameters?.binary_data_size, rows * 8);
  const labels = new BigInt64Array(raw.buffer.slice(raw.byteOffset + hl, raw.byteOffset + raw.byteLength));
  return Array.from(labels, Number);
}

async function accuracyOver(
  variant: string,
  send: (v: string, s: number, r: number) => Promise<number[]>,
): Promise<number> {
  let correct = 0;
  const jobs: Promise<void>[] = [];
  for (let start = 0; start < set.count; start += ROWS) {
    const rows = Math.min(ROWS, set.count - start);
    jobs.push(
      send(variant, start, rows).then((pred) => {
        assert.equal(pred.length, rows);
        for (let i = 0; i < rows; i++) if (pred[i] === set.labels[start + i]) correct++;
      }),
    );
  }
  await Promise.all(jobs);
  return correct / set.count;
}

describe('digits end to end', () => {
  for (const variant of VARIANTS) {
    test(`${variant}: JSON and binary predictions over the whole eval set match the recorded accuracy`, async () => {
      const want = recorded?.variants[variant]?.accuracy;
      assert.ok(want !== undefined && want > 0.85, 'model.yaml records an accuracy for every variant');
      const json = await accuracyOver(variant, inferJson);
      const bin = await accuracyOver(variant, inferBinary);
      assert.ok(Math.abs(json - want) <= 0.002, `JSON accuracy ${json} vs recorded ${want}`);
      assert.ok(Math.abs(bin - want) <= 0.002, `binary accuracy ${bin} vs recorded ${want}`);
    });
  }

  test('single-digit requests through the route (engine-chosen variant) are mostly right', async () => {
    let correct = 0;
    const n = 200;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const res = await request(`${url}/v2/models/digits/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: Array.from(evalRow(set, i)) }],
          }),
        });
        assert.equal(res.statusCode, 200);
        const b = (await res.body.json()) as V2Response;
        if (b.outputs.find((o) => o.name === 'label')?.data?.[0] === set.labels[i]) correct++;
      }),
    );
    assert.ok(correct / n >= 0.88, `accuracy ${correct / n}`);
  });
});
