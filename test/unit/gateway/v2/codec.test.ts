// V2 request parsing and response encoding against a hand-built signature: JSON bodies, the binary tensor
// extension both ways, and the input/output/parameter checks that turn client mistakes into 400s with codes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ErrorCode, SlogateError } from '../../../../core/errors.js';
import type { ModelSignature, Tensor } from '../../../../core/types.js';
import {
  encodeInferResponse,
  headerLength,
  type ParsedInferRequest,
  parseInferRequest,
} from '../../../../gateway/v2/codec.js';
import { isClientMistake } from '../../../../policies/slo-recorder.js';

/** Two inputs, two outputs, batchable. */
const SIG: ModelSignature = {
  inputs: [
    { name: 'pixels', datatype: 'FP32', shape: [-1, 4] },
    { name: 'mask', datatype: 'BOOL', shape: [-1, 4] },
  ],
  outputs: [
    { name: 'logits', datatype: 'FP32', shape: [-1, 2] },
    { name: 'label', datatype: 'INT64', shape: [-1, 1] },
  ],
  batchable: true,
};

/** One input: the only kind of model a raw binary body can address. */
const SIG1: ModelSignature = {
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [-1, 4] }],
  outputs: SIG.outputs,
  batchable: true,
};

const PIXELS = [0.5, 1, 1.5, 2, -0.5, -1, -1.5, -2];
const MASK = [true, false, true, false, false, true, false, true];

const pixelsJson = (rows = 2) => ({
  name: 'pixels',
  datatype: 'FP32',
  shape: [rows, 4],
  data: PIXELS.slice(0, rows * 4),
});
const maskJson = (rows = 2) => ({ name: 'mask', datatype: 'BOOL', shape: [rows, 4], data: MASK.slice(0, rows * 4) });

