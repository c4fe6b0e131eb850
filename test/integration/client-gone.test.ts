// A client that leaves while its request waits for a replica: the request is dropped from the queue (never run),
// counted as cancelled, and its body bytes return to the in-flight budget; the request ahead of it is still answered.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { Slogate } from '../../main.js';
import { digitsConfig, ROOT, startSlogate, until } from '../helpers.js';

const SPIN = join(ROOT, 'test', 'fixtures', 'spin.onnx');
/** Iterations of the spin model (about 1-4 us each): long enough to keep the only worker busy meanwhile. */
const BUSY_N = 150_000;
const spinBody = (n: number) => JSON.stringify({ inputs: [{ name: 'n', shape: [1], datatype: 'INT64', data: [n] }] });

let sg: Slogate;
let url: string;

before(async () => {
  ({ sg, url } = await startSlogate(
    digitsConfig({
      server: { host: '127.0.0.1', port: 0, logLevel: 'silent' },
      models: { spin: { maxBatch: 1, variants: { spin: { path: SPIN } } } },
      // A deadline far away: nothing but the client's leaving may drop the waiting request.
      routes: { spin: { model: 'spin', slo: { p99Ms: 10_000 }, policy: { static: { variant: 'spin' } } } },
    }),
  ));
});

after(async () => {
  await sg.close();
});

async function metrics(): Promise<string> {
  return (await request(`${url}/metrics`)).body.text();
}

/** Sends a whole spin request on a raw socket; resolves with the socket once it is written. */
function rawSpin(n: number): Promise<ReturnType<typeof connect>> {
  const { port } = new URL(url);
  const body = spinBody(n);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write(
        `POST /v2/models/spin/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        () => resolve(s),
      );
    });
    s.on('error', () => {});
  });
}

test('a queued request whose client leaves is dropped as cancelled; the one running is answered', async () => {
  const busy = request(`${url}/v2/models/spin/infer`, {
    method: 'POST',
    body: spinBody(BUSY_N),
    headers: { 'content-type': 'application/json' },
  });
  await until(() => sg.runtime.pool.outstanding === 1, 5000, 'the busy request running');
  const leaving = await rawSpin(7);
  await until(() => sg.runtime.scheduler.totalQueuedRows() === 1, 5000, 'the second request queued');
  leaving.destroy();
  await until(() => sg.runtime.scheduler.totalQueuedRows() === 0, 5000, 'the queue emptied by the cancellation');
  assert.equal(sg.runtime.pool.outstanding, 1, 'dropped from the queue while the first still ran');
  const r = await busy;
  const body = (await r.body.json()) as { outputs?: unknown[] };
  assert.equal(r.statusCode, 200);
  assert.ok(Array.isArray(body.outputs));
  assert.match(await metrics(), /slogate_shed_total\{route="spin",code="SLOGATE_ERR_CANCELLED"\} 1/);
});

test('a client that leaves after its answer cancels nothing', async () => {
  const before = await metrics();
  const s = await rawSpin(3);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\r\n\r\n')) resolve(text);
    });
  });
  s.destroy();
  assert.match(answer, /^HTTP\/1\.1 200/);
  await new Promise((r) => setTimeout(r, 50));
  const cancelled = (m: string) => /code="SLOGATE_ERR_CANCELLED"\} (\d+)/.exec(m)?.[1];
  assert.equal(cancelled(await metrics()), cancelled(before));
});
