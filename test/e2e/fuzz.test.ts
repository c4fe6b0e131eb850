// Malformed-request fuzzing over real HTTP: thousands of seeded mutations of a valid digits request must each get
// a 4xx with a V2 error body and a slogate error code, and the server must still classify digits afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { ERROR_CATALOG, type ErrorCode, isErrorCode } from '../../core/errors.js';
import { mulberry32 } from '../../core/prng.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, EVAL_PATH, startSlogate } from '../helpers.js';

const SEED = 0x5eed_2024;
const CASES = 3000;
const CONCURRENCY = 16;
const BODY_LIMIT_BYTES = 65536;
const INFER_PATH = '/v2/models/digits/infer';
const ROW_BYTES = 784 * 4;

const evalSet = readEvalSet(EVAL_PATH);
const PIXELS = Array.from(evalRow(evalSet, 0));

class Gen {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

interface Input {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
  parameters?: unknown;
}
interface Doc {
  id?: unknown;
  parameters?: unknown;
  inputs?: unknown;
  outputs?: unknown;
}

/** The valid request every case mutates: one real digit, all outputs, JSON. */
function validDoc(): Doc & { inputs: Input[] } {
  return { id: 'fuzz', inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: [...PIXELS] }] };
}

interface FuzzCase {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Buffer;
  /** The error codes this malformation may correctly get (the HTTP status follows from the catalog). */
  readonly codes: readonly ErrorCode[];
}

const INVALID_JSON: ErrorCode = 'SLOGATE_ERR_INVALID_JSON';
const BAD_REQUEST: ErrorCode = 'SLOGATE_ERR_BAD_REQUEST';
const BAD_PARAMETER: ErrorCode = 'SLOGATE_ERR_BAD_PARAMETER';
const INPUT_MISMATCH: ErrorCode = 'SLOGATE_ERR_INPUT_MISMATCH';
const INVALID_TENSOR: ErrorCode = 'SLOGATE_ERR_INVALID_TENSOR';
const DATATYPE: ErrorCode = 'SLOGATE_ERR_DATATYPE';
const BINARY_DATA: ErrorCode = 'SLOGATE_ERR_BINARY_DATA';

const JSON_CT = { 'content-type': 'application/json' };
const OCTET_CT = { 'content-type': 'application/octet-stream' };
const NOT_STRING = [42, 1.5, true, false, null, [], {}, ['pixels'], { name: 'pixels' }];
const NOT_OBJECT = [42, 'x', true, null, [], [1, 2]];
const NOT_ARRAY = [42, 'abc', true, null, {}, { length: 2, 0: 1, 1: 784 }];
const NOT_SCALAR = [{}, [], null, { a: 1 }, [1]];
const INT_TYPES = ['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64'];
/** Element sizes other than 4 bytes, so a 784-float body is never the right size for them. */
const NOT_4_BYTE_TYPES = ['FP64', 'INT64', 'UINT64', 'FP16', 'BF16', 'INT16', 'UINT16', 'INT8', 'UINT8'];

const bad = (doc: unknown, code: ErrorCode, headers: Record<string, string> = JSON_CT): FuzzCase => ({
  path: INFER_PATH,
  headers,
  body: toJson(doc),
  codes: [code],
});
const badText = (body: string | Buffer, code: ErrorCode, headers: Record<string, string> = JSON_CT): FuzzCase => ({
  path: INFER_PATH,
  headers,
  body,
  codes: [code],
});

/** A binary-extension body: the JSON header followed by blobs, with the header length it needs. */
function binary(
  code: ErrorCode,
  doc: unknown,
  blobs: Buffer[],
  headerValue?: (jsonLength: number, total: number) => string,
): FuzzCase {
  const head = Buffer.from(JSON.stringify(doc));
  const body = Buffer.concat([head, ...blobs]);
  const value = headerValue === undefined ? String(head.byteLength) : headerValue(head.byteLength, body.byteLength);
  return { path: INFER_PATH, headers: { ...OCTET_CT, 'inference-header-content-length': value }, body, codes: [code] };
}

