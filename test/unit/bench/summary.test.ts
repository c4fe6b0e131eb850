import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_CODES, RunRecords } from '../../../bench/records.js';
import { classify, type Outcome, summarize } from '../../../bench/summary.js';

/** The histogram reports a bucket midpoint: within 0.4% of the recorded value. */
const near = (got: number | null | undefined, want: number) =>
  assert.ok(got !== null && got !== undefined && Math.abs(got - want) <= want * 0.004, `${got} vs ${want}`);

interface Req {
  at: number;
  status: number;
  latency?: number;
  code?: string;
  variant?: string;
  correct?: number;
  route?: number;
  lag?: number;
  deadline?: number;
}

function records(reqs: readonly Req[], routes: readonly string[] = ['digits']): RunRecords {
  const rec = new RunRecords(reqs.length, routes);
  for (const r of reqs) {
    const i = rec.push(r.at, r.route ?? 0, r.deadline ?? 100);
    if (r.lag !== undefined) rec.lagMs[i] = r.lag;
    if (r.status === 0) rec.noAnswer(i, r.code ?? CLIENT_CODES.timeout);
    else rec.answer(i, r.status, r.latency ?? Number.NaN, r.code, r.variant, r.correct ?? -1);
  }
  return rec;
}

// Ten requests over 2 s with a 100 ms deadline, one of every kind (hand-computed below).
const TEN: Req[] = [
  { at: 0, status: 200, latency: 10, variant: 'large', correct: 1 },
  { at: 100, status: 200, latency: 20, variant: 'large', correct: 1 },
  { at: 200, status: 200, latency: 30, variant: 'tiny', correct: 0 },
  { at: 300, status: 200, latency: 40, variant: 'large', correct: 1 },
  { at: 400, status: 200, latency: 150, variant: 'large', correct: 1 }, // late
  { at: 1000, status: 429, latency: 1, code: 'SLOGATE_ERR_SHED' },
  { at: 1100, status: 429, latency: 1, code: 'SLOGATE_ERR_SHED' },
  { at: 1200, status: 503, latency: 5, code: 'SLOGATE_ERR_DEADLINE_UNREACHABLE' },
  { at: 1300, status: 500, latency: 3, code: 'SLOGATE_ERR_INFERENCE_FAILED' },
  { at: 1400, status: 0, code: CLIENT_CODES.timeout },
];

test('classification of answers: 200 completes; 429 and load 503s are rejected; queue expiry is dropped; the rest failed', () => {
  const cases: [number, string, Outcome][] = [
    [200, '', 'completed'],
    [429, 'SLOGATE_ERR_SHED', 'rejected'],
    [429, '', 'rejected'],
    [503, 'SLOGATE_ERR_QUEUE_FULL', 'rejected'],
    [503, 'SLOGATE_ERR_NOT_READY', 'rejected'],
    [503, 'SLOGATE_ERR_SHUTTING_DOWN', 'rejected'],
    [503, '', 'rejected'],
    [503, 'SLOGATE_ERR_DEADLINE_UNREACHABLE', 'dropped'],
    [503, 'SLOGATE_ERR_REPLICA_UNAVAILABLE', 'failed'],
    [500, 'SLOGATE_ERR_INTERNAL', 'failed'],
    [400, 'SLOGATE_ERR_INVALID_TENSOR', 'failed'],
    [0, CLIENT_CODES.timeout, 'failed'],
  ];
  for (const [status, code, want] of cases) assert.equal(classify(status, code), want, `${status} ${code}`);
});

test('counts add up: offered = completed + shed + failed; admitted = offered - rejected', () => {
  const s = summarize(records(TEN), { durationMs: 2000 }).overall;
  assert.equal(s.offered, 10);
  assert.equal(s.completed, 5);
  assert.equal(s.onTime, 4);
  assert.equal(s.late, 1);
  assert.equal(s.shed, 3);
  assert.equal(s.rejected, 2);
  assert.equal(s.dropped, 1);
  assert.equal(s.failed, 2);
  assert.equal(s.admitted, 8);
  assert.equal(s.offered, s.completed + s.shed + s.failed);
  assert.deepEqual(s.shedBy, { '429 SLOGATE_ERR_SHED': 2, '503 SLOGATE_ERR_DEADLINE_UNREACHABLE': 1 });
  assert.deepEqual(s.failedBy, { '0 CLIENT_TIMEOUT': 1, '500 SLOGATE_ERR_INFERENCE_FAILED': 1 });
});

