// The closed loop against a real node:http server on loopback: one request at a time per connection, the request cap
// and the duration as bounds, and every answer or failure counted once.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { closedLoop } from '../../bench/closed-loop.js';

let server: Server;
let origin: string;
let inFlight = 0;
let peakInFlight = 0;
let served = 0;

function handle(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    served++;
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    const done = () => inFlight--;
    if (req.url === '/slow') setTimeout(() => res.end('slow', done), 2);
    else if (req.url === '/refuse') {
      res.statusCode = 503;
      res.end('busy', done);
    } else if (req.url === '/never') done();
    else res.end('ok', done);
  });
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const bodies = [{ body: Buffer.from('{}'), headers: { 'content-type': 'application/json' } }];

test('closed loop: stops at its request cap exactly, never more than one request per connection', async () => {
  served = 0;
  peakInFlight = 0;
  const r = await closedLoop({ url: origin, path: '/slow', bodies, connections: 3, durationS: 30, maxRequests: 40 });
  assert.equal(r.requests, 40);
  assert.equal(served, 40);
  assert.equal(r.errors + r.non2xx, 0);
  assert.ok(peakInFlight <= 3, `peak in flight ${peakInFlight}`);
  assert.ok(r.p50Ms >= 1 && r.p99Ms >= r.p50Ms, JSON.stringify(r));
  assert.ok(r.rps > 0);
});

test('closed loop: stops at its duration; answers outside 2xx are counted', async () => {
  const t0 = performance.now();
  const r = await closedLoop({ url: origin, path: '/refuse', bodies, connections: 2, durationS: 0.3 });
  const ms = performance.now() - t0;
  assert.ok(ms < 3000, `ran ${ms} ms`);
  assert.ok(r.requests > 0);
  assert.equal(r.non2xx, r.requests);
  assert.equal(r.errors, 0);
});

test('closed loop: requests that get no answer count as errors once their timeout passes', async () => {
  const r = await closedLoop({
    url: origin,
    path: '/never',
    bodies,
    connections: 2,
    durationS: 0.2,
    maxRequests: 4,
    timeoutMs: 50,
  });
  assert.equal(r.requests, 0);
  assert.ok(r.errors >= 2 && r.errors <= 4, String(r.errors));
});
