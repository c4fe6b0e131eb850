// The shutdown's bound and its bounded waits: the drain and the grace overlap, each later step adds its own wait,
// and a wait gives up at its deadline without settling the work (timers cleared when the work settles first).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { SHUTDOWN_WAIT_MS, shutdownBoundMs, within } from '../../../gateway/shutdown.js';

test('the bound is the longer of the drain and the grace plus every later step', () => {
  const steps = SHUTDOWN_WAIT_MS.connections + SHUTDOWN_WAIT_MS.runtime + SHUTDOWN_WAIT_MS.tracing;
  assert.equal(steps, 4000, 'docs/operations.md states 4 s');
  for (const [drainTimeoutMs, shutdownGraceMs, want] of [
    [10_000, 500, 14_000],
    [300, 2000, 6000],
    [0, 0, 4000],
  ] as const)
    assert.equal(shutdownBoundMs({ drainTimeoutMs, shutdownGraceMs }), want, `${drainTimeoutMs}/${shutdownGraceMs}`);
});

test('within: true when the work settles (resolved or rejected) first, false at the deadline', async () => {
  const clock = new ManualClock();
  const never = new Promise<void>(() => {});
  const late = within(never, 100, clock);
  clock.advance(99);
  const early = within(Promise.reject(new Error('failed')), 100, clock);
  assert.equal(await early, true, 'a failed step counts as finished');
  assert.equal(clock.pendingTimers, 1, "the settled wait's timer is cleared");
  clock.advance(1);
  assert.equal(await late, false);
  assert.equal(clock.pendingTimers, 0);
});
