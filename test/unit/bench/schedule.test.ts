import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arrivalTimes,
  buildSchedule,
  type LoadSpec,
  mmppMeanRate,
  mmppSegments,
  parsePattern,
  parseTrace,
  type ScheduleOptions,
  stepSegments,
} from '../../../bench/schedule.js';
import { mulberry32 } from '../../../core/prng.js';

const opts = (o: Partial<ScheduleOptions> = {}): ScheduleOptions => ({
  durationMs: 10_000,
  maxRequests: 1_000_000,
  seed: 42,
  route: 'digits',
  deadlineMs: () => 25,
  ...o,
});

const countIn = (at: Float64Array, from: number, to: number) => at.filter((t) => t >= from && t < to).length;

test('uniform arrivals: 100/s for 10 s is exactly 1000 requests, 10 ms apart from 0', () => {
  const s = buildSchedule({ kind: 'constant', rate: 100, arrivals: 'uniform' }, opts());
  assert.equal(s.atMs.length, 1000);
  s.atMs.forEach((t, i) => {
    assert.ok(Math.abs(t - 10 * i) < 1e-9, `arrival ${i} at ${t}`);
  });
  assert.deepEqual([...new Set(s.deadlineMs)], [25]);
  assert.deepEqual(s.routes, ['digits']);
});

test('uniform arrivals at a rate that does not divide the second: 3/s for 1 s at 0, 333.3, 666.7 ms', () => {
  const s = buildSchedule({ kind: 'constant', rate: 3, arrivals: 'uniform' }, opts({ durationMs: 1000 }));
  assert.deepEqual(
    [...s.atMs].map((t) => Math.round(t * 10) / 10),
    [0, 333.3, 666.7],
  );
});

test('poisson arrivals: the same seed gives the same schedule, another seed another one', () => {
  const load: LoadSpec = { kind: 'constant', rate: 200, arrivals: 'poisson' };
  const a = buildSchedule(load, opts());
  const b = buildSchedule(load, opts());
  const c = buildSchedule(load, opts({ seed: 43 }));
  assert.deepEqual(a.atMs, b.atMs);
  assert.notDeepEqual(a.atMs, c.atMs);
});

test('poisson arrivals: count and gaps match the rate (200/s over 100 s, within 4 sigma)', () => {
  const s = buildSchedule({ kind: 'constant', rate: 200, arrivals: 'poisson' }, opts({ durationMs: 100_000 }));
  const n = s.atMs.length;
  assert.ok(Math.abs(n - 20_000) < 4 * Math.sqrt(20_000), `count ${n}`);
  for (let i = 1; i < n; i++) assert.ok((s.atMs[i] as number) >= (s.atMs[i - 1] as number));
  assert.ok((s.atMs[0] as number) >= 0 && (s.atMs[n - 1] as number) < 100_000);
  // Exponential gaps: the coefficient of variation is 1 (uniform would be 0).
  const gaps = Array.from({ length: n - 1 }, (_, i) => (s.atMs[i + 1] as number) - (s.atMs[i] as number));
  const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((x, g) => x + (g - mean) ** 2, 0) / gaps.length);
  assert.ok(Math.abs(mean - 5) < 0.1, `mean gap ${mean}`);
  assert.ok(Math.abs(sd / mean - 1) < 0.05, `cv ${sd / mean}`);
});

test('the request cap keeps the first N arrivals', () => {
  const full = buildSchedule({ kind: 'constant', rate: 500, arrivals: 'poisson' }, opts());
  const capped = buildSchedule({ kind: 'constant', rate: 500, arrivals: 'poisson' }, opts({ maxRequests: 123 }));
  assert.equal(capped.atMs.length, 123);
  assert.deepEqual(capped.atMs, full.atMs.slice(0, 123));
});

