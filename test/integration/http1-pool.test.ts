// The bench's own HTTP/1.1 client against a real node:http server on loopback: answers of every framing, the
// connection limit, connections the server closes, and requests that get no answer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { after, before, test } from 'node:test';
import { encodeRequest, type Http1Failure, Http1Pool } from '../../bench/http1-pool.js';
import type { Http1Response } from '../../bench/http1-response.js';

let server: Server;
let origin: string;
let inFlight = 0;
let peakInFlight = 0;
const sockets = new Set<unknown>();

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    const done = () => inFlight--;
    switch (req.url) {
      case '/echo':
        res.setHeader('x-slogate-error-code', 'echo');
        res.end(`echo:${body}`, done);
        return;
      case '/chunked':
        res.write('one,');
        setTimeout(() => res.end('two', done), 5);
        return;
      case '/close':
        res.setHeader('connection', 'close');
        res.end('bye', done);
        return;
      case '/slow':
        setTimeout(() => res.end('slow', done), 30);
        return;
      case '/never':
        return;
      case '/cut':
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        setTimeout(() => res.destroy(), 5);
        return;
      default:
        res.statusCode = 404;
        res.end('no', done);
    }
  });
}

before(async () => {
  server = createServer(handle);
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

type Outcome = { response: Http1Response } | { error: Http1Failure };

function send(pool: Http1Pool, path: string, body = 'x'): Promise<Outcome> {
  return new Promise((resolve) =>
    pool.dispatch(encodeRequest(origin, 'POST', path, { 'content-type': 'text/plain' }, Buffer.from(body)), {
      onResponse: (response) => resolve({ response }),
      onError: (error) => resolve({ error }),
    }),
  );
}

const text = (o: Outcome) => ('response' in o ? `${o.response.status} ${o.response.body.toString()}` : o.error);

test('answers of each framing come back with their status, headers and body', async () => {
  const pool = new Http1Pool(origin, { connections: 4, timeoutMs: 2000 });
  try {
    const echo = await send(pool, '/echo', 'hi');
    assert.equal(text(echo), '200 echo:hi');
    assert.equal('response' in echo && echo.response.headers['x-slogate-error-code'], 'echo');
    assert.equal(text(await send(pool, '/chunked')), '200 one,two');
    assert.equal(text(await send(pool, '/missing')), '404 no');
  } finally {
    await pool.destroy();
  }
});

test('requests beyond the connection limit wait their turn and all are answered', async () => {
  const pool = new Http1Pool(origin, { connections: 2, timeoutMs: 2000 });
  peakInFlight = 0;
  try {
    const outcomes = await Promise.all(Array.from({ length: 7 }, () => send(pool, '/slow')));
    assert.deepEqual(outcomes.map(text), Array(7).fill('200 slow'));
    assert.equal(peakInFlight, 2, 'never more than two requests at once');
  } finally {
    await pool.destroy();
  }
});

test('open() connects ahead; a connection the server closes is replaced', async () => {
  const pool = new Http1Pool(origin, { connections: 3, timeoutMs: 2000 });
  try {
    sockets.clear();
    await pool.open(3);
    // The server hears of a connection a turn or two after the client has it.
    for (let i = 0; i < 100 && sockets.size < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sockets.size, 3, 'three connections before any request');
    const outcomes = await Promise.all(
      ['/close', '/close', '/close', '/echo', '/close', '/echo'].map((p) => send(pool, p)),
    );
    assert.deepEqual(outcomes.map(text), ['200 bye', '200 bye', '200 bye', '200 echo:x', '200 bye', '200 echo:x']);
  } finally {
    await pool.destroy();
  }
});

test('no answer in time is a timeout; a connection cut mid-answer is a connection error', async () => {
  const pool = new Http1Pool(origin, { connections: 2, timeoutMs: 100 });
  try {
    const [never, cut] = await Promise.all([send(pool, '/never'), send(pool, '/cut')]);
    assert.equal(text(never), 'timeout');
    assert.equal(text(cut), 'connection');
    assert.equal(text(await send(pool, '/echo', 'again')), '200 echo:again', 'the pool goes on after both');
  } finally {
    await pool.destroy();
  }
});

test('a closed port is a connection error, and a closed pool refuses at once', async () => {
  const idle = createServer();
  await new Promise<void>((resolve) => idle.listen(0, '127.0.0.1', resolve));
  const port = (idle.address() as AddressInfo).port;
  await new Promise((resolve) => idle.close(resolve));
  const pool = new Http1Pool(`http://127.0.0.1:${port}`, { connections: 1, timeoutMs: 2000 });
  const refused = await new Promise<Outcome>((resolve) =>
    pool.dispatch(encodeRequest(`http://127.0.0.1:${port}`, 'GET', '/', {}), {
      onResponse: (response) => resolve({ response }),
      onError: (error) => resolve({ error }),
    }),
  );
  assert.equal(text(refused), 'connection');
  await pool.destroy();
  const after = await new Promise<Outcome>((resolve) =>
    pool.dispatch(encodeRequest(origin, 'GET', '/', {}), {
      onResponse: (response) => resolve({ response }),
      onError: (error) => resolve({ error }),
    }),
  );
  assert.equal(text(after), 'connection');
});

test('https: answers over TLS from a server with a certificate the pool is told to trust', async () => {
  // A self-signed certificate for 127.0.0.1 (openssl req -x509 -newkey ec ... -addext subjectAltName=IP:127.0.0.1).
  const cert = readFileSync(new URL('../../../test/fixtures/loopback-cert.pem', import.meta.url));
  const key = readFileSync(new URL('../../../test/fixtures/loopback-key.pem', import.meta.url));
  const tls = createHttpsServer({ cert, key }, handle);
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  const tlsOrigin = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
  const call = (pool: Http1Pool) =>
    new Promise<Outcome>((resolve) =>
      pool.dispatch(encodeRequest(tlsOrigin, 'POST', '/echo', {}, Buffer.from('tls')), {
        onResponse: (response) => resolve({ response }),
        onError: (error) => resolve({ error }),
      }),
    );
  const trusting = new Http1Pool(tlsOrigin, { connections: 1, timeoutMs: 2000, ca: cert });
  const untrusting = new Http1Pool(tlsOrigin, { connections: 1, timeoutMs: 2000 });
  try {
    assert.equal(text(await call(trusting)), '200 echo:tls');
    assert.equal(text(await call(trusting)), '200 echo:tls', 'the connection is kept');
    assert.equal(text(await call(untrusting)), 'connection', 'an unknown certificate is refused');
  } finally {
    await trusting.destroy();
    await untrusting.destroy();
    tls.closeAllConnections();
    await new Promise((resolve) => tls.close(resolve));
  }
});

test('bytes on an idle connection close it: the next request goes out on a new one', async () => {
  let connections = 0;
  const raw = createNetServer((socket) => {
    connections++;
    socket.on('data', (chunk) => {
      for (let i = chunk.indexOf('\r\n\r\n'); i >= 0; i = chunk.indexOf('\r\n\r\n', i + 4)) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => socket.write('junk'), 10);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const rawOrigin = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
  const pool = new Http1Pool(rawOrigin, { connections: 1, timeoutMs: 2000 });
  const get = () =>
    new Promise<Outcome>((resolve) =>
      pool.dispatch(encodeRequest(rawOrigin, 'GET', '/', {}), {
        onResponse: (response) => resolve({ response }),
        onError: (error) => resolve({ error }),
      }),
    );
  try {
    assert.equal(text(await get()), '200 ok');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(text(await get()), '200 ok', 'not read after the stray bytes');
    assert.equal(connections, 2);
  } finally {
    await pool.destroy();
    await new Promise((resolve) => raw.close(resolve));
  }
});
