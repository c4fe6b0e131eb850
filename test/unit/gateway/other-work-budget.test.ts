// The ceiling on other work's share of the event loop: over it, the status page, /metrics and unknown paths are
// refused before their handler runs; health probes, admin and inference never are; the share recovers with time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { ManualClock } from '../../../core/clock.js';
import { OtherWorkMeter } from '../../../gateway/other-work.js';
import { OtherWorkBudget } from '../../../gateway/other-work-budget.js';

test('the budget refuses only while recent use is over the share, and recovers as it decays', () => {
  const clock = new ManualClock(0);
  const budget = new OtherWorkBudget(clock, 0.2);
  budget.spend(150);
  assert.equal(budget.refuse(), false, '150 ms within a 200 ms share');
  budget.spend(100);
  assert.equal(budget.refuse(), true, '250 ms over it');
  clock.advance(300);
  assert.equal(budget.refuse(), false, 'decayed to about 185 ms after 300 ms');
  assert.equal(budget.refusedCount, 1);
});

test('a flood of status and metrics requests is refused with 429, health and inference are still served', async () => {
  const clock = new ManualClock(0);
  const meter = new OtherWorkMeter(clock, new OtherWorkBudget(clock, 0.1));
  const app = Fastify();
  meter.install(app);
  let rendered = 0;
  app.get('/metrics', async () => {
    rendered++;
    clock.advance(20);
    return 'm';
  });
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/admin/routes', async () => []);
  app.post('/v2/models/:route/infer', async () => 'ok');
  for (let i = 0; i < 6; i++) assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  assert.equal(rendered, 6, 'six 20 ms renders reach the 100 ms share');
  // Over it, refusals wait 200 ms (a looping client slows down) and the handler never runs.
  const refused = ['/metrics', '/metrics', '/nope'].map((url) => app.inject({ method: 'GET', url }));
  let settled = 0;
  for (const r of refused) void r.then(() => settled++);
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, 0, 'nothing answered before the pause');
  clock.advance(200);
  const answers = await Promise.all(refused);
  assert.deepEqual(
    answers.map((a) => a.statusCode),
    [429, 429, 429],
    'metrics and unknown paths are limited',
  );
  assert.equal(rendered, 6, 'refused before rendering');
  assert.equal(answers[0]?.headers['retry-after'], '1');
  assert.equal(answers[0]?.headers['x-slogate-error-code'], 'SLOGATE_ERR_OTHER_WORK_LIMITED');
  clock.advance(300);
  const again = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(again.statusCode, 200, "the refusals' pauses used none of the share: it decays as if they never came");
  assert.equal((await app.inject({ method: 'GET', url: '/v2/health/live' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/admin/routes' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: '/v2/models/d/infer', payload: {} })).statusCode, 200);
  clock.advance(2000);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'served again once it decays');
  await app.close();
});

test('admin requests, however long they take, use none of the share', async () => {
  const clock = new ManualClock(0);
  const meter = new OtherWorkMeter(clock, new OtherWorkBudget(clock, 0.1));
  const app = Fastify();
  meter.install(app);
  app.post('/admin/models/:model/variants/:variant/revisions', async () => {
    clock.advance(2000);
    return 'deployed';
  });
  app.get('/metrics', async () => 'm');
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/admin/models/d/variants/v/revisions' });
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  await app.close();
});
