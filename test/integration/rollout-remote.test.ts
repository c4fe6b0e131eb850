// A rollout over a real runtime node (in-process, on loopback) that cannot serve the candidate: it dropped the
// candidate after the load gate, or restarted empty (the gateway brings it back to the active revisions only), so its
// candidate batches fail. The rollout rolls back at once naming the node, in the canary and in the shadow phase, and
// every client request is answered by the active revision, which the node keeps serving.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import { revisionOf } from '../../runtime/model-store.js';
import { DIGITS_DIR, digitsConfig, tempDir } from '../helpers.js';

const REV_DIR = join(DIGITS_DIR, 'revisions');
const TOKEN = 'test-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const ORIGINAL = revisionOf(readFileSync(join(DIGITS_DIR, 'small.onnx')));
const REEXPORT = revisionOf(readFileSync(join(REV_DIR, 'small-reexport.onnx')));
/** Long bakes: the rollout can end only by rolling back. */
const CANARY = { shadowPercent: 0, steps: [50, 100], bakeSeconds: 3600, minRequests: 40, maxP99Increase: 100 };
const SHADOW = { ...CANARY, shadowPercent: 100, shadowSeconds: 3600 };
const DEADLINE_MS = 30_000;

function base(storeDir: string) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 }, adminToken: TOKEN },
    store: { dir: storeDir, maxFileBytes: 3_000_000 },
    models: {
      digits: {
        metadata: join(DIGITS_DIR, 'model.yaml'),
        maxBatch: 8,
        maxSlowdown: 1000,
        variants: { small: { path: join(DIGITS_DIR, 'small.onnx') } },
      },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 2000 }, policy: { static: { variant: 'small' } } } },
  };
}

async function startNode(port = 0): Promise<{ node: Slogate; url: string }> {
  const config = digitsConfig({
    ...base(tempDir('slogate-node-')),
    runtime: { workers: 1, profile: { enabled: false }, refuseUnreachable: true },
  });
  const node = await createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false });
  return { node, url: await node.listen(port) };
}

/** A gateway over the node and `workers` local workers (none: every batch, the candidate's included, runs there). */
async function startGateway(nodeUrl: string, workers = 0): Promise<Slogate> {
  const dir = tempDir('slogate-gw-');
  const config = digitsConfig({
    ...base(dir),
    runtime: {
      workers,
      replicas: [{ url: nodeUrl, concurrency: 2 }],
      healthCheckIntervalMs: 100,
      profile: { enabled: false, samples: 5, budgetMs: 400, cacheDir: dir },
    },
  });
  return createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false });
}

