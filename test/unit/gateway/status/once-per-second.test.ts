// The status data's cache on the manual clock: however many readers, one computation per second.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../../core/clock.js';
import { OncePerPeriod } from '../../../../gateway/status/once-per-second.js';

test('a thousand readers within a second share one computation; the next second computes again', () => {
  const clock = new ManualClock(5000);
  const cache = new OncePerPeriod<number>(1000);
  let computed = 0;
  const read = () => cache.get(clock.now(), () => ++computed);
  for (let i = 0; i < 1000; i++) {
    assert.equal(read(), 1);
    clock.advance(0.5);
  }
  assert.equal(computed, 1);
  clock.advance(500);
  assert.equal(read(), 2);
  assert.equal(computed, 2);
});