function f32Bytes(values: readonly number[]): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i] as number, i * 4);
  return out;
}

const binaryInput = (size: unknown, extra: Input = {}): Input => ({
  name: 'pixels',
  datatype: 'FP32',
  shape: [1, 784],
  parameters: { binary_data_size: size },
  ...extra,
});

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

type Mutator = (g: Gen) => FuzzCase;

/** Every mutator yields a request that is malformed by construction (never a valid one by luck). */
const MUTATORS: Record<string, Mutator> = {
  // --- the body as text ---
  'truncated-json': (g) => {
    const text = JSON.stringify(validDoc());
    return badText(text.slice(0, g.int(1, text.length - 1)), INVALID_JSON);
  },
  'trailing-garbage': (g) =>
    badText(JSON.stringify(validDoc()) + g.pick(['x', '}', ',', '{}', '\u0000', '"']), INVALID_JSON),
  'leading-garbage': (g) => badText(g.pick(['x', ',', ']', '\u0000']) + JSON.stringify(validDoc()), INVALID_JSON),
  'array-not-object-brackets': () => badText(`[${JSON.stringify(validDoc()).slice(1)}`, INVALID_JSON),
  'not-an-object': (g) =>
    badText(g.pick(['[]', '42', '"inputs"', 'null', 'true', `[${JSON.stringify(validDoc())}]`]), INVALID_JSON),
  'empty-body': (g) => badText('', INVALID_JSON, g.pick([JSON_CT, OCTET_CT])),
  'random-bytes': (g) => badText(g.bytes(g.int(1, 2048)), INVALID_JSON, g.pick([JSON_CT, OCTET_CT])),
  'random-json-tokens': (g) => {
    const tokens = ['{', '}', '[', ']', ':', ',', '"inputs"', '"pixels"', '784', 'null', 'true', '-', '.', 'e', '"'];
    let s = '';
    for (let n = g.int(1, 40); n > 0; n--) s += g.pick(tokens);
    // Mostly not JSON; the rare well-formed object ('{}', '{"inputs":[{}]}') still lacks a usable input.
    return { ...badText(s, INVALID_JSON), codes: [INVALID_JSON, INPUT_MISMATCH, BAD_REQUEST] };
  },
  // --- top-level fields of the wrong type ---
  'id-type': (g) => bad({ ...validDoc(), id: g.pick(NOT_STRING) }, BAD_REQUEST),
  'parameters-type': (g) => bad({ ...validDoc(), parameters: g.pick(NOT_OBJECT) }, BAD_PARAMETER),
  'parameter-value-type': (g) =>
    bad(
      {
        ...validDoc(),
        parameters: { [g.pick(['binary_data_output', 'timeout', 'priority', 'custom'])]: g.pick(NOT_SCALAR) },
      },
      BAD_PARAMETER,
    ),
  'binary-data-output-type': (g) =>
    bad({ ...validDoc(), parameters: { binary_data_output: g.pick(['true', 1, 0, 'yes']) } }, BAD_PARAMETER),
  'timeout-invalid': (g) =>
    bad({ ...validDoc(), parameters: { timeout: g.pick([0, -1, 1.5, 'a', '100', true, -1e6]) } }, BAD_PARAMETER),
  'priority-invalid': (g) =>
    bad({ ...validDoc(), parameters: { priority: g.pick([1.5, 1e6 + 1, -1e7, 'high', true]) } }, BAD_PARAMETER),
  'inputs-type': (g) => bad({ ...validDoc(), inputs: g.pick([undefined, [], ...NOT_ARRAY]) }, INPUT_MISMATCH),
  'input-entry-type': (g) =>
    bad({ ...validDoc(), inputs: [g.pick([null, 42, 'pixels', [], true, [validDoc().inputs[0]]])] }, BAD_REQUEST),
  // --- one input field wrong ---
  'input-name-type': (g) => mutateInput((i) => ({ ...i, name: g.pick([...NOT_STRING, undefined]) }), BAD_REQUEST),
  'input-name-unknown': (g) =>
    mutateInput(
      (i) => ({
        ...i,
        name: g.pick(['pixel', 'Pixels', '', 'logits', 'label', '__proto__', 'constructor', 'pixels ']),
      }),
      INPUT_MISMATCH,
    ),
  'input-extra': () => {
    const doc = validDoc();
    doc.inputs.push({ ...(doc.inputs[0] as Input), name: 'extra' });
    return bad(doc, INPUT_MISMATCH);
  },
  'input-duplicate': () => {
    const doc = validDoc();
    doc.inputs.push(validDoc().inputs[0] as Input);
    return bad(doc, INPUT_MISMATCH);
  },
  'datatype-invalid': (g) =>
    mutateInput(
      (i) => ({
        ...i,
        datatype: g.pick([
          'BOOL',
          'BYTES',
          'fp32',
          'FLOAT',
          'float32',
          '',
          'FP8',
          'INT128',
          'FP32 ',
          42,
          null,
          true,
          {},
          [],
          undefined,
        ]),
      }),
      DATATYPE,
    ),
  'datatype-int-with-fraction': (g) =>
    mutateInput((i) => {
      const data = [...PIXELS];
      data[g.int(0, 783)] = g.pick([0.5, -0.25, 1e-9]);
      return { ...i, datatype: g.pick(INT_TYPES), data };
    }, INVALID_TENSOR),
  'datatype-uint-negative': (g) =>
    mutateInput((i) => {
      const data = PIXELS.map(Math.round);
      data[g.int(0, 783)] = -1;
      return { ...i, datatype: g.pick(['UINT8', 'UINT16', 'UINT32', 'UINT64']), data };
    }, INVALID_TENSOR),
  'datatype-int8-out-of-range': (g) =>
    mutateInput((i) => {
      const data = PIXELS.map(Math.round);
      data[g.int(0, 783)] = g.pick([128, -129, 1000]);
      return { ...i, datatype: 'INT8', data };
    }, INVALID_TENSOR),
  // --- shapes ---
  'shape-type': (g) =>
    mutateInput((i) => ({ ...i, shape: g.pick([undefined, 784, '1,784', true, ...NOT_ARRAY]) }), INVALID_TENSOR),
  'shape-rank': (g) =>
    mutateInput(
      (i) => ({ ...i, shape: g.pick([[], [784], [1, 1, 784], [1, 784, 1], [1, 28, 28], [784, 1]]) }),
      INVALID_TENSOR,
    ),
  'shape-fixed-dim': (g) =>
    mutateInput((i) => ({ ...i, shape: [1, g.pick([783, 785, 0, 1, 1568, 392])] }), INVALID_TENSOR),
  'shape-negative': (g) =>
    mutateInput(
      (i) => ({
        ...i,
        shape: g.pick([
          [-1, 784],
          [1, -784],
          [-5, 784],
          [-1, -1],
        ]),
      }),
      INVALID_TENSOR,
    ),
  'shape-non-integer': (g) =>
    mutateInput(
      (i) => ({
        ...i,
        shape: g.pick([
          [1.5, 784],
          [0.999, 784],
          [1, 784.5],
          ['1', 784],
          [1, '784'],
          [true, 784],
          [[1], 784],
          [null, 784],
        ]),
      }),
      INVALID_TENSOR,
    ),
  'shape-huge': (g) =>
    mutateInput(
      (i) => ({ ...i, shape: [g.pick([1e9, 2 ** 31, 2 ** 53, 1e308, 342392, 342393, 65536]), 784] }),
      INVALID_TENSOR,
    ),
  'shape-zero-batch': () => mutateInput((i) => ({ ...i, shape: [0, 784] }), INVALID_TENSOR),
  'shape-batch-too-big-for-data': (g) =>
    mutateInput((i) => ({ ...i, shape: [g.pick([2, 3, 64, 65]), 784] }), INVALID_TENSOR),
  // --- data ---
  'data-off-by-one': (g) =>
    mutateInput((i) => {
      const data = [...PIXELS];
      if (g.int(0, 1) === 0) data.pop();
      else data.push(0);
      return { ...i, data };
    }, INVALID_TENSOR),
  'data-missing': () => mutateInput(({ data: _data, ...rest }) => rest, BAD_REQUEST),
  'data-type': (g) =>
    mutateInput((i) => ({ ...i, data: g.pick([null, 'abc', 42, {}, true, { 0: 1 }]) }), INVALID_TENSOR),
  'data-element-bad': (g) =>
    mutateInput((i) => {
      const data: unknown[] = [...PIXELS];
      data[g.int(0, 783)] = g.pick([null, 'x', '0.5', true, false, {}, [], [0.5], 1e39, -1e39, '']);
      return { ...i, data };
    }, INVALID_TENSOR),
  'data-nested-wrong': (g) =>
    mutateInput(
      (i) => ({
        ...i,
        data: g.pick([
          chunk(PIXELS, 392), // two rows for a batch of one
          chunk(PIXELS, 28), // 28 x 28 for 1 x 784
          [PIXELS.slice(0, 783)],
          [[PIXELS]],
          [PIXELS.map((x) => [x])],
          [PIXELS, PIXELS],
        ]),
      }),
      INVALID_TENSOR,
    ),
  // --- hostile values: nested deeper than any recursion survives, strings longer than any message should echo ---
  'datatype-nested': (g) => mutateInput((i) => ({ ...i, datatype: nestedArrays(g.int(2_000, 20_000)) }), DATATYPE),
  'data-element-nested': (g) =>
    mutateInput((i) => {
      const data: unknown[] = [...PIXELS];
      data[g.int(0, 783)] = g.int(0, 1) === 0 ? nestedArrays(g.int(2_000, 20_000)) : nestedObjects(g.int(2_000, 8_000));
      return { ...i, data };
    }, INVALID_TENSOR),
  'shape-nested': (g) =>
    mutateInput(
      (i) => ({ ...i, shape: g.int(0, 1) === 0 ? nestedArrays(g.int(2_000, 20_000)) : [1, nestedArrays(5_000)] }),
      INVALID_TENSOR,
    ),
  'name-huge': (g) => mutateInput((i) => ({ ...i, name: 'p'.repeat(g.int(1_000, 50_000)) }), INPUT_MISMATCH),
  'prototype-keys': (g) =>
    g.pick([
      badText('{"__proto__":{"inputs":[]},"inputs":42}', INPUT_MISMATCH),
      badText('{"inputs":[{"name":"pixels","__proto__":{"datatype":"FP32","shape":[1,784]},"data":[0]}]}', DATATYPE),
      badText('{"parameters":{"__proto__":{"timeout":1}},"inputs":[]}', BAD_PARAMETER),
      bad(
        { ...validDoc(), inputs: [{ ...validDoc().inputs[0], name: g.pick(['toString', 'hasOwnProperty']) }] },
        INPUT_MISMATCH,
      ),
    ]),
  // --- outputs ---
  'outputs-type': (g) =>
    bad({ ...validDoc(), outputs: g.pick([null, 42, 'label', {}, { name: 'label' }, true]) }, INPUT_MISMATCH),
  'output-entry-bad': (g) =>
    bad(
      { ...validDoc(), outputs: [g.pick([null, 42, 'label', [], {}, { name: 42 }, { name: null }])] },
      INPUT_MISMATCH,
    ),
  'output-unknown': (g) =>
    bad({ ...validDoc(), outputs: [{ name: g.pick(['labels', 'pixels', '', 'LOGITS', 'probs']) }] }, INPUT_MISMATCH),
  'output-duplicate': () =>
    bad({ ...validDoc(), outputs: [{ name: 'label' }, { name: 'logits' }, { name: 'label' }] }, INPUT_MISMATCH),
  'output-binary-flag-type': (g) =>
    bad(
      { ...validDoc(), outputs: [{ name: 'label', parameters: { binary_data: g.pick(['true', 1, null, {}]) } }] },
      BAD_PARAMETER,
    ),
  'output-parameters-type': (g) =>
    bad({ ...validDoc(), outputs: [{ name: 'label', parameters: g.pick(NOT_OBJECT) }] }, BAD_PARAMETER),
  'input-parameters-bad': (g) =>
    mutateInput(
      (i) => ({ ...i, parameters: g.pick([42, 'x', [], null, { binary_data_size: {} }, { foo: [] }]) }),
      BAD_PARAMETER,
    ),
  // --- the binary tensor extension ---
  'header-non-numeric': (g) => {
    const value = g.pick(['abc', '-1', '1.5', '0x10', '1e3', '', '+5', '12345678901', 'NaN']);
    return badText(JSON.stringify(validDoc()), BINARY_DATA, { ...JSON_CT, 'inference-header-content-length': value });
  },
  'header-past-body': (g) => {
    const body = JSON.stringify(validDoc());
    return badText(body, BINARY_DATA, {
      ...JSON_CT,
      'inference-header-content-length': String(body.length + g.int(1, 100_000)),
    });
  },
  'header-inside-json': (g) => {
    const body = JSON.stringify(validDoc());
    // A strict prefix of a JSON object is never JSON.
    return badText(body, INVALID_JSON, {
      ...JSON_CT,
      'inference-header-content-length': String(g.int(1, body.length - 1)),
    });
  },
  'binary-size-without-header': () => bad({ inputs: [binaryInput(ROW_BYTES)] }, BINARY_DATA),
  'binary-size-mismatch': (g) => {
    const delta = g.pick([-4, -1, 1, 4, -ROW_BYTES, 100]);
    return binary(BINARY_DATA, { inputs: [binaryInput(ROW_BYTES + delta)] }, [f32Bytes(PIXELS)]);
  },
  'binary-trailing-bytes': (g) =>
    binary(BINARY_DATA, { inputs: [binaryInput(ROW_BYTES)] }, [f32Bytes(PIXELS), g.bytes(g.int(1, 16))]),
  'binary-size-type': (g) => {
    const size = g.pick([String(ROW_BYTES), -1, 1.5, null, true]);
    // null is not even a legal parameter value; the others are legal values but not a size.
    return binary(size === null ? BAD_PARAMETER : BINARY_DATA, { inputs: [binaryInput(size)] }, [f32Bytes(PIXELS)]);
  },
  'binary-and-data': () =>
    binary(BINARY_DATA, { inputs: [binaryInput(ROW_BYTES, { data: PIXELS })] }, [f32Bytes(PIXELS)]),
  'binary-datatype-wrong-size': (g) => {
    const datatype = g.pick([...NOT_4_BYTE_TYPES, 'BOOL', 'BYTES']);
    // BOOL and BYTES never convert to FP32; the numeric ones fail on the byte count.
    return binary(
      datatype === 'BOOL' || datatype === 'BYTES' ? DATATYPE : BINARY_DATA,
      { inputs: [binaryInput(ROW_BYTES, { datatype })] },
      [f32Bytes(PIXELS)],
    );
  },
  'binary-non-finite': (g) => {
    const values = [...PIXELS];
    values[g.int(0, 783)] = g.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    return binary(INVALID_TENSOR, { inputs: [binaryInput(ROW_BYTES)] }, [f32Bytes(values)]);
  },
  'binary-header-past-body': (g) =>
    binary(BINARY_DATA, { inputs: [binaryInput(ROW_BYTES)] }, [f32Bytes(PIXELS)], (_j, total) =>
      String(total + g.int(1, 5000)),
    ),
  'binary-header-short': (g) =>
    binary(INVALID_JSON, { inputs: [binaryInput(ROW_BYTES)] }, [f32Bytes(PIXELS)], (j) =>
      String(j - g.int(1, Math.min(j - 1, 50))),
    ),
  'binary-header-long': (g) => {
    // The header swallows the first binary bytes; a NUL there is never JSON whitespace.
    const values = [...PIXELS];
    values[0] = 0;
    return binary(INVALID_JSON, { inputs: [binaryInput(ROW_BYTES)] }, [f32Bytes(values)], (j) =>
      String(j + g.int(1, 50)),
    );
  },
  'raw-binary-bad-length': (g) => {
    let n = g.int(1, 3 * ROW_BYTES);
    if (n === ROW_BYTES) n += 1;
    return badText(g.bytes(n), BINARY_DATA, { ...OCTET_CT, 'inference-header-content-length': '0' });
  },
  'raw-binary-non-finite': (g) => {
    const values = [...PIXELS];
    values[g.int(0, 783)] = g.pick([Number.NaN, Number.POSITIVE_INFINITY]);
    return badText(f32Bytes(values), INVALID_TENSOR, { ...OCTET_CT, 'inference-header-content-length': '0' });
  },
  // --- media types and size ---
  'content-type-invalid': (g) =>
    badText(JSON.stringify(validDoc()), 'SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE', {
      'content-type': g.pick(['foo', 'text', 'json', '', ' ', 'application/json, text/plain']),
    }),
  'content-type-other-malformed-body': (g) => {
    const text = JSON.stringify(validDoc());
    const ct = g.pick([
      'text/plain',
      'image/png',
      'multipart/form-data',
      'application/x-www-form-urlencoded',
      'application/xml',
    ]);
    // Neither JSON nor octet-stream: 415 would be exact; 400 (the body is malformed anyway) is tolerated.
    return {
      ...badText(text.slice(0, g.int(1, text.length - 1)), INVALID_JSON, { 'content-type': ct }),
      codes: [INVALID_JSON, 'SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE'],
    };
  },
  'body-too-large': (g) => {
    const size = g.int(BODY_LIMIT_BYTES + 1, 3 * BODY_LIMIT_BYTES);
    const body = g.int(0, 1) === 0 ? Buffer.from(JSON.stringify(validDoc()).padEnd(size, ' ')) : g.bytes(size);
    return badText(
      body,
      'SLOGATE_ERR_BODY_TOO_LARGE',
      g.pick([JSON_CT, OCTET_CT, { ...OCTET_CT, 'inference-header-content-length': '0' }]),
    );
  },
  // --- routes ---
  'unknown-route': (g) => ({
    ...bad(validDoc(), 'SLOGATE_ERR_ROUTE_NOT_FOUND'),
    path: `/v2/models/${g.pick(['nope', 'digit', 'DIGITS', 'digits2', 'pixels'])}/infer`,
  }),
  'unknown-version': (g) => ({
    ...bad(validDoc(), 'SLOGATE_ERR_VARIANT_NOT_FOUND'),
    path: `/v2/models/digits/versions/${g.pick(['nope', 'LARGE', 'v1', '0'])}/infer`,
  }),
};