function jsonBody(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

/** A binary-extension body: the JSON header, then the blobs; returns the body and the header length. */
function binaryBody(doc: unknown, ...blobs: Uint8Array[]): { body: Buffer; jsonLength: number } {
  const head = jsonBody(doc);
  return { body: Buffer.concat([head, ...blobs]), jsonLength: head.byteLength };
}

function f32le(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

const boolBytes = (values: readonly boolean[]) => Uint8Array.from(values, (b) => (b ? 1 : 0));

function parse(doc: unknown, sig: ModelSignature = SIG): ParsedInferRequest {
  return parseInferRequest(jsonBody(doc), undefined, sig, false);
}

function throwsCode(fn: () => unknown, code: ErrorCode): SlogateError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof SlogateError,
    `expected a SlogateError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`,
  );
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function input(p: ParsedInferRequest, i: number): Tensor {
  const t = p.inputs[i];
  assert.ok(t !== undefined, `input ${i} missing`);
  return t;
}

describe('parseInferRequest: JSON bodies', () => {
  test('inputs come back in the model order and datatypes, whatever order the request lists them in', () => {
    const p = parse({ inputs: [maskJson(), pixelsJson()] });
    assert.deepEqual(
      p.inputs.map((t) => t.name),
      ['pixels', 'mask'],
    );
    assert.equal(input(p, 0).datatype, 'FP32');
    assert.deepEqual(Array.from(input(p, 0).data as Float32Array), PIXELS);
    assert.deepEqual(Array.from(input(p, 1).data as Uint8Array), [1, 0, 1, 0, 0, 1, 0, 1]);
    assert.equal(p.rows, 2);
    assert.equal(p.outputs, undefined);
    assert.equal(p.binaryOutput, false);
    assert.equal(p.id, undefined);
    assert.deepEqual(p.parameters, {});
  });

  test('a model without a batch dimension counts as one row', () => {
    const fixed: ModelSignature = {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [3] }],
      batchable: false,
    };
    const p = parse({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }] }, fixed);
    assert.equal(p.rows, 1);
  });

  test('a body that is not JSON, or JSON that is not an object, is SLOGATE_ERR_INVALID_JSON', () => {
    throwsCode(() => parseInferRequest(Buffer.from('{"inputs": ['), undefined, SIG, false), 'SLOGATE_ERR_INVALID_JSON');
    for (const text of ['[]', '42', '"x"', 'null'])
      throwsCode(() => parseInferRequest(Buffer.from(text), undefined, SIG, false), 'SLOGATE_ERR_INVALID_JSON');
  });

  test('an unknown input is SLOGATE_ERR_INPUT_MISMATCH and the message lists the model inputs', () => {
    const e = throwsCode(
      () => parse({ inputs: [pixelsJson(), maskJson(), { ...pixelsJson(), name: 'extra' }] }),
      'SLOGATE_ERR_INPUT_MISMATCH',
    );
    assert.ok(e.message.includes("'extra'"));
  });

  test('a missing input is SLOGATE_ERR_INPUT_MISMATCH naming it', () => {
    const e = throwsCode(() => parse({ inputs: [pixelsJson()] }), 'SLOGATE_ERR_INPUT_MISMATCH');
    assert.ok(e.message.includes("'mask'"));
  });

  test('an input given twice is SLOGATE_ERR_INPUT_MISMATCH', () => {
    throwsCode(() => parse({ inputs: [pixelsJson(), maskJson(), pixelsJson()] }), 'SLOGATE_ERR_INPUT_MISMATCH');
  });

  test('inputs missing, empty or not an array is SLOGATE_ERR_INPUT_MISMATCH', () => {
    for (const inputs of [undefined, [], {}, 'pixels', null])
      throwsCode(() => parse({ inputs }), 'SLOGATE_ERR_INPUT_MISMATCH');
  });

  test('a malformed input entry (not an object, name not a string, no data) is SLOGATE_ERR_BAD_REQUEST', () => {
    throwsCode(() => parse({ inputs: [42] }), 'SLOGATE_ERR_BAD_REQUEST');
    throwsCode(() => parse({ inputs: [{ ...pixelsJson(), name: 7 }] }), 'SLOGATE_ERR_BAD_REQUEST');
    const { data: _omit, ...noData } = pixelsJson();
    throwsCode(() => parse({ inputs: [noData, maskJson()] }), 'SLOGATE_ERR_BAD_REQUEST');
  });

  test('an unknown datatype is SLOGATE_ERR_DATATYPE', () => {
    for (const datatype of ['FLOAT32', 'fp32', 7, undefined])
      throwsCode(() => parse({ inputs: [{ ...pixelsJson(), datatype }, maskJson()] }), 'SLOGATE_ERR_DATATYPE');
  });

  test('inputs with different batch sizes are SLOGATE_ERR_INVALID_TENSOR', () => {
    throwsCode(() => parse({ inputs: [pixelsJson(2), maskJson(1)] }), 'SLOGATE_ERR_INVALID_TENSOR');
  });

  test('id is echoed; a non-string id is SLOGATE_ERR_BAD_REQUEST', () => {
    assert.equal(parse({ id: 'req-7', inputs: [pixelsJson(), maskJson()] }).id, 'req-7');
    for (const id of [42, null, { a: 1 }, ['x']])
      throwsCode(() => parse({ id, inputs: [pixelsJson(), maskJson()] }), 'SLOGATE_ERR_BAD_REQUEST');
  });

  test('scalar request parameters pass through; object, array or null values are SLOGATE_ERR_BAD_PARAMETER', () => {
    const p = parse({ parameters: { priority: 3, tag: 'a', flag: false }, inputs: [pixelsJson(), maskJson()] });
    assert.deepEqual(p.parameters, { priority: 3, tag: 'a', flag: false });
    for (const bad of [{ a: 1 }, [1], null])
      throwsCode(
        () => parse({ parameters: { x: bad }, inputs: [pixelsJson(), maskJson()] }),
        'SLOGATE_ERR_BAD_PARAMETER',
      );
    for (const params of [[], 'x', 3, null])
      throwsCode(() => parse({ parameters: params, inputs: [pixelsJson(), maskJson()] }), 'SLOGATE_ERR_BAD_PARAMETER');
  });

  test('object-valued parameters on an input or an output are SLOGATE_ERR_BAD_PARAMETER too', () => {
    throwsCode(
      () => parse({ inputs: [{ ...pixelsJson(), parameters: { x: {} } }, maskJson()] }),
      'SLOGATE_ERR_BAD_PARAMETER',
    );
    throwsCode(
      () => parse({ inputs: [pixelsJson(), maskJson()], outputs: [{ name: 'label', parameters: { x: [] } }] }),
      'SLOGATE_ERR_BAD_PARAMETER',
    );
  });

  test('binary_data_output must be a boolean', () => {
    assert.equal(
      parse({ parameters: { binary_data_output: true }, inputs: [pixelsJson(), maskJson()] }).binaryOutput,
      true,
    );
    for (const v of ['true', 1])
      throwsCode(
        () => parse({ parameters: { binary_data_output: v }, inputs: [pixelsJson(), maskJson()] }),
        'SLOGATE_ERR_BAD_PARAMETER',
      );
  });
});

