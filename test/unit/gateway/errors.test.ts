// The one way out for errors: clients get the catalog's text and their request id for errors whose message can
// carry stack traces or node addresses (the log gets the detail); long messages are cut; request ids are bounded.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type ErrorCode, SlogateError } from '../../../core/errors.js';
import { ERROR_CODE_HEADER, MAX_ERROR_MESSAGE_CHARS, sendError } from '../../../gateway/errors.js';
import { MAX_REQUEST_ID_CHARS, requestIdOptions } from '../../../gateway/request-id.js';
import { WITHHELD_ERRORS_KEPT, WithheldErrors } from '../../../gateway/withheld-errors.js';

const WALL_MS = Date.UTC(2030, 0, 1);

const DETAIL =
  'batch failed on two replicas: remote replica remote-0 failed: connect ECONNREFUSED 10.1.2.3:8001; worker: Error: x\n    at run (/srv/slogate/dist/runtime/worker/ort-worker.js:120:9)';

function app(code: ErrorCode, message: string): { app: FastifyInstance; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const a = Fastify({
    loggerInstance: pino({ level: 'info' }, sink) as FastifyBaseLogger,
    disableRequestLogging: true,
    ...requestIdOptions(),
  });
  a.decorate('withheldErrors', new WithheldErrors(() => WALL_MS));
  a.get('/fail', async (_req, reply) => sendError(reply, new SlogateError(code, message)));
  a.get('/id', async (req) => ({ id: req.id }));
  return { app: a, lines };
}

test('internal, inference and replica failures reach the client as the catalog text plus the request id', async () => {
  for (const code of [
    'SLOGATE_ERR_INTERNAL',
    'SLOGATE_ERR_INFERENCE_FAILED',
    'SLOGATE_ERR_REPLICA_UNAVAILABLE',
  ] as const) {
    const { app: a, lines } = app(code, DETAIL);
    const r = await a.inject({ url: '/fail', headers: { 'x-request-id': 'abc-123' } });
    await a.close();
    assert.equal(r.headers[ERROR_CODE_HEADER], code);
    const error = (r.json() as { error: string }).error;
    assert.ok(error.includes('abc-123'), error);
    for (const secret of ['10.1.2.3', '/srv/slogate', 'ECONNREFUSED', 'remote-0', ' at '])
      assert.ok(!error.includes(secret), `${code} leaks '${secret}': ${error}`);
    const logged = lines.find((l) => l.code === code);
    assert.equal(logged?.detail, DETAIL, 'the detail goes to the log');
    assert.equal(logged?.reqId, 'abc-123', 'under the same request id');
    assert.deepEqual(a.withheldErrors?.list(), [
      { at: new Date(WALL_MS).toISOString(), requestId: 'abc-123', code, method: 'GET', url: '/fail', detail: DETAIL },
    ]);
  }
});

test('a client mistake keeps its message; one longer than the bound is cut', async () => {
  const { app: a } = app('SLOGATE_ERR_NOT_FOUND', `no endpoint GET /${'x'.repeat(20_000)}`);
  const r = await a.inject({ url: '/fail' });
  await a.close();
  const error = (r.json() as { error: string }).error;
  assert.ok(error.startsWith('no endpoint GET /xxx'));
  assert.ok(error.length <= MAX_ERROR_MESSAGE_CHARS + 32, `${error.length} chars`);
});

test('x-request-id is used when it is 1-128 visible ASCII characters, otherwise one is generated', async () => {
  const { app: a } = app('SLOGATE_ERR_INTERNAL', 'x');
  const id = async (value?: string) =>
    (
      (await a.inject({ url: '/id', headers: value === undefined ? {} : { 'x-request-id': value } })).json() as {
        id: string;
      }
    ).id;
  assert.equal(await id('abc-123'), 'abc-123');
  const longest = 'a'.repeat(MAX_REQUEST_ID_CHARS);
  assert.equal(await id(longest), longest);
  for (const bad of [
    'a'.repeat(MAX_REQUEST_ID_CHARS + 1),
    'a'.repeat(16_000),
    'has space',
    'tab\there',
    'é-accent',
    '',
  ])
    assert.match(await id(bad), /^req-[0-9a-z]+$/, JSON.stringify(bad.slice(0, 20)));
  assert.match(await id(), /^req-[0-9a-z]+$/);
  await a.close();
});

test('client mistakes are not kept; the withheld errors kept are the latest, newest first, bounded', async () => {
  const { app: a } = app('SLOGATE_ERR_NOT_FOUND', 'no endpoint');
  await a.inject({ url: '/fail' });
  assert.deepEqual(a.withheldErrors?.list(), []);
  await a.close();
  const kept = new WithheldErrors(() => WALL_MS);
  for (let i = 0; i < WITHHELD_ERRORS_KEPT + 5; i++)
    kept.record({
      requestId: `r${i}`,
      code: 'SLOGATE_ERR_INTERNAL',
      method: 'POST',
      url: '/x',
      detail: 'y'.repeat(1e5),
    });
  const list = kept.list();
  assert.equal(list.length, WITHHELD_ERRORS_KEPT);
  assert.equal(list[0]?.requestId, `r${WITHHELD_ERRORS_KEPT + 4}`);
  assert.equal(kept.forgotten, 5);
  assert.ok((list[0]?.detail.length ?? 0) < 5000);
});
