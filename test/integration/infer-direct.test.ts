// The direct inference path answers exactly as the Fastify route does: the same requests, over real HTTP, to one
// server with the direct path and one without give the same status, headers and body (less what differs by nature:
// timings, dates, request ids, load figures). Ordinary requests take the direct path; the rest fall through to Fastify.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { evalBody } from '../../bench/v2-requests.js';
import { BodyBudget, RouteBodyLimits } from '../../gateway/v2/body-limits.js';
import { InferDirect, inferTarget } from '../../gateway/v2/infer-direct.js';
import type { InferService } from '../../gateway/v2/infer-service.js';
import type { Slogate } from '../../main.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, EVAL_PATH, startSlogate } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const input = { name: 'pixels', shape: [-1, 784] };
const json = evalBody(set, input, 3, 2, 'json');
const binary = evalBody(set, input, 5, 1, 'binary');
const config = (directPath: boolean) =>
  digitsConfig({
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', directPath },
    routes: { digits: { model: 'digits', slo: { p99Ms: 2000 }, policy: { static: { variant: 'small' } } } },
  });

interface Case {
  readonly name: string;
  readonly path: string;
  readonly body: string | Buffer;
  readonly headers: Record<string, string>;
  /** Whether the direct path takes it (false: it falls through to Fastify). */
  readonly direct: boolean;
}

const CASES: readonly Case[] = [
  { name: 'JSON', path: '/v2/models/digits/infer', ...json, direct: true },
  { name: 'binary', path: '/v2/models/digits/infer', ...binary, direct: true },
  { name: 'pinned version', path: '/v2/models/digits/versions/tiny/infer', ...binary, direct: true },
  { name: 'unknown version', path: '/v2/models/digits/versions/nope/infer', ...json, direct: true },
  { name: 'unknown route', path: '/v2/models/nope/infer', ...json, direct: true },
  {
    name: 'invalid JSON',
    path: '/v2/models/digits/infer',
    body: '{"inputs": [',
    headers: { 'content-type': 'application/json' },
    direct: true,
  },
  {
    name: 'wrong shape',
    path: '/v2/models/digits/infer',
    body: JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }),
    headers: { 'content-type': 'application/json' },
    direct: true,
  },
  {
    name: 'bad priority',
    path: '/v2/models/digits/infer',
    body: JSON.stringify({ ...JSON.parse(json.body.toString()), parameters: { priority: 'high' } }),
    headers: { 'content-type': 'application/json' },
    direct: true,
  },
  {
    name: 'binary header past the body',
    path: '/v2/models/digits/infer',
    body: binary.body,
    headers: { ...binary.headers, 'inference-header-content-length': String(binary.body.byteLength + 1) },
    direct: true,
  },
  {
    name: 'a client request id',
    path: '/v2/models/digits/infer',
    body: json.body,
    headers: { ...json.headers, 'x-request-id': 'client-id-7' },
    direct: true,
  },
  {
    name: 'text/plain',
    path: '/v2/models/digits/infer',
    body: json.body,
    headers: { 'content-type': 'text/plain' },
    direct: false,
  },
  { name: 'a query', path: '/v2/models/digits/infer?x=1', ...json, direct: false },
  { name: 'an escape', path: '/v2/models/dig%69ts/infer', ...json, direct: false },
  {
    name: 'empty body',
    path: '/v2/models/digits/infer',
    body: '',
    headers: { 'content-type': 'application/json' },
    direct: false,
  },
];

/** Headers whose values differ by nature between two servers: compared by presence (or a prefix) only. */
const VARYING: Record<string, (v: string) => string> = {
  date: () => '*',
  'x-request-id': (v) => (v === 'client-id-7' ? v : '*'),
  'server-timing': (v) => v.replace(/[0-9.]+/g, 'N'),
  'endpoint-load-metrics': (v) => v.replace(/=[0-9.e-]+/g, '=N'),
};