/** JSON text to splice into a case as is: values nested deeper than JSON.stringify can write. */
class RawJson {
  constructor(readonly text: string) {}
}

const nestedArrays = (depth: number) => new RawJson(`${'['.repeat(depth)}${']'.repeat(depth)}`);
const nestedObjects = (depth: number) => new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

/** JSON.stringify, with each RawJson spliced in as its text. */
function toJson(doc: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(doc, (_k, v: unknown) =>
    v instanceof RawJson ? `\u0000raw${raws.push(v.text) - 1}\u0000` : v,
  );
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_m, i: string) => raws[Number(i)] as string);
}

function mutateInput(fn: (input: Input) => Input, code: ErrorCode): FuzzCase {
  const doc = validDoc();
  doc.inputs[0] = fn(doc.inputs[0] as Input);
  return bad(doc, code);
}

const KINDS = Object.keys(MUTATORS);

function generate(g: Gen, n: number): { kind: string; c: FuzzCase }[] {
  const out: { kind: string; c: FuzzCase }[] = [];
  // Every kind at least once, then random kinds.
  for (let i = 0; i < n; i++) {
    const kind = i < KINDS.length ? (KINDS[i] as string) : g.pick(KINDS);
    out.push({ kind, c: (MUTATORS[kind] as Mutator)(g) });
  }
  return out;
}

