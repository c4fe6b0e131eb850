// The bench client's HTTP/1.1 response reader: whole responses out of bytes however they are split, each framing a
// server may use, and a clear error for what is not HTTP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Http1ProtocolError, type Http1Response, Http1ResponseReader } from '../../../bench/http1-response.js';

const te = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `bytes` in pieces of `step` bytes; returns every response read. */
function readAll(bytes: Buffer, step: number): Http1Response[] {
  const reader = new Http1ResponseReader();
  const out: Http1Response[] = [];
  for (let i = 0; i < bytes.byteLength; i += step) out.push(...reader.push(bytes.subarray(i, i + step)));
  return out;
}

const SIZED = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Slogate-Error-Code: none\r\n\r\nhello';
const CHUNKED =
  'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';

test('a sized and a chunked response, split at every byte or whole, read the same', () => {
  const bytes = te(SIZED + CHUNKED + SIZED);
  for (const step of [1, 2, 7, bytes.byteLength]) {
    const rs = readAll(bytes, step);
    assert.equal(rs.length, 3, `step ${step}`);
    assert.deepEqual(
      rs.map((r) => [r.status, r.body.toString(), r.keepAlive]),
      [
        [200, 'hello', true],
        [503, 'abc0123456789', true],
        [200, 'hello', true],
      ],
    );
    assert.equal(rs[0]?.headers['x-slogate-error-code'], 'none', 'header names are lower-cased');
  }
});

test('1xx heads are skipped; 204 and Content-Length 0 have no body', () => {
  const rs = readAll(te(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n${SIZED}`), 3);
  assert.deepEqual(
    rs.map((r) => [r.status, r.body.byteLength]),
    [
      [204, 0],
      [200, 5],
    ],
  );
  assert.equal(readAll(te('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'), 1)[0]?.body.byteLength, 0);
});

test('Connection: close and HTTP/1.0 end the connection; HTTP/1.0 keep-alive does not', () => {
  const close = readAll(te('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx'), 4);
  assert.equal(close[0]?.keepAlive, false);
  assert.equal(readAll(te('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx'), 4)[0]?.keepAlive, false);
  const kept = readAll(te('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx'), 4);
  assert.equal(kept[0]?.keepAlive, true);
});

test('a body without a length lasts until the connection ends', () => {
  const reader = new Http1ResponseReader();
  assert.deepEqual(reader.push(te('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ')), []);
  assert.deepEqual(reader.push(te('part two')), []);
  assert.equal(reader.partial, true);
  const last = reader.end();
  assert.equal(last?.body.toString(), 'part one, part two');
  assert.equal(last?.keepAlive, false);
  assert.equal(reader.partial, false);
});

test('a connection that ends inside a sized or chunked response is an error; between responses it is not', () => {
  const sized = new Http1ResponseReader();
  sized.push(te('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
  assert.throws(() => sized.end(), Http1ProtocolError);
  const chunked = new Http1ResponseReader();
  chunked.push(te('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'));
  assert.throws(() => chunked.end(), Http1ProtocolError);
  const head = new Http1ResponseReader();
  head.push(te('HTTP/1.1 200 OK\r\nContent-'));
  assert.throws(() => head.end(), Http1ProtocolError);
  const between = new Http1ResponseReader();
  assert.equal(between.push(te(SIZED)).length, 1);
  assert.equal(between.end(), undefined);
});

test('what is not HTTP/1.x is refused with Http1ProtocolError', () => {
  const bad = [
    'SSH-2.0-OpenSSH\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY',
  ];
  for (const b of bad) assert.throws(() => readAll(te(b), b.length), Http1ProtocolError, JSON.stringify(b));
  assert.throws(() => new Http1ResponseReader().push(Buffer.alloc(70 * 1024, 65)), Http1ProtocolError);
});
