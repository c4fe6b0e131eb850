import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { backoffMs, Respawner } from '../../../runtime/respawn.js';
import { flush } from './fake-replica.js';

describe('backoffMs: immediate first attempt, then doubling from initialMs, capped at maxMs', () => {
  const o = { initialMs: 500, maxMs: 30_000 };
  const cases: [number, number][] = [
    [1, 0],
    [2, 500],
    [3, 1000],
    [4, 2000],
    [7, 16_000],
    [8, 30_000],
    [9, 30_000],
    [1000, 30_000],
  ];
  for (const [attempt, want] of cases)
    test(`attempt ${attempt}: ${want} ms`, () => assert.equal(backoffMs(attempt, o), want));
  test('huge attempt numbers stay finite', () => assert.equal(backoffMs(Number.MAX_SAFE_INTEGER, o), 30_000));
});

/** A respawner whose attempts fail until `succeedAt` (1-based; Infinity: never), recording when each started. */
function setup(succeedAt: number) {
  const clock = new ManualClock(0);
  const startedAt: number[] = [];
  const failures: string[] = [];
  let succeeded = 0;
  const r = new Respawner({
    clock,
    initialMs: 100,
    maxMs: 1000,
    attempt: async () => {
      startedAt.push(clock.now());
      if (startedAt.length < succeedAt) throw new Error(`load failed ${startedAt.length}`);
      succeeded++;
    },
    onFailure: (err, attempt, nextInMs) => failures.push(`${attempt}: ${(err as Error).message}, next in ${nextInMs}`),
  });
  /** Advances the clock in small steps, letting each attempt's promise settle. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      await flush();
    }
  };
  return { clock, r, startedAt, failures, run, succeeded: () => succeeded };
}

describe('Respawner on the manual clock', () => {
  test('the first attempt runs at once; a success stops there', async () => {
    const s = setup(1);
    s.r.start();
    await flush();
    assert.deepEqual(s.startedAt, [0]);
    assert.equal(s.succeeded(), 1);
    assert.equal(s.r.active, false);
    assert.equal(s.clock.pendingTimers, 0);
  });

  test('failed attempts are spaced 100, 200, 400, 800, then 1000 ms (capped), and go on for ever', async () => {
    const s = setup(Number.POSITIVE_INFINITY);
    s.r.start();
    await flush();
    await s.run(10_000);
    const gaps = s.startedAt.slice(1).map((t, i) => t - (s.startedAt[i] as number));
    assert.deepEqual(gaps.slice(0, 6), [100, 200, 400, 800, 1000, 1000]);
    assert.ok(
      gaps.every((g) => g <= 1000),
      `no gap above the cap: ${gaps}`,
    );
    assert.ok(s.startedAt.length >= 12, `still trying after 10 s: ${s.startedAt.length} attempts`);
    assert.equal(s.r.active, true);
    assert.match(s.failures[0] ?? '', /^1: load failed 1, next in 100$/);
    assert.match(s.failures[4] ?? '', /^5: load failed 5, next in 1000$/);
  });

  test('a success after failures ends the attempts; after maxMs up, the next start is at once and from the start', async () => {
    const s = setup(3);
    s.r.start();
    await flush();
    await s.run(1000);
    assert.deepEqual(s.startedAt, [0, 100, 300]);
    assert.equal(s.r.active, false);
    await s.run(1000);
    s.r.start();
    await flush();
    assert.equal(s.startedAt.at(-1), s.clock.now(), 'immediate');
    assert.equal(s.r.attempts, 1, 'counted from 1 again');
  });

  test('a replacement that fails again within maxMs of its success (a crash loop) continues the backoff', async () => {
    const s = setup(3);
    s.r.start();
    await flush();
    await s.run(400);
    assert.deepEqual(s.startedAt, [0, 100, 300]);
    await s.run(100);
    s.r.start();
    await flush();
    assert.equal(s.startedAt.length, 3, 'not at once');
    await s.run(400);
    assert.deepEqual(s.startedAt.slice(3), [900], 'the next backoff step (400 ms) after the start at 500 ms');
  });

  test('start() while attempts are under way does not start a second series', async () => {
    const s = setup(Number.POSITIVE_INFINITY);
    s.r.start();
    s.r.start();
    await flush();
    s.r.start();
    await s.run(150);
    assert.deepEqual(s.startedAt, [0, 100]);
  });

  test('stop() cancels the scheduled attempt and any later start()', async () => {
    const s = setup(Number.POSITIVE_INFINITY);
    s.r.start();
    await flush();
    s.r.stop();
    assert.equal(s.clock.pendingTimers, 0);
    s.r.start();
    await s.run(5000);
    assert.deepEqual(s.startedAt, [0]);
  });
});
