// Pure parts of DNS discovery: endpoint keys and the difference between two resolutions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diffEndpoints, endpointKey } from '../../../runtime/dns-endpoints.js';

describe('dns endpoints', () => {
  test('keys put IPv6 hosts in brackets', () => {
    assert.equal(endpointKey({ host: '127.0.0.2', port: 8000 }), '127.0.0.2:8000');
    assert.equal(endpointKey({ host: '::1', port: 8000 }), '[::1]:8000');
  });

  test('diff: added and removed by host and port, order ignored', () => {
    const a = { host: '127.0.0.2', port: 8000 };
    const b = { host: '127.0.0.3', port: 8000 };
    const b2 = { host: '127.0.0.3', port: 8001 };
    const cases: [string, (typeof a)[], (typeof a)[], (typeof a)[], (typeof a)[]][] = [
      ['nothing changed', [a, b], [b, a], [], []],
      ['one added', [a], [a, b], [b], []],
      ['one removed', [a, b], [b], [], [a]],
      ['a port change is a new endpoint', [b], [b2], [b2], [b]],
      ['from nothing', [], [a], [a], []],
    ];
    for (const [name, before, after, added, removed] of cases)
      assert.deepEqual(diffEndpoints(before, after), { added, removed }, name);
  });
});
