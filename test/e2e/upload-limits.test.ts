// What a client's upload may hold, over real sockets: a never-finishing upload is cut by the derived request timeout,
// a declared body over the route's derived limit is refused before it is sent, the budget of body bytes in flight
// refuses early, the connection cap closes extra connections, and the largest legal request still passes.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { BODY_OVERHEAD_BYTES, JSON_BYTES_PER_ELEMENT, requestTimeoutMs } from '../../gateway/v2/body-limits.js';
import type { Slogate } from '../../main.js';
import { digitsConfig, startSlogate, until } from '../helpers.js';

const ROUTE_LIMIT = 64 * 784 * JSON_BYTES_PER_ELEMENT + BODY_OVERHEAD_BYTES;
const SERVER = { maxConnections: 8, maxBodyBytesInFlight: 1_000_000, warmup: { requests: 0 } };

interface Raw {
  readonly socket: Socket;
  /** The first line the server answered; undefined if it closed without one or said nothing within 8 s. */
  readonly statusLine: Promise<string | undefined>;
  readonly closedAtMs: Promise<number>;
}

async function rawRequest(url: string, head: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  let got = '';
  const statusLine = new Promise<string | undefined>((resolve) => {
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) resolve(got.split('\r\n')[0]);
    });
    socket.once('close', () => resolve(undefined));
    setTimeout(() => resolve(undefined), 8000).unref();
  });
  // Infinity when still open after 10 s: a test fails rather than hangs.
  const closedAtMs = new Promise<number>((resolve) => {
    socket.once('close', () => resolve(performance.now()));
    setTimeout(() => resolve(Number.POSITIVE_INFINITY), 10_000).unref();
  });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(head);
  return { socket, statusLine, closedAtMs };
}

const connections = (sg: Slogate) =>
  new Promise<number>((resolve, reject) => sg.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

/** Polls `cond` every 10 ms for up to 5 s. */
const post = (contentLength: number) =>
  `POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`;

function rowsJson(rows: number): string {
  return JSON.stringify({
    inputs: [{ name: 'pixels', shape: [rows, 784], datatype: 'FP32', data: new Array(rows * 784).fill(0.123456789) }],
  });
}

describe('upload limits', () => {
  let sg: Slogate;
  let url: string;
  before(async () => {
    ({ sg, url } = await startSlogate(
      digitsConfig({
        server: SERVER,
        routes: { digits: { model: 'digits', slo: { p99Ms: 1000 }, policy: { static: { variant: 'tiny' } } } },
      }),
    ));
  });
  after(async () => {
    await sg.close();
  });

  test('the route limit is derived from the signature and maxBatch, and the largest legal request passes it', async () => {
    assert.ok(ROUTE_LIMIT < 2_000_000, `about 1.7 MB, not the server's 8 MiB (${ROUTE_LIMIT})`);
    const body = rowsJson(64);
    const r = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    await r.body.dump();
    assert.equal(r.statusCode, 200, `64 rows in JSON (${body.length} bytes) are served`);
  });

  test('a declared body over the route limit is refused with 413 before a byte of it is sent', async () => {
    const raw = await rawRequest(url, post(ROUTE_LIMIT + 1));
    assert.match((await raw.statusLine) ?? 'closed', /^HTTP\/1\.1 413/);
    raw.socket.destroy();
  });

  test('a body that never finishes arriving is cut by the request timeout', async () => {
    const timeoutMs = requestTimeoutMs(ROUTE_LIMIT, 1000);
    const t0 = performance.now();
    const raw = await rawRequest(url, `${post(1000)}{"inputs": [`);
    const closedMs = (await raw.closedAtMs) - t0;
    assert.ok(closedMs >= timeoutMs - 50, `not before the timeout (${Math.round(closedMs)} ms)`);
    assert.ok(closedMs < timeoutMs + 2500, `cut within a check interval of ${timeoutMs} ms (${Math.round(closedMs)})`);
  });

  test('bodies over the in-flight budget are refused with 503 before they are read; the budget comes back', async () => {
    const held = await rawRequest(url, `${post(600_000)}{`);
    await new Promise((r) => setTimeout(r, 100));
    const refused = await rawRequest(url, post(600_000));
    assert.match((await refused.statusLine) ?? 'closed', /^HTTP\/1\.1 503/);
    refused.socket.destroy();
    const metrics = await (await request(`${url}/metrics`)).body.text();
    assert.match(metrics, /slogate_shed_total\{route="digits",code="SLOGATE_ERR_OVERLOADED"\} 1/, 'counted as shed');
    assert.doesNotMatch(metrics, /slogate_slo_requests_total\{route="digits",outcome="missed"\} [1-9]/);
    held.socket.destroy();
    await held.closedAtMs;
    await new Promise((r) => setTimeout(r, 100));
    const r = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      body: rowsJson(1),
      headers: { 'content-type': 'application/json' },
    });
    await r.body.dump();
    assert.equal(r.statusCode, 200, 'the held bytes were released when its connection closed');
  });

  test('connections over the cap are closed as they arrive, and counted; the ones below it are served', async () => {
    // Start from no connection at all (earlier tests' keep-alive ones closed), then fill the cap exactly.
    await getGlobalDispatcher().close();
    setGlobalDispatcher(new Agent());
    await until(async () => (await connections(sg)) === 0, 5000, 'no open connections');
    const open: Raw[] = [];
    for (let i = 0; i < SERVER.maxConnections; i++) open.push(await rawRequest(url, ''));
    await until(async () => (await connections(sg)) === SERVER.maxConnections, 5000, 'the connection cap reached');
    const extra = await rawRequest(url, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(await extra.statusLine, undefined, 'closed without an answer');
    open[0]?.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await open[0]?.statusLine) ?? 'closed', /^HTTP\/1\.1 200/);
    for (const o of open) o.socket.destroy();
    await until(async () => (await connections(sg)) === 0, 5000, 'no open connections');
    // /metrics serves one render for up to a second: an earlier scrape's may still be served.
    let metrics = '';
    await until(
      async () => {
        metrics = await (await request(`${url}/metrics`)).body.text();
        return /^slogate_connections_dropped_total 1$/m.test(metrics);
      },
      3000,
      'the dropped connection is counted',
      () => metrics.split('\n').find((l) => l.startsWith('slogate_connections_dropped_total')) ?? 'no such line',
    );
  });
});
