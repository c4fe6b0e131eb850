// Timers on both clocks: a timer fires once when due, a cleared one never does, clearing twice or after it fired is
// harmless, and the real clock's timers never keep the process alive.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, SystemClock } from '../../../core/clock.js';

test('the real clock fires a timer once, never a cleared one, and its timers do not hold the process', async () => {
  const clock = new SystemClock();
  const fired: string[] = [];
  const kept = clock.setTimer(() => fired.push('kept'), 1);
  const cleared = clock.setTimer(() => fired.push('cleared'), 1);
  clock.clearTimer(cleared);
  clock.clearTimer(cleared);
  assert.equal((kept as unknown as NodeJS.Timeout).hasRef(), false, 'a timer must not keep the process alive');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(fired, ['kept']);
  clock.clearTimer(kept);
});

test('the manual clock fires due timers in time order, and a cleared one never', () => {
  const clock = new ManualClock();
  const fired: string[] = [];
  clock.setTimer(() => fired.push('b'), 20);
  const cleared = clock.setTimer(() => fired.push('never'), 5);
  clock.setTimer(() => fired.push('a'), 10);
  clock.clearTimer(cleared);
  clock.advance(15);
  assert.deepEqual(fired, ['a']);
  clock.advance(5);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(clock.pendingTimers, 0);
});
