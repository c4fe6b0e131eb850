// The admin API through inject(), with real workers: auth, reading decisions and their history, hot policy changes
// (validated, effective within a control tick: the control loop runs on a manual clock the test advances), profiles,
// and an engine snapshot that replays offline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { ManualClock } from '../../core/clock.js';
import { MAX_ROUTES } from '../../gateway/admin/admin.js';
import { createSlogate, type Slogate } from '../../main.js';
import { decide } from '../../policies/engine/index.js';
import { deserializeSnapshot } from '../../policies/snapshot-codec.js';
import { digitsConfig } from '../helpers.js';

const TOKEN = 'test-token-0123456789';
const body = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0.1) }],
});

async function start(adminToken?: string, clock?: ManualClock): Promise<Slogate> {
  return createSlogate({
    ...(clock !== undefined ? { clock } : {}),
    config: digitsConfig({
      server: { logLevel: 'silent', ...(adminToken !== undefined ? { adminToken } : {}) },
      routes: { digits: { model: 'digits', slo: { p99Ms: 200 } } },
    }),
    logger: pino({ level: 'silent' }),
    defaultMetrics: false,
  });
}

describe('admin auth', () => {
  let open: Slogate;
  let locked: Slogate;
  before(async () => {
    open = await start();
    locked = await start(TOKEN);
  });
  after(async () => {
    await Promise.all([open.close(), locked.close()]);
  });

  test('without a configured token: loopback callers pass, others get 403', async () => {
    assert.equal((await open.app.inject('/admin/routes')).statusCode, 200);
    const far = await open.app.inject({ url: '/admin/routes', remoteAddress: '10.1.2.3' });
    assert.equal(far.statusCode, 403);
    assert.equal(far.headers['x-slogate-error-code'], 'SLOGATE_ERR_FORBIDDEN');
  });

  test('with a token: 401 without it, 403 with a wrong one, 200 with the right one (from any address)', async () => {
    const none = await locked.app.inject('/admin/routes');
    assert.equal(none.statusCode, 401);
    assert.equal(none.headers['x-slogate-error-code'], 'SLOGATE_ERR_UNAUTHORIZED');
    assert.equal(
      (await locked.app.inject({ url: '/admin/routes', headers: { authorization: 'Bearer nope' } })).statusCode,
      403,
    );
    assert.equal(
      (
        await locked.app.inject({
          url: '/admin/routes',
          headers: { authorization: `Bearer ${TOKEN}` },
          remoteAddress: '10.1.2.3',
        })
      ).statusCode,
      200,
    );
  });

  test('GET /admin/errors (the detail clients do not get) is behind the same auth and starts empty', async () => {
    assert.equal((await locked.app.inject('/admin/errors')).statusCode, 401);
    assert.equal((await open.app.inject({ url: '/admin/errors', remoteAddress: '10.1.2.3' })).statusCode, 403);
    const r = await locked.app.inject({ url: '/admin/errors', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { errors: [] });
  });
});

describe('admin routes and decisions', () => {
  let sg: Slogate;
  const clock = new ManualClock(1000);
  /** One control tick's worth of time: the alarm an admin PUT raises fires, and so does the periodic tick. */
  const tick = () => clock.advance(sg.config.engine.tickMs);
  before(async () => {
    sg = await start(undefined, clock);
  });
  after(async () => {
    await sg.close();
  });

  const infer = async (route: string) => {
    const r = await sg.app.inject({
      method: 'POST',
      url: `/v2/models/${route}/infer`,
      payload: body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.statusCode, 200, r.body);
    return (r.json() as { model_version: string }).model_version;
  };

  test('GET /admin/routes/{route}/decision explains the current choice with its inputs', async () => {
    const r = await sg.app.inject('/admin/routes/digits/decision');
    assert.equal(r.statusCode, 200);
    const d = r.json() as {
      route: string;
      variants: { variant: string; share: number }[];
      reason: string;
      inputs: Record<string, unknown>;
      predictedP99Ms: number;
    };
    assert.equal(d.route, 'digits');
    assert.ok(d.variants.length >= 1 && Math.abs(d.variants.reduce((a, v) => a + v.share, 0) - 1) < 1e-6);
    assert.ok(d.reason.length > 10);
    for (const k of ['rateFast', 'rateSlow', 'burstiness', 'observedP99Ms', 'capacityRps', 'overheadMs'])
      assert.ok(k in d.inputs, `inputs.${k}`);
    assert.equal((await sg.app.inject('/admin/routes/nope/decision')).statusCode, 404);
  });

  test('an invalid PUT lists every problem (400) and changes nothing', async () => {
    const before = (await sg.app.inject('/admin/routes/digits')).json() as { config: unknown };
    const r = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/digits',
      payload: { model: 'digits', slo: { p99Ms: -5 }, objective: 'fastest', bogus: 1 },
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.headers['x-slogate-error-code'], 'SLOGATE_ERR_INVALID_POLICY');
    const msg = (r.json() as { error: string }).error;
    for (const p of ['slo.p99Ms', 'objective', 'bogus']) assert.ok(msg.includes(p), `${p} listed in: ${msg}`);
    const unknownVariant = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/digits',
      payload: { model: 'digits', slo: { p99Ms: 50 }, policy: { static: { variant: 'huge' } } },
    });
    assert.equal(unknownVariant.statusCode, 400);
    assert.match((unknownVariant.json() as { error: string }).error, /huge/);
    const notJson = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/digits',
      payload: '{oops',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(notJson.statusCode, 400);
    assert.deepEqual((await sg.app.inject('/admin/routes/digits')).json(), before);
  });

  test('a valid PUT takes effect within one control tick, without a restart', async () => {
    const r = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/digits',
      payload: { model: 'digits', slo: { p99Ms: 200 }, policy: { static: { variant: 'tiny' } } },
    });
    assert.equal(r.statusCode, 200, r.body);
    tick();
    assert.equal(await infer('digits'), 'tiny');
    const back = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/digits',
      payload: { model: 'digits', slo: { p99Ms: 200 }, variants: ['cnn-small'] },
    });
    assert.equal(back.statusCode, 200);
    tick();
    assert.equal(await infer('digits'), 'cnn-small');
  });

  test('a PUT to a new name creates a route (201) that serves at once', async () => {
    const r = await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/fresh',
      payload: { model: 'digits', slo: { p99Ms: 100 }, policy: { static: { variant: 'small' } } },
    });
    assert.equal(r.statusCode, 201);
    assert.equal(await infer('fresh'), 'small');
  });

  test('a route read back from GET can be PUT as it is: its policy in the normalised form, with a kind', async () => {
    const got = (await sg.app.inject('/admin/routes/fresh')).json() as { policy: string; config: { policy: unknown } };
    assert.equal(got.policy, 'static');
    assert.deepEqual(got.config.policy, { kind: 'static', variant: 'small', maxBatch: 1, maxQueueDelayMs: 0 });
    const again = await sg.app.inject({ method: 'PUT', url: '/admin/routes/fresh', payload: got.config });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual((again.json() as { config: unknown }).config, got.config);
  });

  test('DELETE removes a route: its URL answers 404, its decision is gone, a second DELETE is 404', async () => {
    await sg.app.inject({
      method: 'PUT',
      url: '/admin/routes/doomed',
      payload: { model: 'digits', slo: { p99Ms: 90 } },
    });
    tick();
    assert.equal((await sg.app.inject('/admin/routes/doomed/decision')).statusCode, 200);
    const del = await sg.app.inject({ method: 'DELETE', url: '/admin/routes/doomed' });
    assert.equal(del.statusCode, 200, del.body);
    assert.deepEqual(del.json(), { deleted: 'doomed' });
    const gone = await sg.app.inject({ method: 'POST', url: '/v2/models/doomed/infer', payload: body });
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.headers['x-slogate-error-code'], 'SLOGATE_ERR_ROUTE_NOT_FOUND');
    assert.equal((await sg.app.inject('/admin/routes/doomed/decision')).statusCode, 404);
    tick();
    assert.equal((await sg.app.inject({ method: 'DELETE', url: '/admin/routes/doomed' })).statusCode, 404);
    assert.equal(
      await infer('digits'),
      (await sg.app.inject('/admin/routes/digits')).json().decision.variants[0].variant,
    );
  });

  test(`the admin API creates at most ${MAX_ROUTES} routes in all; updates and deletes still work at the bound`, async () => {
    const put = (name: string) =>
      sg.app.inject({ method: 'PUT', url: `/admin/routes/${name}`, payload: { model: 'digits', slo: { p99Ms: 90 } } });
    const room = MAX_ROUTES - (await sg.app.inject('/admin/routes')).json().routes.length;
    const made = Array.from({ length: room }, (_, i) => `bulk-${i}`);
    for (const name of made) assert.equal((await put(name)).statusCode, 201);
    const over = await put('one-too-many');
    assert.equal(over.statusCode, 400);
    assert.equal(over.headers['x-slogate-error-code'], 'SLOGATE_ERR_INVALID_POLICY');
    assert.match(over.body, new RegExp(`at most ${MAX_ROUTES} routes`));
    assert.equal((await put(made[0] as string)).statusCode, 200, 'an existing route can still be updated');
    for (const name of made)
      assert.equal((await sg.app.inject({ method: 'DELETE', url: `/admin/routes/${name}` })).statusCode, 200);
    assert.equal((await put('one-too-many')).statusCode, 201, 'room again');
    await sg.app.inject({ method: 'DELETE', url: '/admin/routes/one-too-many' });
  });

  test('GET /admin/decisions lists changes with reasons, filtered by ?since', async () => {
    const all = (await sg.app.inject('/admin/decisions')).json() as {
      decisions: { route: string; from: string; to: string; reason: string; at: string }[];
    };
    assert.ok(
      all.decisions.some((d) => d.route === 'digits' && d.to.includes('tiny')),
      'the hot change is in the history',
    );
    const future = (
      await sg.app.inject(`/admin/decisions?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)
    ).json() as { decisions: unknown[] };
    assert.equal(future.decisions.length, 0);
    const bad = await sg.app.inject('/admin/decisions?since=yesterday-ish');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers['x-slogate-error-code'], 'SLOGATE_ERR_BAD_PARAMETER');
  });

  test('GET /admin/profiles, /admin/replicas and /admin/queues report the runtime', async () => {
    const p = (await sg.app.inject('/admin/profiles')).json() as { profiles: { variant: string }[]; replicas: number };
    assert.equal(p.replicas, 1);
    assert.equal(p.profiles.length > 0, true);
    const reps = (await sg.app.inject('/admin/replicas')).json() as { replicas: { id: string; state: string }[] };
    assert.deepEqual(
      reps.replicas.map((r) => r.state),
      ['ready'],
    );
    const q = (await sg.app.inject('/admin/queues')).json() as { queues: { variant: string }[] };
    assert.equal(q.queues.length, 6);
  });

  test('the engine snapshot replays offline to the decisions the server made', async () => {
    sg.controller.tick();
    const raw = (await sg.app.inject('/admin/engine/snapshot')).json() as unknown;
    const replay = decide(deserializeSnapshot(raw));
    for (const [route, d] of replay.decisions)
      assert.deepEqual(d.variants, sg.controller.current(route)?.variants, route);
  });
});