async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

let sg: Slogate;
let url: string;
let agent: Agent;

before(async () => {
  ({ sg, url } = await startSlogate(digitsConfig({ server: { bodyLimitBytes: BODY_LIMIT_BYTES } })));
  agent = new Agent({ connections: CONCURRENCY, headersTimeout: 15_000, bodyTimeout: 15_000 });
});

after(async () => {
  await agent?.close();
  await sg?.close();
});

interface Reply {
  readonly status: number;
  readonly code: string | undefined;
  readonly text: string;
  readonly contentType: string | undefined;
}

async function send(path: string, headers: Record<string, string>, body: string | Buffer): Promise<Reply> {
  const r = await request(`${url}${path}`, { method: 'POST', headers, body, dispatcher: agent });
  const text = await r.body.text();
  return {
    status: r.statusCode,
    code: header(r.headers, 'x-slogate-error-code'),
    text,
    contentType: header(r.headers, 'content-type'),
  };
}

/** Everything wrong with a reply to a malformed case (empty when it is exactly right). */
function problems(c: FuzzCase, r: Reply): string[] {
  const out: string[] = [];
  const statuses: number[] = c.codes.map((code) => ERROR_CATALOG[code].status);
  if (r.status < 400 || r.status > 499) out.push(`status ${r.status} is not a 4xx`);
  if (!statuses.includes(r.status)) out.push(`status ${r.status}, expected ${statuses.join('|')}`);
  if (r.code === undefined || !r.code.startsWith('SLOGATE_ERR_')) out.push(`x-slogate-error-code is ${String(r.code)}`);
  else if (!isErrorCode(r.code) || !c.codes.includes(r.code)) out.push(`code ${r.code}, expected ${c.codes.join('|')}`);
  let error: unknown;
  try {
    error = (JSON.parse(r.text) as { error?: unknown }).error;
  } catch {
    out.push('body is not JSON');
  }
  if (typeof error !== 'string' || error.length === 0) out.push('body has no non-empty "error" string');
  if (!r.contentType?.startsWith('application/json')) out.push(`content-type ${String(r.contentType)}`);
  return out;
}