describe('parseInferRequest: outputs', () => {
  test('outputs keep the requested order; per-output binary_data overrides binary_data_output either way', () => {
    const on = parse({
      parameters: { binary_data_output: true },
      inputs: [pixelsJson(), maskJson()],
      outputs: [{ name: 'label' }, { name: 'logits', parameters: { binary_data: false } }],
    });
    assert.deepEqual(on.outputs, [
      { name: 'label', binary: true },
      { name: 'logits', binary: false },
    ]);
    const off = parse({
      inputs: [pixelsJson(), maskJson()],
      outputs: [{ name: 'logits', parameters: { binary_data: true } }, { name: 'label' }],
    });
    assert.deepEqual(off.outputs, [
      { name: 'logits', binary: true },
      { name: 'label', binary: false },
    ]);
  });

  test('an unknown or repeated output, or a malformed outputs list, is SLOGATE_ERR_INPUT_MISMATCH', () => {
    const base = { inputs: [pixelsJson(), maskJson()] };
    throwsCode(() => parse({ ...base, outputs: [{ name: 'probs' }] }), 'SLOGATE_ERR_INPUT_MISMATCH');
    throwsCode(() => parse({ ...base, outputs: [{ name: 'label' }, { name: 'label' }] }), 'SLOGATE_ERR_INPUT_MISMATCH');
    throwsCode(() => parse({ ...base, outputs: { name: 'label' } }), 'SLOGATE_ERR_INPUT_MISMATCH');
    throwsCode(() => parse({ ...base, outputs: ['label'] }), 'SLOGATE_ERR_INPUT_MISMATCH');
    throwsCode(() => parse({ ...base, outputs: [{ name: 3 }] }), 'SLOGATE_ERR_INPUT_MISMATCH');
  });

  test('a non-boolean binary_data on an output is SLOGATE_ERR_BAD_PARAMETER', () => {
    throwsCode(
      () =>
        parse({ inputs: [pixelsJson(), maskJson()], outputs: [{ name: 'label', parameters: { binary_data: 'yes' } }] }),
      'SLOGATE_ERR_BAD_PARAMETER',
    );
  });
});

