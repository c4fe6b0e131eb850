// Binary-extension headers parsed once (RequestPlans): a later request with the same header decodes only its bytes
// and comes out exactly as a fresh parse would, its bad bytes fail as before, and what the plan cannot vouch for
// (another binary length, JSON data) is parsed afresh.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlogateError } from '../../../../core/errors.js';
import type { ModelSignature } from '../../../../core/types.js';
import { parseInferRequest, RequestPlans } from '../../../../gateway/v2/codec.js';

const SIG: ModelSignature = {
  inputs: [
    { name: 'pixels', datatype: 'FP32', shape: [-1, 2] },
    { name: 'mask', datatype: 'BOOL', shape: [-1, 2] },
  ],
  outputs: [{ name: 'label', datatype: 'INT64', shape: [-1, 1] }],
  batchable: true,
};

const HEADER = {
  id: 'r1',
  parameters: { priority: 3 },
  inputs: [
    { name: 'mask', datatype: 'BOOL', shape: [1, 2], parameters: { binary_data_size: 2 } },
    { name: 'pixels', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } },
  ],
  outputs: [{ name: 'label', parameters: { binary_data: true } }],
};

function body(pixels: readonly number[], mask: readonly number[], header: unknown = HEADER) {
  const head = Buffer.from(JSON.stringify(header));
  const p = Buffer.alloc(pixels.length * 4);
  for (let i = 0; i < pixels.length; i++) p.writeFloatLE(pixels[i] as number, i * 4);
  return { body: Buffer.concat([head, Buffer.from(mask), p]), jsonLength: head.byteLength };
}

const plain = (r: ReturnType<typeof parseInferRequest>) => ({
  ...r,
  inputs: r.inputs.map((t) => ({ ...t, data: Array.from(t.data as Float32Array) })),
});

test('the same header again decodes its own bytes and parses as a fresh parse does', () => {
  const plans = new RequestPlans();
  const a = body([1, 2], [1, 0]);
  const b = body([3, 4], [0, 1]);
  const first = parseInferRequest(a.body, a.jsonLength, SIG, false, plans);
  assert.deepEqual(first.inputs[0]?.data, new Float32Array([1, 2]));
  const cached = parseInferRequest(b.body, b.jsonLength, SIG, false, plans);
  const fresh = parseInferRequest(b.body, b.jsonLength, SIG, false);
  assert.deepEqual(plain(cached), plain(fresh));
  assert.deepEqual(cached.inputs[0]?.data, new Float32Array([3, 4]));
  assert.deepEqual(cached.inputs[1]?.data, new Uint8Array([0, 1]));
  assert.equal(cached.id, 'r1');
  assert.deepEqual(cached.parameters, { priority: 3 });
});

test('bad bytes under a known header fail as they would afresh', () => {
  const plans = new RequestPlans();
  const ok = body([1, 2], [1, 0]);
  parseInferRequest(ok.body, ok.jsonLength, SIG, false, plans);
  const bad = body([1, Number.NaN], [1, 0]);
  assert.throws(
    () => parseInferRequest(bad.body, bad.jsonLength, SIG, false, plans),
    (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_INVALID_TENSOR',
  );
  const badBool = body([1, 2], [2, 0]);
  assert.throws(
    () => parseInferRequest(badBool.body, badBool.jsonLength, SIG, false, plans),
    (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_INVALID_TENSOR',
  );
});

test('a known header with another binary length parses afresh and fails as it should', () => {
  const plans = new RequestPlans();
  const ok = body([1, 2], [1, 0]);
  parseInferRequest(ok.body, ok.jsonLength, SIG, false, plans);
  const extra = Buffer.concat([ok.body, Buffer.alloc(4)]);
  assert.throws(
    () => parseInferRequest(extra, ok.jsonLength, SIG, false, plans),
    (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_BINARY_DATA',
  );
});

test('a header whose input carries JSON data is never kept', () => {
  const plans = new RequestPlans();
  const header = {
    inputs: [
      { name: 'mask', datatype: 'BOOL', shape: [1, 2], data: [true, false] },
      { name: 'pixels', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } },
    ],
  };
  const a = body([1, 2], [], header);
  parseInferRequest(a.body, a.jsonLength, SIG, false, plans);
  assert.equal(plans.get(SIG, a.body.subarray(0, a.jsonLength), 8), undefined);
  const known = body([1, 2], [1, 0]);
  parseInferRequest(known.body, known.jsonLength, SIG, false, plans);
  assert.notEqual(plans.get(SIG, known.body.subarray(0, known.jsonLength), 10), undefined);
});

test('headers that alternate, or differ from the last one in a single byte, each get their own plan', () => {
  const plans = new RequestPlans();
  const headers = ['r1', 'r2', 'r1', 'r2', 'r3'].map((id) => ({ ...HEADER, id }));
  for (const [i, header] of headers.entries()) {
    const b = body([i, i + 1], [1, 0], header);
    const parsed = parseInferRequest(b.body, b.jsonLength, SIG, false, plans);
    assert.equal(parsed.id, header.id);
    assert.deepEqual(parsed.inputs[0]?.data, new Float32Array([i, i + 1]));
    assert.deepEqual(plain(parsed), plain(parseInferRequest(b.body, b.jsonLength, SIG, false)));
  }
  const again = body([0, 0], [1, 0], headers[0]);
  assert.notEqual(plans.get(SIG, again.body.subarray(0, again.jsonLength), 10), undefined, 'r1 is still kept');
});
