// The floors the benches compare slogate with (bench/peers/bare.ts): over sockets alone and over node:http, the same
// answer bytes for a binary infer request, the metadata the bench reads, 404 and 400; the socket floor reads requests
// that arrive split across packets or several in one.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import { type ServerProcess, startNodeProcess } from '../../bench/server-process.js';
import { evalBody } from '../../bench/v2-requests.js';
import { readEvalSet } from '../../runtime/eval-set.js';
import { DIGITS_DIR, EVAL_PATH, ROOT, wholeAnswers } from '../helpers.js';

const BARE = join(ROOT, 'dist', 'bench', 'peers', 'bare.js');
const request = evalBody(readEvalSet(EVAL_PATH), { name: 'pixels', shape: [-1, 784] }, 0, 1, 'binary');
const INFER = '/v2/models/small/infer';

async function answer(url: string, method: 'GET' | 'POST', path: string, body?: Buffer) {
  const pool = new Pool(url);
  try {
    const r = await pool.request({ method, path, body, headers: body === undefined ? {} : request.headers });
    return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
  } finally {
    await pool.close();
  }
}

/** Writes `chunks` on one connection, 20 ms apart, and resolves with the answers once `count` have arrived. */
function rawExchange(url: string, chunks: Buffer[], count: number): Promise<string[]> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    let text = '';
    const s = connect(Number(port), '127.0.0.1', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const answers = wholeAnswers(text).map((head) => head.slice(0, head.indexOf('\r\n')));
      if (answers.length < count) return;
      s.destroy();
      resolve(answers);
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error(`no ${count} answers in 5 s: ${JSON.stringify(text)}`)), 5000).unref();
  });
}

describe('the bench floors', () => {
  const servers: Record<string, ServerProcess> = {};
  before(async () => {
    for (const server of ['net', 'http'])
      servers[server] = await startNodeProcess(BARE, [
        '--route',
        'small',
        '--variant',
        `small=${join(DIGITS_DIR, 'small.onnx')}`,
        '--server',
        server,
      ]);
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.stop();
  });

  test('over sockets and over node:http: the same answer to an infer request, metadata, 404 and 400', async () => {
    const [net, http] = [servers.net as ServerProcess, servers.http as ServerProcess];
    const a = await answer(net.url, 'POST', INFER, request.body);
    const b = await answer(http.url, 'POST', INFER, request.body);
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, b.body);
    assert.equal(a.headers['inference-header-content-length'], b.headers['inference-header-content-length']);
    assert.match(a.body.toString('latin1'), /"model_name":"small"/);
    const meta = await answer(net.url, 'GET', '/v2/models/small');
    assert.deepEqual(
      JSON.parse(meta.body.toString()),
      JSON.parse((await answer(http.url, 'GET', '/v2/models/small')).body.toString()),
    );
    assert.equal((await answer(net.url, 'POST', '/v2/models/other/infer', request.body)).status, 404);
    const bad = await answer(net.url, 'POST', INFER, Buffer.from('{}'));
    assert.equal(bad.status, 400);
  });

  test('over sockets: two requests in one write, then one split across three, get three answers', async () => {
    const net = servers.net as ServerProcess;
    const head = Buffer.from(
      `POST ${INFER} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\n` +
        `inference-header-content-length: ${request.headers['inference-header-content-length']}\r\n` +
        `content-length: ${request.body.byteLength}\r\n\r\n`,
    );
    const one = Buffer.concat([head, request.body]);
    const split = [one.subarray(0, 10), one.subarray(10, head.byteLength + 7), one.subarray(head.byteLength + 7)];
    const answers = await rawExchange(net.url, [Buffer.concat([one, one]), ...split], 3);
    assert.deepEqual(answers, ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
  });
});
