// Hung batches with real workers: spin.onnx runs as long as its input `n` says, so one request hangs a worker for
// seconds. The hung request gets BATCH_TIMEOUT within its timeout, its worker is abandoned and replaced, and every
// other request keeps being answered right. A fake runtime node on loopback that answers health but not inference is
// made suspect, stays out (no flapping) while only its health answers, and comes back once inference answers too.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../core/config.js';
import { encodeInferResponse } from '../../gateway/v2/codec.js';
import { createSlogate, type Slogate } from '../../main.js';
import type { LocalReplica } from '../../runtime/replica.js';
import { ROOT, until } from '../helpers.js';

const SPIN = join(ROOT, 'test', 'fixtures', 'spin.onnx');
/** Seconds of spinning on any machine this runs on (about 1-4 us per iteration), against a timeout of 300 ms. */
const HANG_N = 2_000_000;
/** Errors a request may get on a loaded machine without anything being wrong (its deadline could not be met). */
const DEADLINE_CODES = ['SLOGATE_ERR_DEADLINE_UNREACHABLE', 'SLOGATE_ERR_SHED'];
const P99_MS = 200;
/** The batch timeout for a lone spin request: max(250, 200 + 100) ms after dispatch. */
const TIMEOUT_MS = 300;

function config(runtime: Record<string, unknown>) {
  return parseConfig(
    {
      server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 } },
      runtime: { profile: { enabled: false }, ...runtime },
      models: { spin: { maxBatch: 1, variants: { spin: { path: SPIN } } } },
      routes: { spin: { model: 'spin', slo: { p99Ms: P99_MS }, policy: { static: { variant: 'spin' } } } },
    },
    ROOT,
    'test config',
  );
}

async function start(runtime: Record<string, unknown>): Promise<Slogate> {
  const sg = await createSlogate({ config: config(runtime), logger: pino({ level: 'silent' }), defaultMetrics: false });
  await sg.app.ready();
  return sg;
}

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly y: number | undefined;
  readonly ms: number;
}

async function spin(sg: Slogate, n: number): Promise<Answer> {
  const t0 = performance.now();
  const r = await sg.app.inject({
    method: 'POST',
    url: '/v2/models/spin/infer',
    payload: { inputs: [{ name: 'n', datatype: 'INT64', shape: [1], data: [n] }] },
  });
  const body = r.json() as { outputs?: { data: number[] }[] };
  const code = r.headers['x-slogate-error-code'];
  return {
    status: r.statusCode,
    code: typeof code === 'string' ? code : undefined,
    y: body.outputs?.[0]?.data[0],
    ms: performance.now() - t0,
  };
}