/** The digits route's invalid requests and SLO misses so far, read from /metrics. */
async function outcomeCounts(): Promise<{ invalid: number; missed: number }> {
  const r = await request(`${url}/metrics`, { dispatcher: agent });
  const text = await r.body.text();
  const value = (line: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`${line} `))
        ?.split(' ')[1] ?? 0,
    );
  return {
    invalid: value('slogate_invalid_requests_total{route="digits"}'),
    missed: value('slogate_slo_requests_total{route="digits",outcome="missed"}'),
  };
}

const validBody = () => JSON.stringify(validDoc());

describe('fuzzing POST /v2/models/digits/infer with malformed requests', { timeout: 120_000 }, () => {
  test('the unmutated request succeeds, so each refusal below comes from its mutation', async () => {
    const r = await send(INFER_PATH, JSON_CT, validBody());
    assert.equal(r.status, 200, r.text);
  });

  test(`${CASES} seeded malformed requests each get their 4xx, a V2 error body and the right error code`, async () => {
    const cases = generate(new Gen(SEED), CASES);
    const failures: string[] = [];
    const seenStatus = new Set<number>();
    await pool(cases, CONCURRENCY, async ({ kind, c }, i) => {
      const r = await send(c.path, c.headers, c.body);
      seenStatus.add(r.status);
      const wrong = problems(c, r);
      if (wrong.length > 0 && failures.length < 20)
        failures.push(`#${i} ${kind}: ${wrong.join('; ')} -- ${r.text.slice(0, 160)}`);
    });
    assert.deepEqual(failures, []);
    for (const s of [400, 404, 413, 415]) assert.ok(seenStatus.has(s), `no case got ${s}`);
  });

  test('after the fuzzing the server still classifies real digits and reports ready', async () => {
    assert.ok(evalSet.count >= 20);
    let correct = 0;
    for (let i = 0; i < 20; i++) {
      const doc = {
        inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: Array.from(evalRow(evalSet, i)) }],
        outputs: [{ name: 'label' }],
      };
      const r = await send(INFER_PATH, JSON_CT, JSON.stringify(doc));
      assert.equal(r.status, 200, r.text);
      const out = (JSON.parse(r.text) as { outputs: { name: string; shape: number[]; data: number[] }[] }).outputs;
      assert.equal(out.length, 1);
      assert.equal(out[0]?.name, 'label');
      assert.deepEqual(out[0]?.shape, [1, 1]);
      if (out[0]?.data[0] === evalSet.labels[i]) correct++;
    }
    assert.ok(correct >= 17, `only ${correct}/20 eval digits classified correctly`);
    const ready = await request(`${url}/v2/health/ready`, { dispatcher: agent });
    await ready.body.text();
    assert.equal(ready.statusCode, 200);
  });
});

