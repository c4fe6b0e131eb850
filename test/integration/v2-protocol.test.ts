// The V2 protocol surface through Fastify's inject(), with real worker replicas and the real digits models.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, EVAL_PATH } from '../helpers.js';

const evalSet = readEvalSet(EVAL_PATH);
const digit = (i: number) => Array.from(evalRow(evalSet, i));

let sg: Slogate;

before(async () => {
  sg = await createSlogate({
    config: digitsConfig({
      server: { logLevel: 'silent', bodyLimitBytes: 65536 },
      routes: {
        digits: { model: 'digits', slo: { p99Ms: 500 } },
        'digits-tiny': { model: 'digits', slo: { p99Ms: 500 }, policy: { static: { variant: 'tiny' } } },
      },
    }),
    logger: pino({ level: 'silent' }),
    defaultMetrics: false,
  });
});

after(async () => {
  await sg.close();
});

function infer(route: string, body: unknown, headers: Record<string, string> = {}, path = `/v2/models/${route}/infer`) {
  return sg.app.inject({
    method: 'POST',
    url: path,
    payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });
}

describe('health and metadata', () => {
  test('GET /v2 names the server and its extensions', async () => {
    const r = await sg.app.inject('/v2');
    assert.equal(r.statusCode, 200);
    const b = r.json() as { name: string; extensions: string[] };
    assert.equal(b.name, 'slogate');
    assert.ok(b.extensions.includes('binary_tensor_data'));
  });

  test('live and ready answer 200 with JSON bodies', async () => {
    assert.deepEqual((await sg.app.inject('/v2/health/live')).json(), { live: true });
    const ready = await sg.app.inject('/v2/health/ready');
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { ready: true });
    const mr = await sg.app.inject('/v2/models/digits/versions/large/ready');
    assert.deepEqual(mr.json(), { name: 'digits', ready: true });
  });

  test('model metadata lists the route, its variants as versions, and the signature with -1 for the batch dimension', async () => {
    const r = await sg.app.inject('/v2/models/digits');
    assert.equal(r.statusCode, 200);
    const b = r.json() as {
      name: string;
      versions: string[];
      platform: string;
      inputs: unknown[];
      outputs: { name: string }[];
    };
    assert.equal(b.name, 'digits');
    assert.equal(b.platform, 'onnx_onnxv1');
    assert.equal(b.versions.length, 6);
    assert.deepEqual(b.inputs, [{ name: 'pixels', datatype: 'FP32', shape: [-1, 784] }]);
    assert.deepEqual(
      b.outputs.map((o) => o.name),
      ['logits', 'label'],
    );
    const v = (await sg.app.inject('/v2/models/digits/versions/tiny')).json() as { versions: string[] };
    assert.deepEqual(v.versions, ['tiny']);
  });

  test('unknown route and unknown version are 404 with a V2 error body and a stable code', async () => {
    for (const url of ['/v2/models/nope', '/v2/models/digits/versions/nope', '/v2/models/nope/ready']) {
      const r = await sg.app.inject(url);
      assert.equal(r.statusCode, 404, url);
      assert.equal(typeof (r.json() as { error: string }).error, 'string');
      assert.match(String(r.headers['x-slogate-error-code']), /^SLOGATE_ERR_(ROUTE|VARIANT)_NOT_FOUND$/);
    }
    const nf = await sg.app.inject('/nothing/here');
    assert.equal(nf.statusCode, 404);
    assert.equal(nf.headers['x-slogate-error-code'], 'SLOGATE_ERR_NOT_FOUND');
  });
});

