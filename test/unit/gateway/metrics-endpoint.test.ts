// GET /metrics on the manual clock: however many scrapes, one registry render per second, shared by concurrent ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { ManualClock } from '../../../core/clock.js';
import { CachedExposition, metricsEndpoint } from '../../../gateway/metrics-endpoint.js';

function countingRegistry() {
  const registry = {
    renders: 0,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async metrics() {
      registry.renders++;
      await new Promise((resolve) => setImmediate(resolve));
      return `slogate_render ${registry.renders}\n`;
    },
  };
  return registry;
}

test('a hundred concurrent scrapes cause one render; a scrape a second later renders again', async () => {
  const clock = new ManualClock(10_000);
  const registry = countingRegistry();
  const app = Fastify();
  metricsEndpoint(app, { registry, clock });
  const answers = await Promise.all(Array.from({ length: 100 }, () => app.inject({ method: 'GET', url: '/metrics' })));
  assert.equal(registry.renders, 1);
  for (const a of answers) {
    assert.equal(a.statusCode, 200);
    assert.equal(a.body, 'slogate_render 1\n');
    assert.equal(a.headers['content-type'], registry.contentType);
  }
  clock.advance(999);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).body, 'slogate_render 1\n');
  clock.advance(1);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).body, 'slogate_render 2\n');
  assert.equal(registry.renders, 2);
  await app.close();
});

test('a failed render is not kept: the next scrape renders again', async () => {
  const clock = new ManualClock(0);
  const cache = new CachedExposition(1000);
  let renders = 0;
  await assert.rejects(
    cache.get('text/plain', clock.now(), async () => {
      renders++;
      throw new Error('collector failed');
    }),
  );
  assert.equal(await cache.get('text/plain', clock.now(), async () => `ok ${++renders}`), 'ok 2');
});

test('each content type has its own render', async () => {
  const cache = new CachedExposition(1000);
  assert.equal(await cache.get('text/plain', 0, async () => 'prometheus'), 'prometheus');
  assert.equal(await cache.get('application/openmetrics-text', 0, async () => 'openmetrics'), 'openmetrics');
  assert.equal(await cache.get('text/plain', 500, async () => 'again'), 'prometheus');
});