/** Closed-loop load from `workers` clients until stopped; every status counted. */
function load(sg: Slogate, workers: number) {
  let running = true;
  let sent = 0;
  const statuses = new Map<number, number>();
  const codes: string[] = [];
  const one = async () => {
    while (running) {
      sent++;
      const res = await sg.app.inject({
        method: 'POST',
        url: '/v2/models/digits/infer',
        payload: { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] },
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode !== 200) codes.push(`${res.headers['x-slogate-error-code']}: ${res.body.slice(0, 200)}`);
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

async function finishedRollouts(sg: Slogate, count: number): Promise<RolloutView[]> {
  const start = Date.now();
  for (;;) {
    const res = await sg.app.inject({ url: '/admin/rollouts', headers: auth });
    const body = res.json() as { finished: RolloutView[] };
    if (body.finished.length >= count) return body.finished;
    if (Date.now() - start > DEADLINE_MS) throw new Error(`the rollout did not finish: ${res.body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function nodeActive(node: Slogate): Promise<string | undefined> {
  const res = await node.app.inject({ url: '/admin/node/revisions', headers: auth });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { active: { variant: string; revision: string }[] }).active.find((a) => a.variant === 'small')
    ?.revision;
}

describe('a rollout over a runtime node that cannot serve the candidate', () => {
  let node: Slogate;
  let nodeUrl: string;
  let gw: Slogate;
  before(async () => {
    ({ node, url: nodeUrl } = await startNode());
    gw = await startGateway(nodeUrl);
  });
  after(async () => {
    await gw?.close();
    await node?.close();
  });

  const cases: [string, object, string][] = [
    ['canary', CANARY, 'canary 50%'],
    ['shadow', SHADOW, 'shadow 100%'],
  ];
  for (const [i, [phase, rollout, where]] of cases.entries())
    test(`in its ${phase} phase: rolled back naming the node; every request answered by the active revision`, async () => {
      const traffic = load(gw, 1);
      const res = await gw.app.inject({
        method: 'POST',
        url: '/admin/models/digits/variants/small/revisions',
        headers: { 'content-type': 'application/octet-stream', 'x-slogate-rollout': JSON.stringify(rollout), ...auth },
        payload: readFileSync(join(REV_DIR, 'small-reexport.onnx')),
      });
      assert.equal(res.statusCode, 202, res.body);
      // The node loses the candidate after its load gate passed, as a node restarted empty does.
      const drop = await node.app.inject({
        method: 'POST',
        url: `/admin/node/revisions/${REEXPORT}/unload`,
        headers: auth,
        payload: { model: 'digits', variant: 'small' },
      });
      assert.equal(drop.statusCode, 200, drop.body);
      const done = (await finishedRollouts(gw, i + 1))[0] as RolloutView;
      const { sent, statuses, codes } = await traffic.stop();
      assert.equal(done.revision, REEXPORT);
      assert.equal(done.state, 'rolled-back', JSON.stringify(done.events));
      const named = new RegExp(`^${where}: runtime node remote-0 \\(${nodeUrl.replace(/[.]/g, '\\.')}\\) cannot run `);
      assert.match(done.reason, named);
      assert.match(done.reason, new RegExp(REEXPORT));
      assert.deepEqual([...statuses.keys()], [200], `${JSON.stringify([...statuses])} of ${sent}: ${codes[0]}`);
      assert.equal(`sha256:${gw.runtime.model('digits').variants.get('small')?.sha256}`, ORIGINAL);
      assert.equal(await nodeActive(node), ORIGINAL);
      assert.equal(gw.runtime.split.get('digits', 'small'), undefined);
    });
});

describe('a runtime node restarted empty in the middle of a rollout', () => {
  let node: Slogate;
  let gw: Slogate | undefined;
  after(async () => {
    await gw?.close();
    await node?.close();
  });

  test('comes back on the active revision; its first candidate batch rolls the rollout back naming it', async () => {
    let nodeUrl: string;
    ({ node, url: nodeUrl } = await startNode());
    // A local worker answers while the node is away.
    gw = await startGateway(nodeUrl, 1);
    const traffic = load(gw, 2);
    const res = await gw.app.inject({
      method: 'POST',
      url: '/admin/models/digits/variants/small/revisions',
      headers: { 'content-type': 'application/octet-stream', 'x-slogate-rollout': JSON.stringify(CANARY), ...auth },
      payload: readFileSync(join(REV_DIR, 'small-reexport.onnx')),
    });
    assert.equal(res.statusCode, 202, res.body);
    const port = Number(new URL(nodeUrl).port);
    await node.close();
    ({ node } = await startNode(port));
    const done = (await finishedRollouts(gw, 1))[0] as RolloutView;
    const { sent, statuses, codes } = await traffic.stop();
    assert.equal(done.state, 'rolled-back', JSON.stringify(done.events));
    assert.match(
      done.reason,
      new RegExp(`^canary 50%: runtime node remote-0 \\(${nodeUrl.replace(/[.]/g, '\\.')}\\) `),
    );
    assert.deepEqual([...statuses.keys()], [200], `${JSON.stringify([...statuses])} of ${sent}: ${codes[0]}`);
    assert.equal(`sha256:${gw.runtime.model('digits').variants.get('small')?.sha256}`, ORIGINAL);
    assert.equal(await nodeActive(node), ORIGINAL);
  });
});