async function answer(url: string, c: Case) {
  const r = await request(`${url}${c.path}`, { method: 'POST', body: c.body, headers: c.headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k] = (VARYING[k] ?? ((x: string) => x))(String(v));
  return { status: r.statusCode, headers, body: body.toString('base64') };
}

let direct: { sg: Slogate; url: string };
let fastify: { sg: Slogate; url: string };

before(async () => {
  direct = await startSlogate(config(true));
  fastify = await startSlogate(config(false));
});

after(async () => {
  await direct.sg.close();
  await fastify.sg.close();
});

test('every request gets the same answer on the direct path as through the Fastify route', async () => {
  assert.equal(fastify.sg.app.inferDirect, undefined, 'server.directPath false: no direct path');
  const taken = direct.sg.app.inferDirect as NonNullable<typeof direct.sg.app.inferDirect>;
  for (const c of CASES) {
    const before = taken.taken;
    const a = await answer(direct.url, c);
    assert.equal(taken.taken - before, c.direct ? 1 : 0, `${c.name}: ${c.direct ? 'taken' : 'left to Fastify'}`);
    const b = await answer(fastify.url, c);
    assert.deepEqual(a, b, c.name);
  }
});

test('answers carry a request id, the load report and keep their connection', async () => {
  const a = await answer(direct.url, CASES[0] as Case);
  assert.equal(a.status, 200);
  assert.equal(a.headers['x-request-id'], '*');
  assert.match(a.headers['endpoint-load-metrics'] ?? '', /^TEXT application_utilization=N/);
  assert.equal(a.headers.connection, 'keep-alive');
});

test('infer URLs: route and version of plain paths only', () => {
  assert.deepEqual(inferTarget('/v2/models/digits/infer'), { route: 'digits', version: undefined });
  assert.deepEqual(inferTarget('/v2/models/digits/versions/small/infer'), { route: 'digits', version: 'small' });
  for (const url of [
    undefined,
    '/v2/models//infer',
    '/v2/models/digits/infer/',
    '/v2/models/digits/versions//infer',
    '/v2/models/digits/versions/a/b/infer',
    '/v2/models/digits/other/small/infer',
    '/v2/models/digits/infer?x=1',
    '/v2/models/d%20/infer',
    '/v2/models/digits/ready',
    `/v2/models/${'r'.repeat(201)}/infer`,
  ])
    assert.equal(inferTarget(url), undefined, String(url));
});

test('infer URLs read in turn, repeated or not, each give their own target', () => {
  const plain = '/v2/models/digits/infer';
  const pinned = '/v2/models/digits/versions/small/infer';
  const order = [plain, plain, pinned, plain, undefined, plain, '/v2/models/d%20/infer', pinned, pinned, undefined];
  for (const url of order) {
    const expected =
      url === plain
        ? { route: 'digits', version: undefined }
        : url === pinned
          ? { route: 'digits', version: 'small' }
          : undefined;
    assert.deepEqual(inferTarget(url), expected, String(url));
  }
});

test('a fault of its own, thrown at once or later, is answered 500 and the server goes on', async () => {
  let fault: 'sync' | 'async' | undefined;
  const errors: string[] = [];
  // Only what the direct path calls; each fault is the gateway's own bug, not the client's.
  const service = {
    now: () => performance.now(),
    admit: () => {
      if (fault === 'sync') throw new Error('admission broke');
      return undefined;
    },
    infer: async () => {
      if (fault === 'async') throw new Error('the service broke');
      return { body: '{}', contentType: 'application/json; charset=utf-8', jsonLength: undefined, serverTiming: 'x' };
    },
    recordEarlyError: () => {},
    loadReport: () => 'TEXT application_utilization=0',
  } as unknown as InferService;
  const direct = new InferDirect({
    service,
    limits: new RouteBodyLimits(
      () => undefined,
      () => undefined,
      1 << 20,
    ),
    budget: new BodyBudget(1 << 20),
    requestId: () => 'r1',
    admitting: () => true,
    log: { error: (_o, msg) => errors.push(msg) },
    withheld: undefined,
  });
  const server = createServer((req, res) => {
    if (!direct.take(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/models/m/infer`;
  const send = async () => {
    const r = await request(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    await r.body.dump();
    return [r.statusCode, r.headers['x-slogate-error-code']];
  };
  try {
    for (const f of ['sync', 'async', undefined] as const) {
      fault = f;
      assert.deepEqual(await send(), f === undefined ? [200, undefined] : [500, 'SLOGATE_ERR_INTERNAL'], String(f));
    }
    assert.equal(errors.length, 2 * 2, 'each fault logged (and its withheld detail)');
  } finally {
    server.close();
  }
});
