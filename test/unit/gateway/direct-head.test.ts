// The request heads the sockets' reader takes (gateway/v2/direct-sockets.ts): a strict subset of HTTP/1.1, and
// anything outside it, or ambiguous in its framing, left to node:http.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDirectHead } from '../../../gateway/v2/direct-sockets.js';

const head = (...lines: string[]) => lines.join('\r\n');
const ok = [
  'POST /v2/models/digits/infer HTTP/1.1',
  'host: 127.0.0.1:8000',
  'content-type: application/octet-stream',
  'inference-header-content-length: 147',
  'content-length: 3283',
];

test('an ordinary infer request: its URL, length, type, JSON header length and request id', () => {
  assert.deepEqual(parseDirectHead(head(...ok, 'X-Request-Id: abc', 'Connection: Keep-Alive')), {
    url: '/v2/models/digits/infer',
    bodyBytes: 3283,
    contentType: 'application/octet-stream',
    jsonLength: '147',
    requestId: 'abc',
  });
  const json = parseDirectHead(head('POST /v2/models/digits/infer HTTP/1.1', 'Host: x', 'Content-Length:  12 '));
  assert.deepEqual(json, {
    url: '/v2/models/digits/infer',
    bodyBytes: 12,
    contentType: undefined,
    jsonLength: undefined,
    requestId: undefined,
  });
});

test('other methods, versions, targets and framings are left to node:http', () => {
  const cases: Record<string, string> = {
    GET: head('GET /v2/models/digits HTTP/1.1', 'host: x'),
    'HTTP/1.0': head('POST /v2/models/digits/infer HTTP/1.0', 'host: x', 'content-length: 3'),
    'absolute form': head('POST http://x/v2/models/digits/infer HTTP/1.1', 'host: x', 'content-length: 3'),
    'no host': head('POST /v2/models/digits/infer HTTP/1.1', 'content-length: 3'),
    'no length': head('POST /v2/models/digits/infer HTTP/1.1', 'host: x'),
    'zero length': head('POST /v2/models/digits/infer HTTP/1.1', 'host: x', 'content-length: 0'),
    'two lengths': head(...ok, 'content-length: 3283'),
    'length with a sign': head('POST /a HTTP/1.1', 'host: x', 'content-length: +3'),
    'length too long': head('POST /a HTTP/1.1', 'host: x', `content-length: ${'9'.repeat(16)}`),
    chunked: head(...ok, 'transfer-encoding: chunked'),
    expect: head(...ok, 'expect: 100-continue'),
    upgrade: head(...ok, 'upgrade: h2c'),
    'connection close': head(...ok, 'connection: close'),
    'two content types': head(...ok, 'content-type: application/json'),
    'folded line': head(...ok, ' continued'),
    'space before colon': head(...ok, 'x-a : b'),
    'control character': head(...ok, 'x-a: b\u0001'),
    'no colon': head(...ok, 'garbage'),
    'space in path': head('POST /v2/models/a b/infer HTTP/1.1', 'host: x', 'content-length: 3'),
  };
  for (const [name, text] of Object.entries(cases)) assert.equal(parseDirectHead(text), undefined, name);
});
