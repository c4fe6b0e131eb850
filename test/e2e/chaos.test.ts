// Chaos under steady load, loopback only and bounded in time: a local worker killed, one hung by a request, a remote
// node killed and another frozen (SIGSTOP), slow uploads and malformed bodies, all at once. Every accepted request
// gets a correct answer or a clear error, none waits past its deadline plus the batch timeout (with room for a loaded
// machine), the pool is back to full size, and the process's RSS returns to within 10% of where it started.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Pool } from 'undici';
import { type ServerProcess, startSlogateProcess } from '../../bench/server-process.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import type { LocalReplica } from '../../runtime/replica.js';
import { DIGITS_DIR, digitsConfig, EVAL_PATH, freePort, ROOT, startSlogate, until } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const SPIN = join(ROOT, 'test', 'fixtures', 'spin.onnx');
/** Seconds of spinning (about 1-4 us per iteration), far past a spin batch's 400 ms timeout. */
const HANG_N = 2_500_000;
const DIGITS_P99_MS = 1000;
const SPIN_P99_MS = 300;
/** Room for a loaded 2-core machine on top of deadline + timeout (a bound, not a latency target). */
const SLACK_MS = 3000;
const BATCH_TIMEOUT = { p99Factor: 4, marginMs: 100, floorMs: 250 };

const MODELS = {
  digits: {
    maxBatch: 16,
    variants: { small: { path: join(DIGITS_DIR, 'small.onnx') } },
  },
  spin: { maxBatch: 1, variants: { spin: { path: SPIN } } },
};
const ROUTES = {
  digits: { model: 'digits', slo: { p99Ms: DIGITS_P99_MS }, policy: { static: { variant: 'small' } } },
  spin: { model: 'spin', slo: { p99Ms: SPIN_P99_MS }, policy: { static: { variant: 'spin' } } },
};
const digitsBody = (i: number) =>
  JSON.stringify({
    inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: Array.from(evalRow(set, i % 20)) }],
    outputs: [{ name: 'label' }],
  });
const spinBody = (n: number) => JSON.stringify({ inputs: [{ name: 'n', shape: [1], datatype: 'INT64', data: [n] }] });

interface Outcome {
  readonly kind: 'digits' | 'spin' | 'hang';
  readonly i: number;
  readonly status: number;
  readonly code: string | undefined;
  readonly value: number | undefined;
  readonly ms: number;
}

async function send(pool: Pool, kind: Outcome['kind'], i: number): Promise<Outcome> {
  const t0 = performance.now();
  const route = kind === 'digits' ? 'digits' : 'spin';
  const body = kind === 'digits' ? digitsBody(i) : spinBody(kind === 'hang' ? HANG_N : i);
  const r = await pool.request({
    method: 'POST',
    path: `/v2/models/${route}/infer`,
    body,
    headers: { 'content-type': 'application/json' },
  });
  const b = (await r.body.json()) as { outputs?: { data: number[] }[] };
  const code = r.headers['x-slogate-error-code'];
  return {
    kind,
    i,
    status: r.statusCode,
    code: typeof code === 'string' ? code : undefined,
    value: b.outputs?.[0]?.data[0],
    ms: performance.now() - t0,
  };
}

/** Open-loop load for `ms`: digits at ~60/s and spin (short) at ~10/s; `events` fire at their offsets. */
async function load(url: string, ms: number, events: [number, () => unknown][] = []): Promise<Outcome[]> {
  const pool = new Pool(url, { connections: 32 });
  const out: Promise<Outcome>[] = [];
  const pending = [...events].sort((a, b) => a[0] - b[0]);
  const side: unknown[] = [];
  const t0 = performance.now();
  for (let n = 0; performance.now() - t0 < ms; n++) {
    while (pending.length > 0 && performance.now() - t0 >= (pending[0] as [number, unknown])[0])
      side.push((pending.shift() as [number, () => unknown])[1]());
    out.push(send(pool, n % 6 === 5 ? 'spin' : 'digits', n));
    await new Promise((r) => setTimeout(r, 15));
  }
  const results = await Promise.all(out);
  await Promise.all(side);
  await pool.close();
  return results;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** RSS after a full collection: what is still held, not what the collector has yet to free. */
async function settledRss(): Promise<number> {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  return process.memoryUsage().rss;
}

/** The label the variant gives each of the 20 digits bodies when nothing goes wrong. */
async function reference(url: string): Promise<Map<number, number>> {
  const pool = new Pool(url);
  const labels = new Map<number, number>();
  for (let i = 0; i < 20; i++) {
    const r = await send(pool, 'digits', i);
    if (r.status === 200 && r.value !== undefined) labels.set(i, r.value);
  }
  await pool.close();
  return labels;
}

/** A client that sends headers and a trickle of its body, then goes away. */
function slowUpload(url: string, ms: number): Promise<void> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write(
        'POST /v2/models/digits/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
          'Content-Length: 200000\r\n\r\n{"inputs":[',
      );
      const t = setInterval(() => s.write('1'), 100);
      setTimeout(() => {
        clearInterval(t);
        s.destroy();
        resolve();
      }, ms);
    });
    s.on('error', () => {});
  });
}

