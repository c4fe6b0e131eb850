// The meter of event-loop time spent on requests that never reach a model: the status page, /metrics and 404s count,
// inference does not, and one slow request counts at most its cap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { ManualClock } from '../../../core/clock.js';
import { OtherWorkMeter, unseenMs } from '../../../gateway/other-work.js';

test('other requests count their handler time, inference and nothing else does not', async () => {
  const clock = new ManualClock(0);
  const meter = new OtherWorkMeter(clock);
  const app = Fastify();
  meter.install(app);
  const busy = (ms: number) => async () => {
    clock.advance(ms);
    return 'ok';
  };
  app.get('/status/data', busy(3));
  app.get('/metrics', busy(60));
  app.post('/v2/models/:route/infer', busy(7));
  app.post('/v2/models/:route/versions/:version/infer', busy(7));
  app.setNotFoundHandler(async (_req, reply) => {
    clock.advance(0.5);
    return reply.code(404).send('no');
  });
  await app.inject({ method: 'POST', url: '/v2/models/digits/infer', payload: {} });
  await app.inject({ method: 'POST', url: '/v2/models/digits/versions/tiny/infer', payload: {} });
  assert.equal(meter.takeMs(), 0, 'inference is not other work');
  await app.inject({ method: 'GET', url: '/status/data' });
  await app.inject({ method: 'GET', url: '/status/data' });
  await app.inject({ method: 'GET', url: '/nope' });
  // Handler time plus, per request, the parse and write no hook sees (the answers here are 2 bytes each).
  assert.ok(Math.abs(meter.takeMs() - (6.5 + 3 * unseenMs('ok'))) < 1e-9);
  assert.equal(meter.takeMs(), 0, 'taking resets the sum');
  await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(meter.takeMs(), 50, 'one request counts at most its cap');
  await app.close();
});

test('a request that costs its handler nothing is still charged its parsing and its answer bytes', async () => {
  const clock = new ManualClock(0);
  const meter = new OtherWorkMeter(clock);
  const app = Fastify();
  meter.install(app);
  const small = 'x'.repeat(16);
  const large = 'x'.repeat(256 * 1024);
  app.get('/status/data', async () => small);
  app.get('/metrics', async () => large);
  await app.inject({ method: 'GET', url: '/status/data' });
  const smallMs = meter.takeMs();
  await app.inject({ method: 'GET', url: '/metrics' });
  const largeMs = meter.takeMs();
  assert.ok(smallMs > 0, `a cached answer is not free (${smallMs} ms)`);
  assert.ok(largeMs > smallMs * 2, `a large answer costs more to write (${largeMs} vs ${smallMs} ms)`);
  assert.equal(unseenMs(Buffer.alloc(1024)), unseenMs('x'.repeat(1024)), 'bytes count alike in a string or a buffer');
  await app.close();
});