test('step pattern, uniform: exact counts per phase (10/s, 100/s from 2 s for 3 s, then 10/s)', () => {
  const s = buildSchedule(parsePattern('step:10,100,2,3', 'uniform'), opts());
  assert.equal(countIn(s.atMs, 0, 2000), 20);
  assert.equal(countIn(s.atMs, 2000, 5000), 300);
  assert.equal(countIn(s.atMs, 5000, 10_000), 50);
  assert.equal(s.atMs.length, 370);
});

test('step pattern, poisson: each phase near its rate', () => {
  const s = buildSchedule(parsePattern('step:100,1000,20,20', 'poisson'), opts({ durationMs: 60_000 }));
  const low = countIn(s.atMs, 0, 20_000) + countIn(s.atMs, 40_000, 60_000);
  const high = countIn(s.atMs, 20_000, 40_000);
  assert.ok(Math.abs(low - 4000) < 4 * Math.sqrt(4000), `low ${low}`);
  assert.ok(Math.abs(high - 20_000) < 4 * Math.sqrt(20_000), `high ${high}`);
});

test('step segments are clipped to the duration', () => {
  assert.deepEqual(stepSegments(1, 2, 5, 10, 8000), [
    { startMs: 0, endMs: 5000, rate: 1 },
    { startMs: 5000, endMs: 8000, rate: 2 },
  ]);
});

test('MMPP-2: alternating contiguous states from low; time share and mean rate match the dwell means', () => {
  const rand = mulberry32(3);
  const segs = mmppSegments(rand, 10, 50, 5, 1, 20_000_000);
  assert.equal(segs[0]?.rate, 10);
  segs.forEach((s, i) => {
    if (i > 0) assert.equal(s.startMs, segs[i - 1]?.endMs);
    assert.equal(s.rate, i % 2 === 0 ? 10 : 50);
  });
  assert.equal(segs.at(-1)?.endMs, 20_000_000);
  const high = segs.filter((s) => s.rate === 50).reduce((a, s) => a + s.endMs - s.startMs, 0);
  assert.ok(Math.abs(high / 20_000_000 - 1 / 6) < 0.01, `high share ${high / 20_000_000}`);
  assert.equal(mmppMeanRate(10, 50, 5, 1), (10 * 5 + 50) / 6);
});

test('bursty schedule: seeded, and its count near the MMPP mean rate', () => {
  const load = parsePattern('bursty:20,100,5,1', 'poisson');
  const a = buildSchedule(load, opts({ durationMs: 600_000 }));
  const b = buildSchedule(load, opts({ durationMs: 600_000 }));
  assert.deepEqual(a.atMs, b.atMs);
  const rate = a.atMs.length / 600;
  assert.ok(Math.abs(rate / mmppMeanRate(20, 100, 5, 1) - 1) < 0.1, `rate ${rate}`);
});

test('arrivalTimes skips idle segments and continues after them', () => {
  const t = arrivalTimes(
    [
      { startMs: 0, endMs: 1000, rate: 2 },
      { startMs: 1000, endMs: 2000, rate: 0 },
      { startMs: 2000, endMs: 3000, rate: 2 },
    ],
    'uniform',
    mulberry32(1),
    100,
  );
  assert.deepEqual([...t], [0, 500, 2000, 2500]);
});

test('clumped pattern: Poisson LOW throughout, the rest of HIGH in clumps of simultaneous arrivals, then LOW', () => {
  const s = buildSchedule(parsePattern('clumped:100,700,2,3,100', 'poisson'), opts());
  const during = s.atMs.filter((t) => t >= 2000 && t < 5000);
  const clumps = new Map<number, number>();
  for (const t of during) clumps.set(t, (clumps.get(t) ?? 0) + 1);
  const sizes = [...clumps.values()].filter((n) => n > 1);
  assert.ok(sizes.length > 10 && sizes.length < 60, `${sizes.length} clumps in 3 s at a mean gap of 100 ms`);
  assert.ok(Math.abs(during.length - 2100) < 400, `${during.length} arrivals in the 3 s at 700/s`);
  assert.ok(Math.abs(countIn(s.atMs, 5000, 10_000) - 500) < 100, 'LOW again after it');
  assert.ok(
    s.atMs.every((t, i) => i === 0 || t >= (s.atMs[i - 1] as number)),
    'ascending',
  );
  assert.deepEqual(s.atMs, buildSchedule(parsePattern('clumped:100,700,2,3,100', 'poisson'), opts()).atMs);
});

