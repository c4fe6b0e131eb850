// Rollouts under live load with real workers and the bad revisions of models/digits/revisions/: the slow one is
// rolled back in its canary on latency, the one failing on some inputs on errors, the degraded one in shadow on
// agreement (the accuracy gate made lenient), and a good one is promoted. Every request sent is answered.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { rolloutCommand } from '../../cli-rollout.js';
import { createSlogate, type Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { revisionOf } from '../../runtime/model-store.js';
import { DIGITS_DIR, digitsConfig, EVAL_PATH, tempDir } from '../helpers.js';

const REV_DIR = join(DIGITS_DIR, 'revisions');
const file = (name: string) => readFileSync(join(REV_DIR, name));
const TOKEN = 'test-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const EVAL = readEvalSet(EVAL_PATH);
/**
 * Short phases so a rollout ends in seconds; latency judged with a wide margin (2x: the host is shared). The p50's
 * floor is below small-slow's extra time on a fast core (~0.3 ms), so the test does not depend on the host's speed.
 */
const CANARY = {
  shadowPercent: 0,
  steps: [25, 100],
  bakeSeconds: 0.5,
  minRequests: 40,
  maxP99Increase: 1,
  minP50IncreaseMs: 0.1,
};
const SHADOW = { ...CANARY, shadowPercent: 50, shadowSeconds: 0.5 };
const DEADLINE_MS = 60_000;

function config(storeDir: string) {
  return digitsConfig({
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 }, adminToken: TOKEN },
    runtime: { workers: 1, profile: { enabled: false, samples: 5, budgetMs: 400, cacheDir: storeDir } },
    store: { dir: storeDir, maxFileBytes: 3_000_000 },
    models: {
      digits: {
        eval: EVAL_PATH,
        metadata: join(DIGITS_DIR, 'model.yaml'),
        maxBatch: 8,
        // Lenient gates: these revisions must reach live traffic for the rollout to judge them.
        maxAccuracyDrop: 0.2,
        maxSlowdown: 1000,
        rollout: CANARY,
        variants: { small: { path: join(DIGITS_DIR, 'small.onnx') } },
      },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 2000 }, policy: { static: { variant: 'small' } } } },
  });
}

interface Load {
  stop(): Promise<{ sent: number; statuses: Map<number, number>; codes: string[] }>;
}

/** Closed-loop load of eval rows from `workers` clients; `negativeEvery` > 0 makes every nth input hold a -1 pixel. */
function load(sg: Slogate, workers: number, negativeEvery = 0): Load {
  let running = true;
  let sent = 0;
  const statuses = new Map<number, number>();
  const codes: string[] = [];
  const one = async () => {
    while (running) {
      const i = sent++;
      const data = Array.from(evalRow(EVAL, i % EVAL.count));
      if (negativeEvery > 0 && i % negativeEvery === 0) data[0] = -1;
      const res = await sg.app.inject({
        method: 'POST',
        url: '/v2/models/digits/infer',
        payload: { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data }] },
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode !== 200) codes.push(String(res.headers['x-slogate-error-code']));
    }
  };
  const loops = Array.from({ length: workers }, one);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { sent, statuses, codes };
    },
  };
}

interface RolloutView {
  revision: string;
  state: string;
  reason: string;
  events: { event: string; reason: string }[];
}