/** Short requests every `everyMs` until `stop` resolves; each answer is checked by the caller. */
async function steady(sg: Slogate, stop: Promise<unknown>, everyMs: number): Promise<Answer[]> {
  const answers: Promise<Answer>[] = [];
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  for (let i = 1; !done; i++) {
    answers.push(spin(sg, i));
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Promise.all(answers);
}

describe('a local worker hung inside a batch', () => {
  let sg: Slogate;
  after(() => sg?.close());

  test('the hung request gets BATCH_TIMEOUT in time, its worker is replaced, the others are answered', async () => {
    sg = await start({ workers: 2, health: { respawnInitialMs: 100, respawnMaxMs: 400 } });
    const keepAlive = setInterval(() => {}, 1000);
    try {
      const hung = spin(sg, HANG_N);
      const others = steady(sg, hung, 25);
      const h = await hung;
      assert.equal(h.status, 504, JSON.stringify(h));
      assert.equal(h.code, 'SLOGATE_ERR_BATCH_TIMEOUT');
      // Its timeout plus room for a loaded machine, and far below the seconds the spin takes.
      assert.ok(h.ms < TIMEOUT_MS + 1500, `answered after ${h.ms.toFixed(0)} ms`);
      const answers = await others;
      assert.ok(answers.length >= 3, `${answers.length} other requests`);
      answers.forEach((a, i) => {
        if (a.status === 200) assert.equal(a.y, i + 1, 'y = n');
        else assert.ok(DEADLINE_CODES.includes(a.code ?? ''), `request ${i + 1}: ${JSON.stringify(a)}`);
      });
      assert.ok(answers.filter((a) => a.status === 200).length >= answers.length / 2, 'most answered');
      const stats = sg.runtime.replicaStats();
      assert.equal(
        stats.reduce((n, r) => n + r.restarts, 0),
        1,
        'one worker replaced',
      );
      assert.match(stats.map((r) => r.lastChange).join(' '), /worker hung|replacement worker loaded/);
      await until(
        () => sg.runtime.pool.readySlots === 2,
        10_000,
        'both workers ready',
        () => sg.runtime.replicaStats(),
      );
      const stuck = () => sg.runtime.pool.replicas.reduce((n, r) => n + (r as LocalReplica).stuckWorkers, 0);
      assert.equal(stuck(), 1, 'the abandoned thread is still spinning');
      assert.equal((await sg.app.inject('/v2/health/ready')).statusCode, 200);
      // The abandoned thread is destroyed once its run returns (terminating it mid-run would abort the process).
      await until(
        () => stuck() === 0,
        60_000,
        'the abandoned worker to finish',
        () => sg.runtime.replicaStats(),
      );
      assert.equal(sg.runtime.pool.stuckSinceMs, undefined);
      assert.equal((await spin(sg, 7)).y, 7);
    } finally {
      clearInterval(keepAlive);
    }
  });
});

describe('a request that hangs every worker it reaches', () => {
  let sg: Slogate;
  after(() => sg?.close());

  test('a replica holds at most two threads: after a second hang it is down until an abandoned one returns', async () => {
    sg = await start({ workers: 1, health: { respawnInitialMs: 100, respawnMaxMs: 400 } });
    const keepAlive = setInterval(() => {}, 1000);
    const replica = sg.runtime.pool.replicas[0] as LocalReplica;
    try {
      assert.equal((await spin(sg, HANG_N)).code, 'SLOGATE_ERR_BATCH_TIMEOUT');
      await until(
        () => replica.state === 'ready',
        10_000,
        'the replacement',
        () => sg.runtime.replicaStats(),
      );
      assert.equal((await spin(sg, HANG_N)).code, 'SLOGATE_ERR_BATCH_TIMEOUT');
      assert.equal(replica.state, 'down', 'no third thread while two are stuck');
      assert.equal(replica.stuckWorkers, 2);
      assert.equal((await sg.app.inject('/v2/health/ready')).statusCode, 503, 'not ready: no slot can run');
      assert.match(sg.runtime.replicaStats()[0]?.lastChange ?? '', /an earlier one is still stuck/);
      await until(
        () => replica.state === 'ready',
        60_000,
        'a replacement once an abandoned worker returned',
        () => sg.runtime.replicaStats(),
      );
      assert.ok(replica.stuckWorkers <= 1);
      assert.equal((await spin(sg, 3)).y, 3);
      await until(
        () => replica.stuckWorkers === 0,
        60_000,
        'both abandoned workers to finish',
        () => sg.runtime.replicaStats(),
      );
    } finally {
      clearInterval(keepAlive);
    }
  });
});

/** A runtime node serving spin that answers health always and inference only while `answering`. */
class FakeNode {
  answering = true;
  inferences = 0;
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v2/health/ready') return void res.end('{"ready":true}');
      // A node without model revisions: the gateway does not sync any to it.
      if (req.url?.startsWith('/admin/')) return void res.writeHead(404).end('{}');
      if (req.url === '/v2/models/spin')
        return void res.end(
          JSON.stringify({
            name: 'spin',
            versions: ['spin'],
            inputs: [{ name: 'n', datatype: 'INT64', shape: [1] }],
            outputs: [{ name: 'y', datatype: 'FP32', shape: [1] }],
          }),
        );
      this.inferences++;
      if (!this.answering) return; // never answers: the request hangs until the gateway gives up on it
      const enc = encodeInferResponse(
        'spin',
        'spin',
        undefined,
        [{ name: 'y', datatype: 'FP32', shape: [1], data: new Float32Array([-1]) }],
        [true],
      );
      res.setHeader('inference-header-content-length', String(enc.jsonLength));
      res.end(enc.body);
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }
}

describe('a remote node that answers health but not inference', () => {
  let sg: Slogate;
  const node = new FakeNode();
  after(async () => {
    await sg?.close();
    await node.close();
  });

  test('it is made suspect, stays out while only health answers, and is back once inference answers', async () => {
    const url = await node.listen();
    sg = await start({ workers: 1, replicas: [{ url, concurrency: 1 }], healthCheckIntervalMs: 100 });
    const keepAlive = setInterval(() => {}, 1000);
    try {
      const remote = () => sg.runtime.replicaStats().find((r) => r.kind === 'remote');
      node.answering = false;
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => spin(sg, i + 1)));
      // Each request is answered by the local worker (y = n) or timed out on the node; none is lost or waits long.
      answers.forEach((a, i) => {
        if (a.status === 200) assert.equal(a.y, i + 1, 'answered by the local worker');
        else assert.ok([...DEADLINE_CODES, 'SLOGATE_ERR_BATCH_TIMEOUT'].includes(a.code ?? ''), JSON.stringify(a));
        assert.ok(a.ms < TIMEOUT_MS + 3000, `answered after ${a.ms.toFixed(0)} ms`);
      });
      const timedOut = answers.filter((a) => a.code === 'SLOGATE_ERR_BATCH_TIMEOUT').length;
      assert.equal(timedOut, 1, 'only the batch on the node timed out (its one slot), then it got no more');
      assert.equal(remote()?.state, 'suspect');
      // Probes every 100 ms: health passes, the probe inference does not; the node must not flap back.
      const seen = new Set<string>();
      const t0 = Date.now();
      while (Date.now() - t0 < 2500) {
        seen.add(remote()?.state ?? '');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual([...seen], ['suspect'], 'no traffic while only health answers');
      assert.equal((await sg.app.inject('/v2/health/ready')).statusCode, 200, 'the local worker is ready');
      const sent = node.inferences;
      assert.ok(sent >= 2, 'probed with inferences');
      node.answering = true;
      await until(
        () => remote()?.state === 'ready',
        6000,
        'the node back after a passing probe',
        () => sg.runtime.replicaStats(),
      );
      assert.ok(node.inferences > sent);
    } finally {
      clearInterval(keepAlive);
    }
  });
});
