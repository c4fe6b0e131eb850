// The derived upload limits: a model's body limit from its signature and maxBatch (the server's limit where it
// cannot be bounded), the request timeout from that and the SLOs, the in-flight budget, and the streaming cap.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import type { ModelSignature, TensorSpec } from '../../../../core/types.js';
import {
  BODY_OVERHEAD_BYTES,
  BodyBudget,
  JSON_BYTES_PER_ELEMENT,
  limitBody,
  modelBodyLimitBytes,
  RouteBodyLimits,
  requestTimeoutMs,
} from '../../../../gateway/v2/body-limits.js';

const SERVER = 8 * 1024 * 1024;
const sig = (inputs: TensorSpec[], batchable = true): ModelSignature => ({ inputs, outputs: [], batchable });

test('body limit: elements at maxBatch rows times the JSON bytes per element, plus overhead, capped by the server', () => {
  const el = JSON_BYTES_PER_ELEMENT;
  const cases: [string, ModelSignature, number, number][] = [
    ['digits: 784 FP32 per row, 64 rows', sig([{ name: 'x', datatype: 'FP32', shape: [-1, 784] }]), 64, 64 * 784 * el],
    [
      'two inputs add up',
      sig([
        { name: 'a', datatype: 'INT64', shape: [-1, 3, 4] },
        { name: 'b', datatype: 'BOOL', shape: [-1] },
      ]),
      10,
      (10 * 12 + 10) * el,
    ],
    ['no batch dimension: the fixed shape', sig([{ name: 'x', datatype: 'FP32', shape: [2, 5] }], false), 64, 10 * el],
  ];
  for (const [name, s, maxBatch, elementsBytes] of cases)
    assert.equal(modelBodyLimitBytes(s, maxBatch, SERVER), elementsBytes + BODY_OVERHEAD_BYTES, name);
  for (const [name, s] of [
    ['BYTES inputs cannot be bounded', sig([{ name: 's', datatype: 'BYTES', shape: [-1] }])],
    ['a dynamic dimension beyond the batch', sig([{ name: 'x', datatype: 'FP32', shape: [-1, -1] }])],
    ['larger than the server allows', sig([{ name: 'x', datatype: 'FP32', shape: [-1, 1_000_000] }])],
  ] as const)
    assert.equal(modelBodyLimitBytes(s, 64, SERVER), SERVER, name);
});

test('request timeout: base + longest SLO + the largest body at 1 MB/s', () => {
  assert.equal(requestTimeoutMs(1_000_000, 25), 1000 + 25 + 1000);
  assert.equal(requestTimeoutMs(1_671_168, 25), 1000 + 25 + 1672);
  assert.equal(requestTimeoutMs(0, 0.5), 1001);
});

test('route limits: per model, the server limit for unknown routes and models still loading', () => {
  let loaded = false;
  const limits = new RouteBodyLimits(
    (route) => (route === 'r' ? { model: 'm', maxBatch: 2 } : undefined),
    () => (loaded ? sig([{ name: 'x', datatype: 'FP32', shape: [-1, 10] }]) : undefined),
    SERVER,
  );
  assert.equal(limits.forRoute('r'), SERVER, 'not loaded yet');
  loaded = true;
  assert.equal(limits.forRoute('r'), 20 * JSON_BYTES_PER_ELEMENT + BODY_OVERHEAD_BYTES);
  assert.equal(limits.forRoute('other'), SERVER);
  assert.equal(limits.forRoute(undefined), SERVER);
});

test('budget: reserves up to its size, counts refusals, frees on release; a lone request always fits', () => {
  const b = new BodyBudget(100);
  assert.equal(b.tryReserve(60), true);
  assert.equal(b.tryReserve(50), false);
  assert.equal(b.tryReserve(40), true);
  assert.deepEqual([b.heldBytes, b.refused], [100, 1]);
  b.release(60);
  b.release(40);
  assert.equal(b.heldBytes, 0);
  assert.equal(b.tryReserve(500), true, 'alone, even over the budget');
  assert.equal(b.tryReserve(1), false);
});

test('a streamed body passes up to the limit and fails with 413 past it', async () => {
  const chunks: Buffer[] = [];
  const sink = async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) chunks.push(c);
  };
  await pipeline(Readable.from([Buffer.alloc(6), Buffer.alloc(4)]), limitBody(10), sink);
  assert.equal(Buffer.concat(chunks).length, 10);
  await assert.rejects(pipeline(Readable.from([Buffer.alloc(6), Buffer.alloc(5)]), limitBody(10), sink), {
    code: 'SLOGATE_ERR_BODY_TOO_LARGE',
    statusCode: 413,
  });
});