test('rates, attainment and accuracy on the hand-computed case', () => {
  const s = summarize(records(TEN), { durationMs: 2000 }).overall;
  assert.equal(s.offeredRps, 5);
  assert.equal(s.throughputRps, 2.5);
  assert.equal(s.goodputRps, 2);
  assert.equal(s.attainment.overOffered, 0.4); // 4 on time / 10 offered
  assert.equal(s.attainment.overAdmitted, 0.5); // 4 on time / 8 admitted
  assert.equal(s.accuracy.scored, 5);
  assert.equal(s.accuracy.correct, 4);
  assert.equal(s.accuracy.correctOnTime, 3);
  assert.equal(s.accuracy.answerAccuracy, 0.8);
  assert.equal(s.accuracy.effectiveAccuracy, 0.3); // 3 correct on-time answers / 10 offered
  assert.deepEqual(s.variants, { large: 4, tiny: 1 });
  assert.equal(s.deadlineMs, 100);
});

test('latency quantiles cover completed requests only (nearest rank over 10, 20, 30, 40, 150 ms)', () => {
  const l = summarize(records(TEN), { durationMs: 2000 }).overall.latency;
  assert.equal(l.count, 5);
  near(l.p50Ms, 30);
  assert.equal(l.p90Ms, 150);
  assert.equal(l.p99Ms, 150);
  assert.equal(l.maxMs, 150);
  assert.equal(l.meanMs, 50);
});

test('an answer exactly at its deadline is on time', () => {
  const s = summarize(records([{ at: 0, status: 200, latency: 100, deadline: 100 }]), { durationMs: 1000 }).overall;
  assert.equal(s.onTime, 1);
});

test('effective accuracy is withheld when some answers could not be scored', () => {
  const s = summarize(
    records([
      { at: 0, status: 200, latency: 1, correct: 1 },
      { at: 1, status: 200, latency: 1, correct: -1 },
    ]),
    { durationMs: 1000 },
  ).overall;
  assert.equal(s.accuracy.answerAccuracy, 1);
  assert.equal(s.accuracy.effectiveAccuracy, null);
});

test('nothing offered: ratios are null, not NaN', () => {
  const s = summarize(records([]), { durationMs: 1000 });
  assert.equal(s.overall.attainment.overOffered, null);
  assert.equal(s.overall.latency.p99Ms, null);
  assert.equal(s.timeline.length, 1);
});

test('per-route summaries split the records; the overall row sums them', () => {
  const s = summarize(
    records(
      [
        { at: 0, status: 200, latency: 5, route: 0 },
        { at: 1, status: 200, latency: 50, route: 1, deadline: 20 },
        { at: 2, status: 429, latency: 1, route: 1, code: 'SLOGATE_ERR_SHED', deadline: 20 },
      ],
      ['a', 'b'],
    ),
    { durationMs: 1000 },
  );
  assert.deepEqual(
    s.routes.map((r) => [r.route, r.offered, r.onTime, r.shed, r.deadlineMs]),
    [
      ['a', 1, 1, 0, 100],
      ['b', 2, 0, 1, 20],
    ],
  );
  assert.equal(s.overall.offered, 3);
  assert.equal(s.overall.onTime, 1);
});

test('the timeline buckets requests by their scheduled second', () => {
  const s = summarize(records(TEN), { durationMs: 2000 });
  assert.equal(s.timeline.length, 2);
  const [t0, t1] = s.timeline;
  assert.deepEqual(
    [t0?.offered, t0?.completed, t0?.onTime, t0?.shed, t0?.failed, t0?.correctOnTime],
    [5, 5, 4, 0, 0, 3],
  );
  assert.deepEqual([t1?.offered, t1?.completed, t1?.shed, t1?.failed], [5, 0, 3, 2]);
  assert.deepEqual(t0?.variants, { large: 4, tiny: 1 });
  near(t0?.p50Ms, 30);
  assert.equal(t1?.p99Ms, null);
});

test('send lag: within the bound the run is valid, beyond it not', () => {
  const reqs = (lag: number): Req[] =>
    Array.from({ length: 100 }, (_, i) => ({ at: i, status: 200, latency: 1, lag: i < 98 ? 0.5 : lag }));
  const ok = summarize(records(reqs(4)), { durationMs: 1000, lagBoundMs: 5 }).lag;
  assert.equal(ok?.ok, true);
  assert.equal(ok?.p99Ms, 4);
  const bad = summarize(records(reqs(40)), { durationMs: 1000, lagBoundMs: 5 }).lag;
  assert.equal(bad?.ok, false);
  assert.equal(bad?.maxMs, 40);
  assert.equal(summarize(records(reqs(40)), { durationMs: 1000 }).lag, null);
});
