// `slogate serve --processes 2`: two gateway processes share the port over one runtime node process; every answer is
// right, each process serves its own /metrics under a `process` label, and a SIGTERM stops all of them.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test } from 'node:test';
import { startSlogateProcess } from '../../bench/server-process.js';
import { digitsRawConfig } from '../helpers.js';

/** GET on a fresh connection (the primary hands connections to the processes in turn). */
function getFresh(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve(body));
    }).once('error', reject);
  });
}

test('two gateway processes share the port over one runtime node; metrics per process; SIGTERM stops all', async () => {
  const config = digitsRawConfig({
    server: { logLevel: 'warn', warmup: { requests: 0 } },
    runtime: { workers: 1, profile: { enabled: false } },
    routes: { digits: { model: 'digits', slo: { p99Ms: 30_000 }, policy: { static: { variant: 'small' } } } },
  });
  const server = await startSlogateProcess(config, { args: ['--processes', '2'] });
  try {
    const body = JSON.stringify({
      inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }],
    });
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`${server.url}/v2/models/digits/infer`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 200, await r.text());
      assert.ok(r.headers.get('endpoint-load-metrics')?.startsWith('TEXT '), 'the answer carries a load report');
    }
    const seen = new Set<string>();
    for (let i = 0; i < 12 && seen.size < 2; i++) {
      const m = await getFresh(`${server.url}/metrics`);
      const label = m.match(/slogate_replicas\{state="ready",process="(\d+)"\} 1/);
      assert.ok(label !== null, 'one ready replica (the node), labelled with the process');
      seen.add(label[1] as string);
    }
    assert.equal(seen.size, 2, `both processes answered: ${[...seen]}`);
  } finally {
    assert.equal(await server.stop(30_000), 0, 'the primary stops its processes and the node, and exits 0');
  }
});
