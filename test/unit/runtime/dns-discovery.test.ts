// The discovery loop on the manual clock: interval, changes reported once, the last set kept while DNS fails, retries
// backing off up to the interval, on-demand refreshes joining one in flight, nothing after close.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { DnsDiscovery } from '../../../runtime/dns-discovery.js';
import type { Endpoint } from '../../../runtime/dns-endpoints.js';

const ep = (last: number): Endpoint => ({ host: `127.0.0.${last}`, port: 8000 });
const settle = () => new Promise((r) => setImmediate(r));

function harness(answers: (Endpoint[] | Error)[]) {
  const clock = new ManualClock();
  const changes: string[] = [];
  const errors: string[] = [];
  let calls = 0;
  const d = new DnsDiscovery({
    target: { name: 'runtime.test', port: 8000 },
    clock,
    intervalMs: 5000,
    retryMs: 500,
    onChange: (a, r) => changes.push(`+${a.map((e) => e.host).join(',')} -${r.map((e) => e.host).join(',')}`),
    onError: (e) => errors.push(e.message),
    resolve: async () => {
      const a = answers[Math.min(calls++, answers.length - 1)] as Endpoint[] | Error;
      if (a instanceof Error) throw a;
      return a;
    },
  });
  return { d, clock, changes, errors, calls: () => calls };
}

describe('dns discovery', () => {
  test('reports the first set, then only changes, one resolution per interval', async () => {
    const h = harness([
      [ep(2), ep(3)],
      [ep(2), ep(3)],
      [ep(3), ep(4)],
    ]);
    await h.d.refresh();
    assert.deepEqual(h.changes, ['+127.0.0.2,127.0.0.3 -']);
    h.clock.advance(4999);
    await settle();
    assert.equal(h.calls(), 1);
    h.clock.advance(1);
    await settle();
    assert.equal(h.calls(), 2);
    assert.equal(h.changes.length, 1, 'the same set is no change');
    h.clock.advance(5000);
    await settle();
    assert.deepEqual(h.changes.at(-1), '+127.0.0.4 -127.0.0.2');
    assert.deepEqual(
      h.d.endpoints.map((e) => e.host),
      ['127.0.0.3', '127.0.0.4'],
    );
  });

  test('a failing DNS keeps the last set and retries at 0.5, 1, 2, 4 s, then the interval', async () => {
    const fail = new Error('ETIMEOUT');
    const h = harness([[ep(2)], fail, fail, fail, fail, fail, fail, [ep(2), ep(5)]]);
    await h.d.refresh();
    h.clock.advance(5000);
    await settle();
    const at: number[] = [];
    for (let i = 0; i < 5; i++) {
      const next = h.clock.nextTimerAt() as number;
      at.push(next - h.clock.now());
      h.clock.advanceTo(next);
      await settle();
      assert.deepEqual(
        h.d.endpoints.map((e) => e.host),
        ['127.0.0.2'],
        'kept while failing',
      );
    }
    assert.deepEqual(at, [500, 1000, 2000, 4000, 5000]);
    assert.equal(h.errors.length, 6);
    h.clock.advanceTo(h.clock.nextTimerAt() as number);
    await settle();
    assert.deepEqual(h.changes.at(-1), '+127.0.0.5 -');
  });

  test('refreshes asked while one runs join it; close stops the loop', async () => {
    const h = harness([[ep(2)]]);
    await Promise.all([h.d.refresh(), h.d.refresh(), h.d.refresh()]);
    assert.equal(h.calls(), 1);
    h.d.close();
    assert.equal(h.clock.pendingTimers, 0);
    await h.d.refresh();
    h.clock.advance(60_000);
    await settle();
    assert.equal(h.calls(), 1);
  });
});
