// Inference requests read off the sockets (gateway/v2/direct-sockets.ts), over real connections: requests pipelined
// in one write or split across several are answered in order; a connection goes to node:http at its first other
// request, with the bytes read so far, and keeps serving; a request that does not arrive in time goes there too;
// idle connections close with the server's; a client that leaves does not stop the others.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { evalBody } from '../../bench/v2-requests.js';
import type { Slogate } from '../../main.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, EVAL_PATH, startSlogate, wholeAnswers } from '../helpers.js';

const set = readEvalSet(EVAL_PATH);
const binary = evalBody(set, { name: 'pixels', shape: [-1, 784] }, 5, 1, 'binary');
const INFER = '/v2/models/digits/infer';

function inferRequest(extra = ''): Buffer {
  const head =
    `POST ${INFER} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\n` +
    `inference-header-content-length: ${binary.headers['inference-header-content-length']}\r\n${extra}` +
    `content-length: ${binary.body.byteLength}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), binary.body]);
}
const READY = Buffer.from('GET /v2/health/ready HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');

/** A client connection that collects what it reads. */
async function open(
  url: string,
): Promise<{ socket: Socket; until(n: number): Promise<{ status: number; head: string }[]> }> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  return {
    socket,
    async until(n) {
      for (const stop = Date.now() + 5000; Date.now() < stop; await sleep(5)) {
        const got = wholeAnswers(text).map((head) => ({ status: Number(head.slice(9, 12)), head }));
        if (got.length >= n) return got;
      }
      assert.fail(`no ${n} answers in 5 s: ${JSON.stringify(text.slice(0, 400))}`);
    },
  };
}

describe('inference read off the sockets', () => {
  let sg: Slogate;
  let url: string;
  before(async () => {
    ({ sg, url } = await startSlogate(
      digitsConfig({
        server: { host: '127.0.0.1', port: 0, logLevel: 'silent' },
        routes: { digits: { model: 'digits', slo: { p99Ms: 2000 }, policy: { static: { variant: 'small' } } } },
      }),
    ));
  });
  after(async () => {
    await sg.close();
  });
  const taken = () => sg.app.inferDirect?.taken ?? 0;

  test('requests in one write, and one split across three, are answered in order on the socket path', async () => {
    const c = await open(url);
    const before = taken();
    const one = inferRequest();
    c.socket.write(Buffer.concat([one, one]));
    for (const part of [one.subarray(0, 7), one.subarray(7, 200), one.subarray(200)]) {
      c.socket.write(part);
      await sleep(20);
    }
    const got = await c.until(3);
    assert.deepEqual(
      got.map((a) => a.status),
      [200, 200, 200],
    );
    assert.match(got[0]?.head ?? '', /\r\nx-request-id: req-[0-9a-z]+\r\n/);
    assert.match(got[0]?.head ?? '', /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=72$/);
    assert.equal(taken() - before, 3);
    c.socket.destroy();
  });

  test('a head repeated byte for byte is served as before; one that differs in a byte is read anew', async () => {
    const c = await open(url);
    const before = taken();
    const ids = ['id-aaaa', 'id-aaaa', 'id-aaab', 'id-aaab'];
    c.socket.write(Buffer.concat(ids.map((id) => inferRequest(`x-request-id: ${id}\r\n`))));
    const got = await c.until(4);
    assert.deepEqual(
      got.map((a) => a.head.match(/\r\nx-request-id: (\S+)\r\n/)?.[1]),
      ids,
    );
    assert.equal(taken() - before, 4);
    // A head as long as the last one, with an expectation this path refuses: node:http answers it.
    const expect = 'expect: 100-continueX\r\n';
    assert.equal(expect.length, 'x-request-id: id-aaab\r\n'.length);
    c.socket.write(inferRequest(expect));
    assert.equal((await c.until(5))[4]?.status, 417);
    c.socket.destroy();
  });

  test('at its first other request a connection goes to node:http, with what was read, and goes on', async () => {
    const c = await open(url);
    // An infer request, the readiness probe and another infer request in one write: the last two are node:http's.
    c.socket.write(
      Buffer.concat([inferRequest('x-request-id: first\r\n'), READY, inferRequest('x-request-id: third\r\n')]),
    );
    const got = await c.until(3);
    assert.deepEqual(
      got.map((a) => a.status),
      [200, 200, 200],
    );
    assert.match(got[0]?.head ?? '', /x-request-id: first/);
    assert.match(got[1]?.head ?? '', /content-type: application\/json/);
    assert.match(got[2]?.head ?? '', /x-request-id: third/);
    c.socket.write(inferRequest('transfer-encoding: identity\r\n'));
    assert.equal((await c.until(4))[3]?.status, 400, "node:http's own answer to a framing it refuses");
    c.socket.destroy();
  });

  test('a large request that has not arrived whole goes to node:http at once, and is answered', async () => {
    const rows = evalBody(set, { name: 'pixels', shape: [-1, 784] }, 0, 40, 'json');
    assert.ok(rows.body.byteLength > 64 * 1024);
    const head = `POST ${INFER} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${rows.body.byteLength}\r\n\r\n`;
    const c = await open(url);
    c.socket.write(Buffer.concat([Buffer.from(head), rows.body.subarray(0, 1000)]));
    await sleep(50);
    c.socket.write(rows.body.subarray(1000));
    const got = await c.until(1);
    assert.equal(got[0]?.status, 200);
    c.socket.destroy();
  });

  test('a request that does not arrive in full within a second goes to node:http and is answered', async () => {
    const c = await open(url);
    const one = inferRequest();
    c.socket.write(one.subarray(0, 300));
    await sleep(1300);
    c.socket.write(one.subarray(300));
    const got = await c.until(1);
    assert.equal(got[0]?.status, 200);
    c.socket.destroy();
  });

  test("idle connections close with the server's idle ones; a client gone mid-request leaves the rest served", async () => {
    const c = await open(url);
    c.socket.write(inferRequest());
    await c.until(1);
    const closed = new Promise((r) => c.socket.once('close', r));
    sg.app.server.closeIdleConnections();
    await closed;
    const gone = await open(url);
    gone.socket.write(inferRequest());
    gone.socket.destroy();
    await sleep(300);
    const again = await open(url);
    again.socket.write(inferRequest());
    assert.equal((await again.until(1))[0]?.status, 200);
    again.socket.destroy();
  });
});