describe('inference', () => {
  test('JSON inference echoes the id, names the serving variant, and predicts the label', async () => {
    const r = await infer(
      'digits',
      { id: 'req-7', inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(0) }] },
      { 'x-request-id': 'abc-123' },
    );
    assert.equal(r.statusCode, 200);
    const b = r.json() as {
      model_name: string;
      model_version: string;
      id: string;
      outputs: { name: string; shape: number[]; data: number[] }[];
    };
    assert.equal(b.model_name, 'digits');
    assert.equal(b.id, 'req-7');
    assert.ok(sg.router.route('digits').allowed.includes(b.model_version));
    const label = b.outputs.find((o) => o.name === 'label');
    assert.deepEqual(label?.shape, [1, 1]);
    assert.equal(label?.data[0], evalSet.labels[0]);
    assert.equal(r.headers['x-request-id'], 'abc-123');
    assert.match(String(r.headers['server-timing']), /^queue;dur=[\d.]+, infer;dur=[\d.]+, total;dur=[\d.]+$/);
  });

  test('a static route and a pinned version serve the variant they name', async () => {
    const a = (
      await infer('digits-tiny', { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(1) }] })
    ).json() as { model_version: string };
    assert.equal(a.model_version, 'tiny');
    const b = (
      await infer(
        'digits',
        { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(1) }] },
        {},
        '/v2/models/digits/versions/cnn-small/infer',
      )
    ).json() as { model_version: string };
    assert.equal(b.model_version, 'cnn-small');
  });

  test('nested data, a batch of several rows, and the outputs filter', async () => {
    const rows = [digit(2), digit(3), digit(4)];
    const r = await infer('digits', {
      inputs: [{ name: 'pixels', shape: [3, 784], datatype: 'FP32', data: rows }],
      outputs: [{ name: 'label' }],
    });
    assert.equal(r.statusCode, 200);
    const b = r.json() as { outputs: { name: string; shape: number[]; data: number[] }[] };
    assert.equal(b.outputs.length, 1);
    assert.deepEqual(b.outputs[0]?.shape, [3, 1]);
    assert.equal(b.outputs[0]?.data.length, 3);
  });

  test('binary tensor extension both ways: binary input, binary_data_output, per-output override', async () => {
    const pixels = new Float32Array(evalRow(evalSet, 5));
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'pixels', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } },
        ],
        outputs: [{ name: 'logits' }, { name: 'label', parameters: { binary_data: false } }],
        parameters: { binary_data_output: true },
      }),
    );
    const body = Buffer.concat([header, Buffer.from(pixels.buffer)]);
    const r = await infer('digits', body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    });
    assert.equal(r.statusCode, 200);
    const hl = Number(r.headers['inference-header-content-length']);
    const raw = r.rawPayload;
    const json = JSON.parse(raw.subarray(0, hl).toString()) as {
      outputs: { name: string; data?: number[]; parameters?: { binary_data_size: number } }[];
    };
    const logits = json.outputs.find((o) => o.name === 'logits');
    assert.equal(logits?.parameters?.binary_data_size, 40);
    assert.equal(raw.byteLength, hl + 40);
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset + hl, raw.byteOffset + hl + 40));
    let best = 0;
    for (let i = 1; i < 10; i++) if ((values[i] as number) > (values[best] as number)) best = i;
    const label = json.outputs.find((o) => o.name === 'label');
    assert.deepEqual(label?.data, [best], 'the JSON label agrees with the argmax of the binary logits');
  });

  test('raw binary body (Inference-Header-Content-Length: 0) is one input at batch 1 with binary outputs', async () => {
    const pixels = new Float32Array(evalRow(evalSet, 6));
    const r = await infer('digits', Buffer.from(pixels.buffer), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': '0',
    });
    assert.equal(r.statusCode, 200);
    const hl = Number(r.headers['inference-header-content-length']);
    const json = JSON.parse(r.rawPayload.subarray(0, hl).toString()) as {
      outputs: { name: string; shape: number[] }[];
    };
    assert.deepEqual(
      json.outputs.map((o) => o.shape),
      [
        [1, 10],
        [1, 1],
      ],
    );
  });

  test('bad requests are 4xx with V2 error bodies and codes; the server keeps serving', async () => {
    const cases: [unknown, number, string][] = [
      ['{not json', 400, 'SLOGATE_ERR_INVALID_JSON'],
      [{ inputs: [] }, 400, 'SLOGATE_ERR_INPUT_MISMATCH'],
      [
        { inputs: [{ name: 'pixels', shape: [1, 783], datatype: 'FP32', data: digit(0).slice(1) }] },
        400,
        'SLOGATE_ERR_INVALID_TENSOR',
      ],
      [
        { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(0).slice(1) }] },
        400,
        'SLOGATE_ERR_INVALID_TENSOR',
      ],
      [
        { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'BOOL', data: digit(0) }] },
        400,
        'SLOGATE_ERR_DATATYPE',
      ],
      [
        { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: [null, ...digit(0).slice(1)] }] },
        400,
        'SLOGATE_ERR_INVALID_TENSOR',
      ],
      [
        { inputs: [{ name: 'image', shape: [1, 784], datatype: 'FP32', data: digit(0) }] },
        400,
        'SLOGATE_ERR_INPUT_MISMATCH',
      ],
      [
        {
          inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(0) }],
          outputs: [{ name: 'probs' }],
        },
        400,
        'SLOGATE_ERR_INPUT_MISMATCH',
      ],
      [
        {
          inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(0) }],
          parameters: { timeout: -5 },
        },
        400,
        'SLOGATE_ERR_BAD_PARAMETER',
      ],
      [
        { inputs: [{ name: 'pixels', shape: [65, 784], datatype: 'FP32', data: new Array(65 * 784).fill(0) }] },
        413,
        'SLOGATE_ERR_BODY_TOO_LARGE',
      ],
    ];
    for (const [body, status, code] of cases) {
      const r = await infer('digits', body);
      assert.equal(r.statusCode, status, `${JSON.stringify(body).slice(0, 80)} -> ${r.body}`);
      assert.equal(r.headers['x-slogate-error-code'], code);
      assert.ok((r.json() as { error: string }).error.length > 0);
    }
    const ok = await infer('digits', {
      inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: digit(0) }],
    });
    assert.equal(ok.statusCode, 200);
  });

  test('a batch larger than the model maxBatch is refused with 400', async () => {
    const big = new Float32Array(65 * 784);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'pixels', shape: [65, 784], datatype: 'FP32', parameters: { binary_data_size: big.byteLength } },
        ],
      }),
    );
    const r = await sg.app.inject({
      method: 'POST',
      url: '/v2/models/digits/infer',
      payload: Buffer.concat([header, Buffer.from(big.buffer)]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.byteLength),
      },
    });
    // 65 x 784 x 4 bytes exceed the 64 KiB body limit of this server; either refusal is a clear 4xx.
    assert.ok(r.statusCode === 400 || r.statusCode === 413);
  });

  test('GET /metrics exposes the request counters in Prometheus text format', async () => {
    const r = await sg.app.inject('/metrics');
    assert.equal(r.statusCode, 200);
    assert.match(
      r.body,
      /^slogate_requests_total\{route="digits",variant="digits\/[a-z0-9-]+",code="2xx",revision="active"\} \d+/m,
    );
    assert.match(r.body, /^slogate_invalid_requests_total\{route="digits"\} [1-9]\d*/m);
  });
});