async function finished(sg: Slogate, revision: string): Promise<RolloutView> {
  const start = Date.now();
  for (;;) {
    const res = await sg.app.inject({ url: '/admin/rollouts', headers: auth });
    const body = res.json() as { finished: RolloutView[] };
    const done = body.finished.find((r) => r.revision === revision);
    if (done !== undefined) return done;
    if (Date.now() - start > DEADLINE_MS) throw new Error(`rollout of ${revision} did not finish: ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function deploy(sg: Slogate, name: string, rollout?: object) {
  return sg.app.inject({
    method: 'POST',
    url: '/admin/models/digits/variants/small/revisions',
    headers: {
      'content-type': 'application/octet-stream',
      ...auth,
      ...(rollout === undefined ? {} : { 'x-slogate-rollout': JSON.stringify(rollout) }),
    },
    payload: file(name),
  });
}

function served(sg: Slogate): string {
  return `sha256:${sg.runtime.model('digits').variants.get('small')?.sha256}`;
}

function stateOf(sg: Slogate, revision: string): string | undefined {
  return sg.deployer.describe('digits').variants[0]?.revisions.find((r) => r.revision === revision)?.state;
}

describe('rollouts under live load', () => {
  const dir = tempDir('slogate-rollout-');
  let sg: Slogate;
  let original: string;
  before(async () => {
    sg = await createSlogate({ config: config(dir), logger: pino({ level: 'silent' }), defaultMetrics: false });
    original = served(sg);
  });
  after(async () => {
    await sg.close();
  });

  const cases: [string, string, object | undefined, number, RegExp][] = [
    [
      'small-slow.onnx',
      'latency',
      undefined,
      0,
      /^canary 25%: p(50|75|90|95|99) [\d.]+ ms vs active [\d.]+ ms at batch \d+, limit \+100%$/,
    ],
    [
      'small-fails-on-negative.onnx',
      'errors',
      undefined,
      5,
      /^canary 25%: error rate [\d.]+ \(\d+ of \d+\) vs active 0\.0000 \(0 of \d+\), limit \+0\.0010$/,
    ],
    ['small-degraded.onnx', 'agreement', SHADOW, 0, /^shadow 50%: agreement 0\.\d+ \(\d+ of \d+ rows\), limit 0\.980$/],
  ];
  for (const [name, why, rollout, negativeEvery, reason] of cases)
    test(`${name} is rolled back on ${why}; every request is answered by a revision that works`, async () => {
      const traffic = load(sg, 8, negativeEvery);
      const res = await deploy(sg, name, rollout);
      assert.equal(res.statusCode, 202, res.body);
      const revision = revisionOf(file(name));
      const done = await finished(sg, revision);
      const { sent, statuses } = await traffic.stop();
      assert.equal(done.state, 'rolled-back', JSON.stringify(done.events));
      assert.match(done.reason, reason);
      assert.deepEqual([...statuses.keys()], [200], `statuses ${JSON.stringify([...statuses])} of ${sent}`);
      assert.equal(served(sg), original);
      assert.equal(stateOf(sg, revision), 'rolled-back');
      assert.equal(sg.runtime.split.get('digits', 'small'), undefined);
    });

  test('a good revision goes through shadow and every canary step and is promoted', async () => {
    const traffic = load(sg, 8);
    const res = await deploy(sg, 'small-reexport.onnx', SHADOW);
    assert.equal(res.statusCode, 202, res.body);
    const revision = revisionOf(file('small-reexport.onnx'));
    const done = await finished(sg, revision);
    const { sent, statuses } = await traffic.stop();
    assert.equal(done.state, 'promoted', done.reason);
    assert.deepEqual(
      done.events.map((e) => e.event),
      ['started', 'advanced', 'advanced', 'promoted'],
    );
    assert.deepEqual([...statuses.keys()], [200], `statuses ${JSON.stringify([...statuses])} of ${sent}`);
    assert.equal(served(sg), revision);
    assert.equal(stateOf(sg, revision), 'active');
    const rows = (
      (await sg.app.inject({ url: '/status/data' })).json() as {
        rollouts: { variant: string; state: string; share: string; reason: string }[];
      }
    ).rollouts;
    assert.deepEqual(
      rows.map((r) => `${r.variant} ${r.state}`),
      ['digits/small promoted', 'digits/small rolled-back', 'digits/small rolled-back', 'digits/small rolled-back'],
    );
    assert.match(rows[2]?.reason ?? '', /^canary 25%: error rate/);
    const metrics = (await sg.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /slogate_rollout_events_total\{model="digits",variant="small",event="promoted"\} 1/);
    assert.match(metrics, /slogate_rollout_events_total\{model="digits",variant="small",event="rolled-back"\} 3/);
    assert.match(
      metrics,
      /slogate_requests_total\{route="digits",variant="digits\/small",code="2xx",revision="candidate"\} [1-9]/,
    );
    assert.match(metrics, /slogate_shadow_requests_total\{model="digits",variant="small",outcome="compared"\} \d+/);
  });

  test('slogate rollout status, pause and abort: the candidate stops at once, the active one keeps serving', async () => {
    const address = await sg.listen(0);
    const out: string[] = [];
    const io = { token: TOKEN, out: (t: string) => out.push(t) };
    const before = served(sg);
    const traffic = load(sg, 2);
    const slow = await deploy(sg, 'small-degraded.onnx', { ...CANARY, steps: [5], bakeSeconds: 3600 });
    assert.equal(slow.statusCode, 202, slow.body);
    const flags = ['--url', address, '--model', 'digits', '--variant', 'small'];
    assert.equal(await rolloutCommand(['pause', ...flags], io), 0);
    assert.equal(await rolloutCommand(['status', '--url', address], io), 0);
    assert.match(
      out.at(-1) ?? '',
      /digits\/small sha256:[0-9a-f]{12}: canary 5% \(paused\)\n {2}evidence: .*\n {2}next: wait: canary 5%: paused/,
    );
    const reason = async () => {
      const routes = (await sg.app.inject({ url: '/admin/routes', headers: auth })).json() as {
        routes: { decision: { reason: string } | null }[];
      };
      return routes.routes[0]?.decision?.reason ?? '';
    };
    const t0 = Date.now();
    while (!/small at 5% canary: planning with the (candidate|active)'s [\d.]+ ms at batch \d+/.test(await reason())) {
      assert.ok(Date.now() - t0 < 10_000, `the decision's reason never named the rollout: ${await reason()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await rolloutCommand(['abort', ...flags], io), 0);
    assert.equal(sg.runtime.split.get('digits', 'small'), undefined);
    const done = await finished(sg, revisionOf(file('small-degraded.onnx')));
    const { statuses, codes } = await traffic.stop();
    assert.equal(done.state, 'aborted');
    assert.match(done.reason, /^aborted by admin API/);
    assert.deepEqual([...statuses.keys()], [200], codes.join());
    assert.equal(served(sg), before);
    assert.equal(await rolloutCommand(['abort', ...flags], io), 1);
    assert.match(out.at(-1) ?? '', /^SLOGATE_ERR_ROLLOUT_NOT_FOUND/);
  });
});

describe('a restart in the middle of a rollout', () => {
  test('comes back serving the active revision; the rollout is marked aborted (candidate rolled-back)', async () => {
    const dir = tempDir('slogate-rollout-restart-');
    const first = await createSlogate({
      config: config(dir),
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
    });
    const original = served(first);
    const res = await deploy(first, 'small-reexport.onnx', { ...CANARY, bakeSeconds: 3600 });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal((await first.app.inject({ url: '/admin/rollouts', headers: auth })).json().running.length, 1);
    await first.close();
    const second = await createSlogate({
      config: config(dir),
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
    });
    try {
      assert.equal(served(second), original);
      const revision = revisionOf(file('small-reexport.onnx'));
      assert.equal(stateOf(second, revision), 'rolled-back');
      assert.equal(second.deployer.describe('digits').history.at(-1)?.why, 'rollout aborted by a restart');
      assert.deepEqual((await second.app.inject({ url: '/admin/rollouts', headers: auth })).json().running, []);
      // The variant takes a deploy again.
      const again = await deploy(second, 'small-reexport.onnx', { ...CANARY, steps: [100], bakeSeconds: 0 });
      assert.equal(again.statusCode, 202, again.body);
    } finally {
      await second.close();
    }
  });
});