describe('malformed requests that once slipped through', () => {
  test('a shape of the wrong rank holding an object with a non-callable toString gets 400, not 500', async () => {
    const body = '{"inputs":[{"name":"pixels","datatype":"FP32","shape":[{"toString":1}],"data":[0]}]}';
    assert.deepEqual(
      problems(
        { path: INFER_PATH, headers: JSON_CT, body, codes: [INVALID_TENSOR] },
        await send(INFER_PATH, JSON_CT, body),
      ),
      [],
    );
  });

  test('deeply nested or huge client values get their 4xx with a short message, counted invalid and never missed', async () => {
    const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const doc = (fields: string) => `{"inputs":[{"name":"pixels",${fields}}]}`;
    const cases: FuzzCase[] = [
      {
        path: INFER_PATH,
        headers: JSON_CT,
        body: doc(`"datatype":${deep(20_000)},"shape":[1,784],"data":[0]`),
        codes: [DATATYPE],
      },
      {
        path: INFER_PATH,
        headers: JSON_CT,
        body: doc(`"datatype":"FP32","shape":[1,784],"data":[${deep(20_000)}${',0'.repeat(783)}]`),
        codes: [INVALID_TENSOR],
      },
      {
        path: INFER_PATH,
        headers: JSON_CT,
        body: doc(`"datatype":"FP32","shape":${deep(20_000)},"data":[0]`),
        codes: [INVALID_TENSOR],
      },
      {
        path: INFER_PATH,
        headers: JSON_CT,
        body: `{"inputs":[{"name":"${'x'.repeat(60_000)}","datatype":"FP32","shape":[1,784],"data":[0]}]}`,
        codes: [INPUT_MISMATCH],
      },
    ];
    const beforeAtMs = Date.now();
    const before = await outcomeCounts();
    const REPEAT = 5;
    for (let i = 0; i < REPEAT; i++)
      for (const c of cases) {
        const r = await send(c.path, c.headers, c.body);
        assert.deepEqual(problems(c, r), [], r.text.slice(0, 200));
        assert.ok(r.text.length < 400, `a ${r.text.length}-byte error body echoes the client's value`);
      }
    // /metrics serves one render for up to a second: read again only once the first one has expired.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, beforeAtMs + 1100 - Date.now())));
    const after = await outcomeCounts();
    assert.equal(after.invalid - before.invalid, REPEAT * cases.length, 'each counted invalid');
    assert.equal(after.missed, before.missed, 'none counted as an SLO miss');
  });

  test('a malformed percent-escape in the route answers with a slogate error code', async () => {
    const c: FuzzCase = { path: '/v2/models/%ZZ/infer', headers: JSON_CT, body: validBody(), codes: [BAD_REQUEST] };
    assert.deepEqual(problems(c, await send(c.path, c.headers, c.body)), []);
  });

  test('a valid JSON body is served whatever its Content-Type (curl -d sends form-urlencoded); a broken one is 415', async () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded']) {
      const r = await send(INFER_PATH, { 'content-type': ct }, validBody());
      assert.equal(r.status, 200, `${ct}: ${r.text}`);
    }
    const c: FuzzCase = {
      path: INFER_PATH,
      headers: { 'content-type': 'a, b' },
      body: validBody(),
      codes: ['SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE'],
    };
    assert.deepEqual(problems(c, await send(c.path, c.headers, c.body)), []);
  });
});
