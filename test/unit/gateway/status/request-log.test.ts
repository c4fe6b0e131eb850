// server.requestLog: one JSON line per answered request (not Fastify's two), with the request id from
// x-request-id, the status, the time, and the route and error code of an inference error answer.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { ERROR_CODE_HEADER } from '../../../../gateway/errors.js';
import { installRequestLog } from '../../../../gateway/status/request-log.js';

test('one info line per request with reqId, status, time, route and error code', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const app = Fastify({
    loggerInstance: pino({ level: 'info' }, sink) as FastifyBaseLogger,
    disableRequestLogging: true,
    requestIdHeader: 'x-request-id',
  });
  installRequestLog(app);
  app.post('/v2/models/:route/infer', async (_req, reply) =>
    reply.code(429).header(ERROR_CODE_HEADER, 'SLOGATE_ERR_SHED').send('{"error":"shed"}'),
  );
  app.get('/v2/health/ready', async () => '');
  await app.inject({
    method: 'POST',
    url: '/v2/models/digits/infer',
    headers: { 'x-request-id': 'abc-123', 'content-type': 'application/json' },
    payload: '{}',
  });
  await app.inject({ method: 'GET', url: '/v2/health/ready' });
  await app.close();
  const requests = lines.filter((l) => l.msg === 'request');
  assert.equal(requests.length, 2, 'one line per request');
  assert.equal(lines.length, 2, 'and no other request lines');
  const [shed, ready] = requests as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(shed.level, 30);
  assert.equal(shed.reqId, 'abc-123');
  assert.equal(shed.method, 'POST');
  assert.equal(shed.url, '/v2/models/digits/infer');
  assert.equal(shed.statusCode, 429);
  assert.equal(shed.route, 'digits');
  assert.equal(shed.code, 'SLOGATE_ERR_SHED');
  assert.equal(typeof shed.responseTimeMs, 'number');
  assert.equal(ready.statusCode, 200);
  assert.equal(ready.route, undefined);
  assert.equal(ready.code, undefined);
  assert.equal(typeof ready.reqId, 'string');
});
