// SIGTERM under load, as a load balancer sees it: open-loop requests over keep-alive connections to a real
// `slogate serve` process. Every request gets a complete answer (served, or 503 SLOGATE_ERR_SHUTTING_DOWN with
// Connection: close); none is reset or left unanswered; only connections opened after the listener closed are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pool } from 'undici';
import { type ServeProcess, startServe, writeTinyConfig } from './serve-process.js';

type Child = ServeProcess & { url: string };

const BODY = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0.5) }],
});

interface Outcomes {
  served: number;
  shuttingDown: number;
  refused: number;
  /** Anything else: resets, sockets closed under a request, timeouts, unexpected statuses. */
  failures: string[];
}

/**
 * Open-loop load at `ratePerS` over a keep-alive pool; SIGTERM after `sigtermAfterMs`; the load goes on until the
 * child has exited, then every request is awaited (undici's timeouts bound each one).
 */
async function loadAcrossSigterm(child: Child, ratePerS: number, sigtermAfterMs: number): Promise<Outcomes> {
  const pool = new Pool(child.url, { connections: 4, pipelining: 1, headersTimeout: 5000, bodyTimeout: 5000 });
  const o: Outcomes = { served: 0, shuttingDown: 0, refused: 0, failures: [] };
  let sigtermSent = false;
  let sigAt = 0;
  let exitedAtMs: number | undefined;
  const send = async () => {
    try {
      const r = await pool.request({
        path: '/v2/models/digits/infer',
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/json' },
      });
      await r.body.text();
      const code = r.headers['x-slogate-error-code'];
      if (r.statusCode === 200) o.served++;
      else if (r.statusCode === 503 && code === 'SLOGATE_ERR_SHUTTING_DOWN' && r.headers.connection === 'close')
        o.shuttingDown++;
      else o.failures.push(`status ${r.statusCode} ${code} connection: ${r.headers.connection}`);
    } catch (err) {
      const { code = String(err), syscall } = err as { code?: string; syscall?: string };
      // A connection that fails while connecting carried no request (one still in the listen backlog when the
      // listener closes is reset, not refused). Judged when it fails: a request may wait in the pool before that.
      if (syscall === 'connect' && (code === 'ECONNREFUSED' || code === 'ECONNRESET') && sigtermSent) o.refused++;
      else
        o.failures.push(
          `${code}: ${(err as Error).message} at ${Math.round(performance.now() - sigAt)} ms exit ${exitedAtMs === undefined ? '-' : Math.round(exitedAtMs - sigAt)}`,
        );
    }
  };
  // The pool's connections are open before the load starts: the test is about requests on open connections (one
  // still in the kernel's accept queue when the listener closes is reset by the kernel, whatever the server does).
  await Promise.all(Array.from({ length: 4 }, send));
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  void child.exited.then((e) => {
    exitedAtMs = e.atMs;
  });
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (!sigtermSent && now - t0 >= sigtermAfterMs) {
        sigtermSent = true;
        sigAt = performance.now();
        child.proc.kill('SIGTERM');
      }
      const due = Math.floor(((now - t0) * ratePerS) / 1000) - inflight.length;
      for (let i = 0; i < due; i++) inflight.push(send());
      if (exitedAtMs !== undefined && now - exitedAtMs > 100) {
        clearInterval(tick);
        resolve();
      }
      assert.ok(now - t0 < 20_000, 'the child exits within 20 s of the load starting');
    }, 2);
  });
  await Promise.all(inflight);
  await pool.destroy();
  return o;
}

test('SIGTERM under keep-alive load: no request is reset or left unanswered, only new connections are refused', async (t) => {
  const config = writeTinyConfig();
  const runs: Outcomes[] = [];
  // The race is intermittent (a client writing on an idle socket as the server closes it): several runs catch it.
  // The children start side by side (start-up is most of a run's time), then take their SIGTERM one at a time.
  const started = await Promise.allSettled(Array.from({ length: 5 }, () => startServe(config)));
  const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const [run, child] of children.entries()) {
      const o = await loadAcrossSigterm(child, 400, 300);
      const exit = await child.exited;
      assert.equal(exit.code, 0, `run ${run}: exit status after SIGTERM`);
      runs.push(o);
    }
  } finally {
    for (const c of children) c.kill();
  }
  t.diagnostic(
    `per run [served, 503 shutting down, refused]: ${JSON.stringify(runs.map((o) => [o.served, o.shuttingDown, o.refused]))}`,
  );
  const failures = runs.flatMap((o, i) => o.failures.map((f) => `run ${i}: ${f}`));
  assert.deepEqual(failures, [], `requests without a complete answer:\n  ${failures.join('\n  ')}`);
  for (const [i, o] of runs.entries())
    assert.ok(o.served > 4, `run ${i}: the load was served before SIGTERM (${o.served})`);
  assert.ok(
    runs.some((o) => o.shuttingDown + o.refused > 0),
    'the load went on across the shutdown (some requests met the drain or the closed listener)',
  );
});