test('parsePattern rejects malformed specs', () => {
  assert.throws(() => parsePattern('clumped:1,2,3,4', 'poisson'), /5 numbers/);
  assert.throws(() => parsePattern('step:1,2,3', 'poisson'), /4 numbers/);
  assert.throws(() => parsePattern('bursty:1,2,0,1', 'poisson'), /MEANLOW_S must be a positive number/);
  assert.throws(() => parsePattern('wave:1', 'poisson'), /unknown --pattern/);
  assert.throws(() => parsePattern('step:a,2,3,4', 'poisson'), /LOW/);
});

test('parseTrace: header, comments and blank lines skipped; sorted; optional deadline', () => {
  const rows = parseTrace('arrival_ms,route,deadline_ms\n# a comment\n\n20,b\n5,a,50\n10,a,\n');
  assert.deepEqual(rows, [
    { arrivalMs: 5, route: 'a', deadlineMs: 50 },
    { arrivalMs: 10, route: 'a', deadlineMs: undefined },
    { arrivalMs: 20, route: 'b', deadlineMs: undefined },
  ]);
});

test('parseTrace names the line of a bad row', () => {
  assert.throws(() => parseTrace('0,a\nx1,b\n', 't.csv'), /t\.csv:2: arrival_ms/);
  assert.throws(() => parseTrace('0,a\n1\n', 't.csv'), /t\.csv:2: a route is required/);
  assert.throws(() => parseTrace('0,a,-3\n', 't.csv'), /t\.csv:1: deadline_ms/);
});

test('trace schedule: routes indexed in order of appearance, default deadlines per route, cut at duration and cap', () => {
  const rows = parseTrace('0,a\n5,b,7\n10,a\n20000,a\n');
  const s = buildSchedule({ kind: 'trace', rows }, opts({ deadlineMs: (r) => (r === 'a' ? 25 : 99) }));
  assert.deepEqual(s.routes, ['a', 'b']);
  assert.deepEqual([...s.atMs], [0, 5, 10]);
  assert.deepEqual([...s.route], [0, 1, 0]);
  assert.deepEqual([...s.deadlineMs], [25, 7, 25]);
  assert.equal(s.durationMs, 11);
  const capped = buildSchedule({ kind: 'trace', rows }, opts({ maxRequests: 2 }));
  assert.equal(capped.atMs.length, 2);
});

test('seeded schedules keep their arrivals: pinned counts and times for seed 7 (compares replay across versions)', () => {
  const poisson = buildSchedule({ kind: 'constant', rate: 200, arrivals: 'poisson' }, opts({ seed: 7 }));
  assert.equal(poisson.atMs.length, 2010);
  assert.deepEqual(
    Array.from(poisson.atMs.slice(0, 4)),
    [0.0588689651742131, 0.3786731124064466, 19.219938809425603, 25.223640742407447],
  );
  assert.equal(poisson.atMs.at(-1), 9994.029584177157);
  const bursty = buildSchedule({ kind: 'bursty', low: 100, high: 900, meanLowS: 2, meanHighS: 1 }, opts({ seed: 7 }));
  assert.equal(bursty.atMs.length, 2025);
  assert.deepEqual(
    Array.from(bursty.atMs.slice(0, 4)),
    [5.200710446799532, 11.478662210438047, 14.222046320074563, 22.281300022704674],
  );
  assert.equal(bursty.atMs.at(-1), 9994.214048527156);
});
