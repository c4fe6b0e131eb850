// Self-healing under steady load: a worker thread killed mid-load, and a remote runtime node killed mid-run. Every
// accepted request must get the correct answer; the pool must be back to full size afterwards.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Pool } from 'undici';
import { type ServerProcess, startSlogateProcess } from '../../bench/server-process.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import type { LocalReplica } from '../../runtime/replica.js';
import { digitsConfig, digitsRawConfig, EVAL_PATH, freePort, startSlogate, until } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const BODIES = Array.from({ length: 50 }, (_, i) =>
  JSON.stringify({
    inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: Array.from(evalRow(set, i)) }],
    outputs: [{ name: 'label' }],
  }),
);
const ROUTE = { digits: { model: 'digits', slo: { p99Ms: 30_000 }, policy: { static: { variant: 'small' } } } };

interface Outcome {
  readonly i: number;
  readonly status: number;
  readonly label: number | undefined;
}

/** Steady open-loop load (`rate` req/s for `ms`), calling `chaos` once at `atMs`. */
async function steady(
  url: string,
  rate: number,
  ms: number,
  atMs: number,
  chaos: () => Promise<void>,
): Promise<Outcome[]> {
  const pool = new Pool(url, { connections: 32 });
  const out: Promise<Outcome>[] = [];
  const t0 = performance.now();
  let fired = false;
  let chaosDone: Promise<void> = Promise.resolve();
  for (let n = 0; performance.now() - t0 < ms; n++) {
    if (!fired && performance.now() - t0 >= atMs) {
      fired = true;
      chaosDone = chaos();
    }
    const i = n % BODIES.length;
    out.push(
      pool
        .request({
          method: 'POST',
          path: '/v2/models/digits/infer',
          body: BODIES[i] as string,
          headers: { 'content-type': 'application/json' },
        })
        .then(async (r) => {
          const b = (await r.body.json()) as { outputs?: { data: number[] }[] };
          return { i, status: r.statusCode, label: b.outputs?.[0]?.data[0] };
        }),
    );
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  const results = await Promise.all(out);
  await chaosDone;
  await pool.close();
  return results;
}

/** The answers the variant gives when nothing goes wrong. */
async function reference(url: string): Promise<number[]> {
  const pool = new Pool(url);
  const labels: number[] = [];
  for (const body of BODIES) {
    const r = await pool.request({
      method: 'POST',
      path: '/v2/models/digits/infer',
      body,
      headers: { 'content-type': 'application/json' },
    });
    labels.push(((await r.body.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data[0] as number);
  }
  await pool.close();
  return labels;
}

function assertAllCorrect(results: Outcome[], ref: number[]): void {
  const bad = results.filter((r) => r.status !== 200 || r.label !== ref[r.i]);
  assert.equal(
    bad.length,
    0,
    `${bad.length} of ${results.length} requests failed or were wrong, e.g. ${JSON.stringify(bad.slice(0, 3))}`,
  );
}

function metric(text: string, name: string): number {
  const m = text.match(new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm'));
  return m === null ? 0 : Number(m[1]);
}

describe('local worker replicas', () => {
  for (const workers of [2, 1]) {
    test(`a worker killed mid-load (${workers} worker${workers > 1 ? 's' : ''}): every request answered correctly, the pool back to full size`, async () => {
      const { sg, url } = await startSlogate(
        digitsConfig({ runtime: { workers, profile: { enabled: false } }, routes: ROUTE }),
      );
      try {
        const ref = await reference(url);
        const results = await steady(url, 100, 3000, 1000, async () => {
          // Between two of its batches: terminating a thread inside onnxruntime's native run aborts the process
          // once the run returns (a crash of the binding, not of the worker).
          const victim = sg.runtime.pool.replicas[0] as LocalReplica;
          while (victim.outstanding > 0) await new Promise((r) => setImmediate(r));
          await victim.worker?.terminate();
        });
        assertAllCorrect(results, ref);
        await until(() => sg.runtime.pool.replicas.every((r) => r.state === 'ready'), 20_000, 'replicas ready');
        const m = await sg.metrics.registry.metrics();
        assert.ok(metric(m, 'slogate_replica_restarts_total') >= 1, 'the restart is counted');
        assert.equal(sg.runtime.replicaStats()[0]?.restarts, 1);
      } finally {
        await sg.close();
      }
    });
  }
});

describe('remote runtime nodes', () => {
  test('a remote node killed mid-load: its batches are retried on the other node, it is probed and comes back', async () => {
    const node = digitsRawConfig({
      runtime: { workers: 1, profile: { enabled: false } },
      server: { logLevel: 'warn' },
    });
    const ports = [await freePort(), await freePort()];
    const start = (port: number): Promise<ServerProcess> => startSlogateProcess(node, { command: 'runtime', port });
    let a = await start(ports[0] as number);
    const b = await start(ports[1] as number);
    let sg: Slogate | undefined;
    try {
      const started = await startSlogate(
        digitsConfig({
          runtime: {
            workers: 0,
            healthCheckIntervalMs: 200,
            replicas: ports.map((p) => ({ url: `http://127.0.0.1:${p}`, concurrency: 2 })),
            profile: { enabled: false },
          },
          routes: ROUTE,
        }),
      );
      sg = started.sg;
      const gw = started.sg;
      const url = started.url;
      const ref = await reference(url);
      const results = await steady(url, 100, 3000, 1200, async () => {
        a.child.kill('SIGKILL');
      });
      assertAllCorrect(results, ref);
      await until(() => gw.runtime.replicaStats().some((r) => r.state === 'down'), 5000, 'the killed node marked down');
      a = await start(ports[0] as number);
      await until(
        () => gw.runtime.replicaStats().every((r) => r.state === 'ready'),
        20_000,
        'the node back in the pool',
      );
      assert.ok((gw.runtime.replicaStats()[0]?.restarts ?? 0) >= 1, 'its return is counted');
      assertAllCorrect(await steady(url, 50, 1000, 10_000, async () => {}), ref);
    } finally {
      await sg?.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