const MALFORMED = [
  '{"inputs":',
  'not json',
  JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: [1, 2] }] }),
  `{"inputs":[{"name":"pixels","shape":[1,784],"datatype":${'['.repeat(5000)}${']'.repeat(5000)},"data":[]}]}`,
];

/** Sends every malformed body; each must get a 4xx with a code, never a 5xx. */
async function malformed(url: string): Promise<void> {
  const pool = new Pool(url, { connections: 4 });
  const out = await Promise.all(
    MALFORMED.map(async (body) => {
      const r = await pool.request({
        method: 'POST',
        path: '/v2/models/digits/infer',
        body,
        headers: { 'content-type': 'application/json' },
      });
      await r.body.dump();
      return { status: r.statusCode, code: r.headers['x-slogate-error-code'] };
    }),
  );
  await pool.close();
  for (const r of out)
    assert.ok(r.status >= 400 && r.status < 500 && typeof r.code === 'string', `malformed: ${JSON.stringify(out)}`);
}

/** Every answer is right or a clear error, and none took longer than its deadline plus the batch timeout. */
function check(results: Outcome[], labels: Map<number, number>): void {
  const wrong: Outcome[] = [];
  for (const r of results) {
    const p99 = r.kind === 'digits' ? DIGITS_P99_MS : SPIN_P99_MS;
    const boundMs = Math.max(BATCH_TIMEOUT.floorMs, p99 + BATCH_TIMEOUT.marginMs) + p99 + SLACK_MS;
    const right =
      r.status === 200
        ? r.kind !== 'hang' && r.value === (r.kind === 'digits' ? labels.get(r.i % 20) : r.i)
        : r.status >= 500 &&
          typeof r.code === 'string' &&
          r.code.startsWith('SLOGATE_ERR_') &&
          r.code !== 'SLOGATE_ERR_INTERNAL';
    if (!right || r.ms > boundMs) wrong.push(r);
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${results.length} wrong, lost or late`);
}

test('chaos under load: every request answered right or with a clear error in time, the pool whole again', async (t) => {
  const node = {
    server: { logLevel: 'warn', warmup: { requests: 0 } },
    runtime: { workers: 1, profile: { enabled: false } },
    models: MODELS,
    routes: ROUTES,
  };
  const ports = [await freePort(), await freePort()];
  const startNode = (port: number): Promise<ServerProcess> => startSlogateProcess(node, { command: 'runtime', port });
  let [a, b] = (await Promise.all(ports.map(startNode))) as [ServerProcess, ServerProcess];
  let sg: Slogate | undefined;
  try {
    const started = await startSlogate(
      digitsConfig({
        server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 } },
        runtime: {
          workers: 2,
          healthCheckIntervalMs: 200,
          replicas: ports.map((p) => ({ url: `http://127.0.0.1:${p}`, concurrency: 1 })),
          profile: { enabled: false },
          health: { respawnInitialMs: 100, respawnMaxMs: 1000 },
          batchTimeout: BATCH_TIMEOUT,
        },
        models: MODELS,
        routes: ROUTES,
      }),
    );
    sg = started.sg;
    const gw = started.sg;
    const url = started.url;
    // Reference labels one by one, a warm-up under the same load as the chaos, then the starting RSS.
    const labels = await reference(url);
    assert.equal(labels.size, 20, 'every reference label answered');
    check(await load(url, 1500), labels);
    const rssStart = await settledRss();

    const hangs: Promise<Outcome>[] = [];
    let hangSent = (): void => {};
    const sent = new Promise<void>((r) => {
      hangSent = r;
    });
    const hangPool = new Pool(url, { connections: 2 });
    const side: Promise<unknown>[] = [];
    const results = await load(url, 6000, [
      [500, () => side.push(slowUpload(url, 4000), slowUpload(url, 4000))],
      [600, () => side.push(malformed(url))],
      [800, () => a.child.kill('SIGKILL')],
      [900, () => b.child.kill('SIGSTOP')],
      [
        1300,
        async () => {
          // Kill a local worker while it is idle (terminating one inside a native run aborts the process): wait for
          // one between two batches, for up to 2 s.
          for (let i = 0; i < 200; i++) {
            const victim = gw.runtime.pool.replicas.find(
              (r) => r.kind === 'local' && r.state === 'ready' && r.outstanding === 0,
            ) as LocalReplica | undefined;
            const worker = victim?.worker;
            if (worker !== undefined) return worker.terminate();
            await new Promise((r) => setTimeout(r, 10));
          }
          throw new Error('no local worker was idle for 2 s: nothing to kill');
        },
      ],
      // Once both nodes are out of service (one killed, one frozen), the hang can only land on a local worker.
      [
        1800,
        async () => {
          const remotes = () => gw.runtime.pool.replicas.filter((r) => r.kind === 'remote');
          for (let i = 0; i < 600 && remotes().some((r) => r.state === 'ready'); i++)
            await new Promise((r) => setTimeout(r, 10));
          hangs.push(send(hangPool, 'hang', 0));
          hangSent();
        },
      ],
      [
        3000,
        async () => {
          // The frozen node thaws only once the hang is on its way: thawed, it could take the hang itself.
          await sent;
          b.child.kill('SIGCONT');
          a = await startNode(ports[0] as number);
        },
      ],
      [3500, () => side.push(malformed(url))],
    ]);
    await Promise.all(side);
    const hung = await Promise.all(hangs);
    await hangPool.close();
    check([...results, ...hung], labels);
    assert.equal(hung[0]?.code, 'SLOGATE_ERR_BATCH_TIMEOUT', JSON.stringify(hung));
    assert.ok(results.filter((r) => r.status === 200).length > results.length * 0.5, 'most requests answered');

    // The pool whole again: every replica ready, no worker stuck (the hung one's run has returned).
    await until(
      () => gw.runtime.pool.replicas.every((r) => r.state === 'ready') && gw.runtime.pool.stuckSinceMs === undefined,
      30_000,
      'every replica ready and no worker stuck',
      () => gw.runtime.replicaStats(),
    );
    const stats = gw.runtime.replicaStats();
    assert.ok(
      stats.filter((r) => r.kind === 'local').reduce((n, r) => n + r.restarts, 0) >= 2,
      `killed and hung: ${JSON.stringify(stats.map((r) => [r.id, r.kind, r.restarts, r.lastChange]))}`,
    );
    check(await load(url, 1000), labels);
    // Back within 10%: freed memory may take a few collections and a little steady load to be returned.
    let rssEnd = await settledRss();
    for (let i = 0; i < 5 && rssEnd > rssStart * 1.1; i++) {
      check(await load(url, 500), labels);
      rssEnd = await settledRss();
    }
    const errors = results.filter((r) => r.status !== 200).map((r) => r.code);
    t.diagnostic(
      `${results.length} requests under chaos, ${errors.length} clear errors (${[...new Set(errors)].join(', ')}); ` +
        `hung request answered ${hung[0]?.code} after ${hung[0]?.ms.toFixed(0)} ms; restarts ${JSON.stringify(
          stats.map((r) => `${r.id}:${r.restarts}`),
        )}; RSS ${(rssStart / 2 ** 20).toFixed(0)} -> ${(rssEnd / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(
      rssEnd <= rssStart * 1.1,
      `RSS ${(rssEnd / 2 ** 20).toFixed(0)} MiB vs ${(rssStart / 2 ** 20).toFixed(0)} MiB at start`,
    );
  } finally {
    b.child.kill('SIGCONT');
    await sg?.close();
    await Promise.all([a.stop(5000), b.stop(5000)]);
  }
});