describe('parseInferRequest: binary tensor extension', () => {
  test('binary inputs are consumed from the body in the order the JSON lists them', () => {
    // mask is listed first, so its 8 bytes come first and pixels' 32 bytes follow.
    const { body, jsonLength } = binaryBody(
      {
        inputs: [
          { name: 'mask', datatype: 'BOOL', shape: [2, 4], parameters: { binary_data_size: 8 } },
          { name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } },
        ],
      },
      boolBytes(MASK),
      f32le(PIXELS),
    );
    const p = parseInferRequest(body, jsonLength, SIG, false);
    assert.deepEqual(Array.from(input(p, 0).data as Float32Array), PIXELS);
    assert.deepEqual(Array.from(input(p, 1).data as Uint8Array), [1, 0, 1, 0, 0, 1, 0, 1]);
    assert.equal(p.rows, 2);
  });

  test('binary and JSON inputs mix in one request', () => {
    const { body, jsonLength } = binaryBody(
      {
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } }, maskJson()],
      },
      f32le(PIXELS),
    );
    const p = parseInferRequest(body, jsonLength, SIG, false);
    assert.deepEqual(Array.from(input(p, 0).data as Float32Array), PIXELS);
    assert.deepEqual(Array.from(input(p, 1).data as Uint8Array), [1, 0, 1, 0, 0, 1, 0, 1]);
  });

  test('binary bytes that no input claims are SLOGATE_ERR_BINARY_DATA', () => {
    const { body, jsonLength } = binaryBody(
      {
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } }, maskJson()],
      },
      f32le(PIXELS),
      Uint8Array.of(0),
    );
    throwsCode(() => parseInferRequest(body, jsonLength, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
    // A header length with no binary input at all leaves every trailing byte unclaimed.
    const extra = binaryBody({ inputs: [pixelsJson(), maskJson()] }, Uint8Array.of(1, 2));
    throwsCode(() => parseInferRequest(extra.body, extra.jsonLength, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('binary_data_size without Inference-Header-Content-Length is SLOGATE_ERR_BINARY_DATA', () => {
    const doc = {
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } }, maskJson()],
    };
    throwsCode(() => parseInferRequest(jsonBody(doc), undefined, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('a binary_data_size running past the end of the body is SLOGATE_ERR_BINARY_DATA', () => {
    const { body, jsonLength } = binaryBody(
      {
        inputs: [
          { name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } },
          { name: 'mask', datatype: 'BOOL', shape: [2, 4], parameters: { binary_data_size: 8 } },
        ],
      },
      f32le(PIXELS),
      boolBytes(MASK).subarray(0, 7),
    );
    throwsCode(() => parseInferRequest(body, jsonLength, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('a binary_data_size that disagrees with the shape, is not a non-negative integer, or comes with data is SLOGATE_ERR_BINARY_DATA', () => {
    const withSize = (size: unknown, extra: Record<string, unknown> = {}) =>
      binaryBody(
        {
          inputs: [
            { name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: size }, ...extra },
            maskJson(),
          ],
        },
        f32le(PIXELS),
      );
    for (const size of [28, -1, 1.5, '32']) {
      const { body, jsonLength } = withSize(size);
      throwsCode(() => parseInferRequest(body, jsonLength, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
    }
    const both = withSize(32, { data: PIXELS });
    throwsCode(() => parseInferRequest(both.body, both.jsonLength, SIG, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('a header length that cuts the JSON short is SLOGATE_ERR_INVALID_JSON', () => {
    const { body, jsonLength } = binaryBody({ inputs: [pixelsJson(), maskJson()] });
    throwsCode(() => parseInferRequest(body, jsonLength - 1, SIG, false), 'SLOGATE_ERR_INVALID_JSON');
  });

  test('a raw binary body (header length 0) is one row of the single input, with all outputs binary', () => {
    const row = PIXELS.slice(0, 4);
    const p = parseInferRequest(Buffer.from(f32le(row)), 0, SIG1, false);
    assert.equal(p.rows, 1);
    assert.deepEqual(input(p, 0).shape, [1, 4]);
    assert.deepEqual(Array.from(input(p, 0).data as Float32Array), row);
    assert.equal(p.binaryOutput, true);
    assert.deepEqual(p.outputs, [
      { name: 'logits', binary: true },
      { name: 'label', binary: true },
    ]);
    assert.equal(p.id, undefined);
  });

  test('a raw binary body is refused for a two-input model, and when its size is not exactly one row', () => {
    throwsCode(
      () => parseInferRequest(Buffer.from(f32le(PIXELS.slice(0, 4))), 0, SIG, false),
      'SLOGATE_ERR_BINARY_DATA',
    );
    throwsCode(() => parseInferRequest(Buffer.from(f32le(PIXELS)), 0, SIG1, false), 'SLOGATE_ERR_BINARY_DATA');
    throwsCode(
      () => parseInferRequest(Buffer.from(f32le(PIXELS.slice(0, 5))), 0, SIG1, false),
      'SLOGATE_ERR_BINARY_DATA',
    );
    throwsCode(() => parseInferRequest(Buffer.alloc(6), 0, SIG1, false), 'SLOGATE_ERR_BINARY_DATA');
  });

  test('a raw binary body holding NaN is refused unless the model allows non-finite values', () => {
    const raw = Buffer.from(f32le([1, Number.NaN, 3, 4]));
    throwsCode(() => parseInferRequest(raw, 0, SIG1, false), 'SLOGATE_ERR_INVALID_TENSOR');
    assert.ok(Number.isNaN((input(parseInferRequest(raw, 0, SIG1, true), 0).data as Float32Array)[1]));
  });
});

describe('parseInferRequest: hostile bodies', () => {
  /** JSON.parse reads arrays nested this deep; JSON.stringify (and any recursion over them) overflows the stack. */
  const DEEP = 200_000;
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const raw = (text: string) => () => parseInferRequest(Buffer.from(text), undefined, SIG1, false);
  /** A message echoing client values stays short whatever the client sent. */
  const MAX_MESSAGE_CHARS = 300;

  const cases: { name: string; body: string; code: ErrorCode }[] = [
    {
      name: 'a deeply nested datatype',
      body: `{"inputs":[{"name":"pixels","datatype":${nested(DEEP)},"shape":[1,4],"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_DATATYPE',
    },
    {
      name: 'a deeply nested data element',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,${nested(DEEP)},3,4]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'a deeply nested object as a data element',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,${'{"a":'.repeat(DEEP)}1${'}'.repeat(DEEP)},3,4]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'a deeply nested shape',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":${nested(DEEP)},"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'a deeply nested shape dimension',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,${nested(DEEP)}],"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'a shape of a hundred thousand dimensions',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[${new Array(100_000).fill(1).join(',')}],"data":[1]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'a huge unknown input name',
      body: `{"inputs":[{"name":"${'x'.repeat(100_000)}","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_INPUT_MISMATCH',
    },
    {
      name: 'a huge unknown datatype string',
      body: `{"inputs":[{"name":"pixels","datatype":"${'F'.repeat(100_000)}","shape":[1,4],"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_DATATYPE',
    },
    {
      name: 'a huge parameter name',
      body: `{"parameters":{"${'k'.repeat(100_000)}":{}},"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`,
      code: 'SLOGATE_ERR_BAD_PARAMETER',
    },
    {
      name: 'a huge unknown output name',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"outputs":[{"name":"${'o'.repeat(100_000)}"}]}`,
      code: 'SLOGATE_ERR_INPUT_MISMATCH',
    },
    {
      name: 'a huge string as a data element',
      body: `{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,"${'9'.repeat(100_000)}",3,4]}]}`,
      code: 'SLOGATE_ERR_INVALID_TENSOR',
    },
    {
      name: 'the fields of an input hidden behind a __proto__ key',
      body: '{"inputs":[{"name":"pixels","__proto__":{"datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}}]}',
      code: 'SLOGATE_ERR_DATATYPE',
    },
    {
      name: 'inputs hidden behind a __proto__ key',
      body: '{"__proto__":{"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}}',
      code: 'SLOGATE_ERR_INPUT_MISMATCH',
    },
    {
      name: 'an input named after an Object.prototype member',
      body: '{"inputs":[{"name":"constructor","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}',
      code: 'SLOGATE_ERR_INPUT_MISMATCH',
    },
    {
      name: 'a prototype-named parameter holding an object',
      body: '{"parameters":{"__proto__":{"timeout":1}},"inputs":[{"name":"pixels","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}',
      code: 'SLOGATE_ERR_BAD_PARAMETER',
    },
  ];
  for (const c of cases) {
    test(`${c.name} is ${c.code} (a client mistake, never a 500) with a short message`, () => {
      const e = throwsCode(raw(c.body), c.code);
      assert.ok(isClientMistake(e.code), `${e.code} must count as invalid, not as an SLO outcome`);
      assert.ok(
        e.message.length <= MAX_MESSAGE_CHARS,
        `message of ${e.message.length} chars: ${e.message.slice(0, 80)}`,
      );
    });
  }

  test('a prototype key in a parameters object is a parameter like any other, not an inherited one', () => {
    const p = parse({ parameters: JSON.parse('{"__proto__":"x"}'), inputs: [pixelsJson(), maskJson()] });
    assert.equal(Object.getOwnPropertyDescriptor(p.parameters, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(p.parameters), Object.prototype, 'the prototype is untouched');
  });

  test('whatever else the decoder throws on a body is SLOGATE_ERR_BAD_REQUEST, never INTERNAL', () => {
    const hostile: ModelSignature = {
      ...SIG1,
      get inputs(): ModelSignature['inputs'] {
        throw new RangeError('Maximum call stack size exceeded');
      },
    };
    const body = jsonBody({ inputs: [pixelsJson(1)] });
    const e = throwsCode(() => parseInferRequest(body, undefined, hostile, false), 'SLOGATE_ERR_BAD_REQUEST');
    assert.equal(e.message, 'request body could not be decoded (RangeError)');
  });
});

describe('headerLength', () => {
  test('absent header means a pure JSON body; a valid one is parsed, taking the first of repeated values', () => {
    assert.equal(headerLength(undefined, 10), undefined);
    assert.equal(headerLength('0', 10), 0);
    assert.equal(headerLength(' 7 ', 10), 7);
    assert.equal(headerLength('10', 10), 10);
    assert.equal(headerLength(['4', '9'], 10), 4);
  });

  test('a non-numeric header or one longer than the body is SLOGATE_ERR_BINARY_DATA', () => {
    for (const v of ['abc', '-1', '1.5', '', '0x10', '1e3', '12345678901'])
      throwsCode(() => headerLength(v, 100), 'SLOGATE_ERR_BINARY_DATA');
    throwsCode(() => headerLength('11', 10), 'SLOGATE_ERR_BINARY_DATA');
  });
});

describe('encodeInferResponse', () => {
  const logits: Tensor = {
    name: 'logits',
    datatype: 'FP32',
    shape: [2, 2],
    data: Float32Array.of(0.25, -1.5, 3, 1e-3),
  };
  // 2^53 + 1 cannot survive a trip through a JS number; the binary path must carry it intact.
  const label: Tensor = { name: 'label', datatype: 'INT64', shape: [2, 1], data: BigInt64Array.of(7n, 2n ** 53n + 1n) };

  interface ResponseDoc {
    model_name: string;
    model_version: string;
    id?: string;
    outputs: {
      name: string;
      datatype: string;
      shape: number[];
      data?: unknown[];
      parameters?: { binary_data_size?: number };
    }[];
  }

  test('all-JSON responses are a string without a header length, echoing id and writing INT64 exactly', () => {
    const r = encodeInferResponse('digits', 'small', 'req-1', [logits, label], [false, false]);
    assert.equal(typeof r.body, 'string');
    assert.equal(r.jsonLength, undefined);
    const doc = JSON.parse(r.body as string) as ResponseDoc;
    assert.equal(doc.model_name, 'digits');
    assert.equal(doc.model_version, 'small');
    assert.equal(doc.id, 'req-1');
    assert.deepEqual(
      doc.outputs.map((o) => [o.name, o.datatype, o.shape]),
      [
        ['logits', 'FP32', [2, 2]],
        ['label', 'INT64', [2, 1]],
      ],
    );
    assert.deepEqual(doc.outputs[0]?.data, Array.from(logits.data as Float32Array));
    assert.ok((r.body as string).includes('"data":[7,9007199254740993]'));
  });

  test('without an id the response has none', () => {
    const r = encodeInferResponse('digits', 'small', undefined, [label], [false]);
    assert.equal(Object.hasOwn(JSON.parse(r.body as string) as object, 'id'), false);
  });

  test('binary outputs follow the JSON header in output order, sized by binary_data_size, and round-trip', () => {
    const r = encodeInferResponse('digits', 'small', 'req-2', [logits, label], [true, true]);
    assert.ok(Buffer.isBuffer(r.body));
    assert.ok(r.jsonLength !== undefined);
    const body = r.body;
    const doc = JSON.parse(body.subarray(0, r.jsonLength).toString('utf8')) as ResponseDoc;
    assert.equal(doc.id, 'req-2');
    const sizes = doc.outputs.map((o) => o.parameters?.binary_data_size);
    assert.deepEqual(sizes, [4 * 4, 2 * 8]);
    assert.ok(doc.outputs.every((o) => o.data === undefined));
    assert.equal(body.byteLength, r.jsonLength + 16 + 16);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const at = r.jsonLength;
    const gotLogits = [0, 1, 2, 3].map((i) => view.getFloat32(at + 4 * i, true));
    assert.deepEqual(gotLogits, Array.from(logits.data as Float32Array));
    const gotLabel = [0, 1].map((i) => view.getBigInt64(at + 16 + 8 * i, true));
    assert.deepEqual(gotLabel, [7n, 2n ** 53n + 1n]);
  });

  test('mixed flags: JSON outputs carry data, binary ones carry only a size, and only binary bytes follow the header', () => {
    const r = encodeInferResponse('digits', 'small', undefined, [logits, label], [false, true]);
    assert.ok(Buffer.isBuffer(r.body) && r.jsonLength !== undefined);
    const doc = JSON.parse(r.body.subarray(0, r.jsonLength).toString('utf8')) as ResponseDoc;
    assert.deepEqual(doc.outputs[0]?.data, Array.from(logits.data as Float32Array));
    assert.equal(doc.outputs[0]?.parameters, undefined);
    assert.equal(doc.outputs[1]?.parameters?.binary_data_size, 16);
    assert.equal(r.body.byteLength - r.jsonLength, 16);
    assert.equal(r.body.readBigInt64LE(r.jsonLength + 8), 2n ** 53n + 1n);
  });

  test('answers in turn for other models, versions, datatypes and non-ASCII names each say their own', () => {
    const asFloat: Tensor = { name: 'label', datatype: 'FP32', shape: [1], data: Float32Array.of(1.5) };
    const cases: [string, string, string | undefined, Tensor][] = [
      ['digits', 'small', undefined, label],
      ['chiffres-é', 'petit', undefined, label],
      ['digits', 'small', 'requête', asFloat],
      ['digits', 'large', undefined, label],
      ['digits', 'small', undefined, asFloat],
      ['chiffres-é', 'petit', undefined, { ...asFloat, name: 'étiquette' }],
    ];
    for (const round of [1, 2])
      for (const [model, version, id, out] of cases) {
        const r = encodeInferResponse(model, version, id, [out], [true]);
        assert.ok(Buffer.isBuffer(r.body) && r.jsonLength !== undefined);
        const doc = JSON.parse(r.body.subarray(0, r.jsonLength).toString('utf8')) as ResponseDoc;
        const what = `round ${round}: ${model}/${version} ${out.name} ${out.datatype}`;
        assert.deepEqual([doc.model_name, doc.model_version, doc.id], [model, version, id], what);
        assert.deepEqual(doc.outputs[0] && [doc.outputs[0].name, doc.outputs[0].datatype], [out.name, out.datatype]);
        assert.equal(r.body.byteLength - r.jsonLength, out.datatype === 'FP32' ? 4 : 16, what);
      }
  });

  test('a binary request round-trips through parse and encode with the same values', () => {
    const { body, jsonLength } = binaryBody(
      {
        id: 'rt',
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } }, maskJson()],
      },
      f32le(PIXELS),
    );
    const p = parseInferRequest(body, jsonLength, SIG, false);
    const echo: Tensor = { ...input(p, 0), name: 'logits' };
    const r = encodeInferResponse('m', 'v', p.id, [echo], [true]);
    assert.ok(Buffer.isBuffer(r.body) && r.jsonLength !== undefined);
    assert.deepEqual(Buffer.from(r.body.subarray(r.jsonLength)), Buffer.from(f32le(PIXELS)));
  });
});
