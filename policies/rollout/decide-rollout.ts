// The rollout's judge: a pure function of a snapshot of the evidence, like the engine's decide(). It holds, advances,
// promotes, or rolls back the moment a threshold is crossed, and says why in numbers. Replayable from the admin API.
import type { RolloutPolicy } from '../../core/rollout-config.js';

/** Service time of one revision at one batch size over the window. */
export interface LatencyAtBatch {
  readonly rows: number;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

type TailKey = 'p75Ms' | 'p90Ms' | 'p95Ms' | 'p99Ms';

/**
 * The highest quantile with at least five of `n` samples above it: the p99 of fewer than 500 samples is decided by a
 * handful of stalls on a busy host, so a judgement on fewer samples uses a lower tail quantile and says which.
 */
export function tailQuantile(n: number): { key: TailKey; name: string } {
  if (n >= 500) return { key: 'p99Ms', name: 'p99' };
  if (n >= 100) return { key: 'p95Ms', name: 'p95' };
  if (n >= 50) return { key: 'p90Ms', name: 'p90' };
  return { key: 'p75Ms', name: 'p75' };
}

export interface RevisionEvidence {
  /** Requests answered (or shadowed, for the candidate in the shadow phase). */
  readonly requests: number;
  readonly errors: number;
  readonly latency: readonly LatencyAtBatch[];
}

export interface ShadowEvidence {
  readonly comparedRows: number;
  readonly agreedRows: number;
  /** Shadow runs dropped for lack of spare capacity. */
  readonly dropped: number;
}

export interface RolloutSnapshot {
  readonly nowMs: number;
  readonly policy: RolloutPolicy;
  readonly phase: 'shadow' | 'canary';
  /** Index into policy.steps while in canary. */
  readonly step: number;
  readonly phaseStartedMs: number;
  readonly paused: boolean;
  readonly candidate: RevisionEvidence;
  /** The active revision over the same window (or the last window where it had enough, at a 100% step). */
  readonly active: RevisionEvidence;
  readonly shadow: ShadowEvidence;
  /**
   * Why a replica could not run the candidate (a runtime node that does not hold it), naming it; absent: none could
   * not. A replica that cannot serve the candidate cannot take its promotion either: the rollout rolls back.
   */
  readonly unservable?: string | undefined;
}

export type RolloutAction = 'wait' | 'advance' | 'promote' | 'roll-back';

export interface RolloutDecision {
  readonly action: RolloutAction;
  readonly reason: string;
  /** When a wait could end on time alone (ms on the snapshot's clock), if time is what it waits for. */
  readonly untilMs?: number;
}

/** Batches of one size each revision must have run before their p99s are compared (the 99th of 20 is the max). */
export const MIN_LATENCY_SAMPLES = 20;

export function decideRollout(s: RolloutSnapshot): RolloutDecision {
  const where = phaseName(s);
  const failed =
    (s.unservable === undefined ? undefined : `${where}: ${s.unservable}`) ??
    judgeErrors(s, where) ??
    (s.phase === 'shadow' ? judgeAgreement(s, where) : undefined) ??
    judgeLatency(s, where);
  if (failed !== undefined) return { action: 'roll-back', reason: failed };
  if (s.paused) return { action: 'wait', reason: `${where}: paused` };
  const bakeMs = (s.phase === 'shadow' ? s.policy.shadowSeconds : s.policy.bakeSeconds) * 1000;
  const readyAtMs = s.phaseStartedMs + bakeMs;
  const seen = s.phase === 'shadow' ? s.shadow.comparedRows : s.candidate.requests;
  const need = s.policy.minRequests;
  // Without any live batches of the active revision (a first step at 100%) there is nothing to compare with.
  const comparable =
    comparableBatch(s) !== undefined || !s.active.latency.some((a) => a.samples >= MIN_LATENCY_SAMPLES);
  if (s.nowMs < readyAtMs || seen < need || !comparable) {
    const waits: string[] = [];
    if (s.nowMs < readyAtMs) waits.push(`bake ${fmt1((readyAtMs - s.nowMs) / 1000)} s more`);
    if (seen < need)
      waits.push(
        `${seen} of ${need} ${s.phase === 'shadow' ? 'shadowed rows' : 'requests'}${s.phase === 'shadow' && s.shadow.dropped > 0 ? ` (${s.shadow.dropped} shadow runs dropped for lack of capacity)` : ''}`,
      );
    if (!comparable) waits.push(`latency: ${latencyWant(s)}`);
    const d: RolloutDecision = { action: 'wait', reason: `${where}: ${waits.join(', ')}` };
    return s.nowMs < readyAtMs && seen >= need && comparable ? { ...d, untilMs: readyAtMs } : d;
  }
  const evidence = summary(s);
  if (s.phase === 'canary' && s.step >= s.policy.steps.length - 1)
    return { action: 'promote', reason: `${where} held ${fmt1(bakeMs / 1000)} s: ${evidence}` };
  return { action: 'advance', reason: `${where} held ${fmt1(bakeMs / 1000)} s: ${evidence}` };
}

function phaseName(s: RolloutSnapshot): string {
  return s.phase === 'shadow'
    ? `shadow ${s.policy.shadowPercent}%`
    : `canary ${s.policy.steps[Math.min(s.step, s.policy.steps.length - 1)]}%`;
}

/** Early errors are divided by at least minRequests: one error in the first ten requests is not a 10% rate. */
function judgeErrors(s: RolloutSnapshot, where: string): string | undefined {
  const c = s.candidate;
  if (c.errors === 0) return undefined;
  const rate = c.errors / Math.max(c.requests, s.policy.minRequests);
  const activeRate = s.active.requests === 0 ? 0 : s.active.errors / s.active.requests;
  if (rate - activeRate <= s.policy.maxErrorRateIncrease) return undefined;
  return `${where}: error rate ${fmt4(rate)} (${c.errors} of ${c.requests}) vs active ${fmt4(activeRate)} (${s.active.errors} of ${s.active.requests}), limit +${fmt4(s.policy.maxErrorRateIncrease)}`;
}

/** Fails as soon as the disagreements exceed what minAgreement allows over at least minRequests rows. */
function judgeAgreement(s: RolloutSnapshot, where: string): string | undefined {
  const { comparedRows, agreedRows } = s.shadow;
  const disagreed = comparedRows - agreedRows;
  if (disagreed <= (1 - s.policy.minAgreement) * Math.max(comparedRows, s.policy.minRequests)) return undefined;
  return `${where}: agreement ${fmt3(comparedRows === 0 ? 0 : agreedRows / comparedRows)} (${agreedRows} of ${comparedRows} rows), limit ${fmt3(s.policy.minAgreement)}`;
}

/**
 * The tail (p99 given enough samples, see tailQuantile) at the batch size both revisions ran most, once each has
 * MIN_LATENCY_SAMPLES batches of it; the p50 is held to the same limit, as a stall-proof check of the same slowdown.
 */
function judgeLatency(s: RolloutSnapshot, where: string): string | undefined {
  const at = comparableBatch(s);
  if (at === undefined) return undefined;
  const { c, a } = at;
  const limit = 1 + s.policy.maxP99Increase;
  const tail = tailQuantile(Math.min(c.samples, a.samples));
  // Either quantile must also be slower by an amount beyond the host's scheduling noise: a sub-millisecond tail moves
  // by tenths of a millisecond without cause; a p50 less, so its floor is lower.
  const tailSlower = c[tail.key] - a[tail.key] >= s.policy.minTailIncreaseMs;
  const q =
    c[tail.key] > a[tail.key] * limit && tailSlower
      ? { name: tail.name, cm: c[tail.key], am: a[tail.key] }
      : c.p50Ms > a.p50Ms * limit && c.p50Ms - a.p50Ms >= s.policy.minP50IncreaseMs
        ? { name: 'p50', cm: c.p50Ms, am: a.p50Ms }
        : undefined;
  if (q === undefined) return undefined;
  return `${where}: ${q.name} ${fmt1(q.cm)} ms vs active ${fmt1(q.am)} ms at batch ${c.rows}, limit +${Math.round(s.policy.maxP99Increase * 100)}%`;
}

function comparableBatch(s: RolloutSnapshot): { c: LatencyAtBatch; a: LatencyAtBatch } | undefined {
  let best: { c: LatencyAtBatch; a: LatencyAtBatch } | undefined;
  for (const c of s.candidate.latency) {
    const a = s.active.latency.find((x) => x.rows === c.rows);
    if (a === undefined || c.samples < MIN_LATENCY_SAMPLES || a.samples < MIN_LATENCY_SAMPLES) continue;
    if (best === undefined || Math.min(c.samples, a.samples) > Math.min(best.c.samples, best.a.samples))
      best = { c, a };
  }
  return best;
}

/** What the latency comparison still lacks: batches of one size run by both revisions. */
function latencyWant(s: RolloutSnapshot): string {
  let most = 0;
  for (const c of s.candidate.latency)
    if (s.active.latency.some((a) => a.rows === c.rows && a.samples >= MIN_LATENCY_SAMPLES))
      most = Math.max(most, c.samples);
  return `${most} of ${MIN_LATENCY_SAMPLES} candidate batches at a size the active revision ran`;
}

function summary(s: RolloutSnapshot): string {
  const parts = [`${s.candidate.requests} requests, ${s.candidate.errors} errors`];
  if (s.phase === 'shadow')
    parts.push(
      `agreement ${fmt3(s.shadow.comparedRows === 0 ? 1 : s.shadow.agreedRows / s.shadow.comparedRows)} over ${s.shadow.comparedRows} rows`,
    );
  const at = comparableBatch(s);
  if (at !== undefined) {
    const t = tailQuantile(Math.min(at.c.samples, at.a.samples));
    parts.push(`${t.name} ${fmt1(at.c[t.key])} ms vs active ${fmt1(at.a[t.key])} ms at batch ${at.c.rows}`);
  }
  return parts.join(', ');
}

const fmt1 = (x: number) => x.toFixed(1);
const fmt3 = (x: number) => x.toFixed(3);
const fmt4 = (x: number) => x.toFixed(4);
