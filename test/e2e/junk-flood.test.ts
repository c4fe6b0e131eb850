// A flood of requests that never reach a model (the status page's data, /metrics, 404s) against a real server in its
// own process, while a route takes light inference traffic: the flood may slow answers, but the engine must not read
// it as gateway saturation and shed inference (no 429, no admission limit, no gateway-bound decision).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import { DIGITS_DIR, tempDir } from '../helpers.js';
import { startServe } from './serve-process.js';

const LOAD_MS = 5000;
const FLOODERS = 6;

function writeConfig(): string {
  const file = join(tempDir(), 'slogate.yaml');
  const variants = ['tiny', 'small'];
  const raw = {
    // The default share of the loop: cached answers are still charged their parsing and writing, so the flood reaches
    // it, and the refusals are part of what is checked.
    server: { host: '127.0.0.1', port: 0, logLevel: 'warn', requestLog: false },
    runtime: { workers: 1, profile: { enabled: false } },
    models: {
      digits: {
        maxBatch: 64,
        variants: Object.fromEntries(variants.map((v) => [v, { path: join(DIGITS_DIR, `${v}.onnx`) }])),
      },
    },
    // The bundled route's target: the flood's delays breach it; what matters is what the engine blames.
    routes: { digits: { model: 'digits', slo: { p99Ms: 25 } } },
  };
  writeFileSync(file, stringify(raw));
  return file;
}

const body = JSON.stringify({
  inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: Array(784).fill(0.5) }],
});

test('a flood of non-inference requests makes the engine shed no inference', { timeout: 60_000 }, async () => {
  const server = await startServe(writeConfig());
  try {
    const endAt = Date.now() + LOAD_MS;
    const statuses = new Map<number, number>();
    const legit = (async () => {
      while (Date.now() < endAt) {
        const res = await request(`${server.url}/v2/models/digits/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        await sleep(10);
      }
    })();
    let flooded = 0;
    let limited429 = 0;
    const paths = ['/status/data', '/metrics', '/no/such/endpoint'];
    const flood = Array.from({ length: FLOODERS }, async (_, i) => {
      const path = paths[i % paths.length] as string;
      while (Date.now() < endAt) {
        const res = await request(`${server.url}${path}`);
        await res.body.dump();
        flooded++;
        if (res.headers['x-slogate-error-code'] === 'SLOGATE_ERR_OTHER_WORK_LIMITED') limited429++;
      }
    });
    await Promise.all([legit, ...flood]);
    // The flood used up other work's share of the loop: a scrape is served again once the share has decayed.
    let metrics = '';
    for (const until = Date.now() + 5000; Date.now() < until; await sleep(100)) {
      const res = await request(`${server.url}/metrics`);
      metrics = await res.body.text();
      if (res.statusCode === 200) break;
    }
    const history = (await (await request(`${server.url}/admin/decisions`)).body.json()) as {
      decisions: { reason: string; decision: { admissionRps: number | null } }[];
    };
    assert.ok(flooded > 100, `the flood ran (${flooded} requests)`);
    assert.ok(
      limited429 > 0,
      `the flood went over its share of the loop and was refused (${limited429} of ${flooded})`,
    );
    assert.equal(statuses.get(429) ?? 0, 0, `inference shed: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.match(metrics, /^slogate_slo_requests_total\{route="digits",outcome="shed"\} 0$/m);
    const limitedDecisions = history.decisions.filter(
      (d) => d.decision.admissionRps !== null || /gateway saturated/.test(d.reason),
    );
    assert.deepEqual(
      limitedDecisions.map((d) => d.reason),
      [],
      'no admission limit, no gateway-bound decision',
    );
  } finally {
    server.kill();
    await server.exited;
  }
});
