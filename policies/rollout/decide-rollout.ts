// The rollout's judge: a pure function of a snapshot of the evidence, like the engine's decide(). It holds, advances,
// promotes, or rolls back the moment a threshold is crossed, and says why in numbers. Replayable from the admin API.
import type { RolloutPolicy } from '../../core/rollout-config.js';

/** Service time of one revision at one batch size over the window. */
export interface LatencyAtBatch {
  readonly rows: number;
  readonly samples: number;
  readonly p99Ms: number;
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
    judgeErrors(s, where) ?? (s.phase === 'shadow' ? judgeAgreement(s, where) : undefined) ?? judgeLatency(s, where);
  if (failed !== undefined) return { action: 'roll-back', reason: failed };
  if (s.paused) return { action: 'wait', reason: `${where}: paused` };
  const bakeMs = (s.phase === 'shadow' ? s.policy.shadowSeconds : s.policy.bakeSeconds) * 1000;
  const readyAtMs = s.phaseStartedMs + bakeMs;
  const seen = s.phase === 'shadow' ? s.shadow.comparedRows : s.candidate.requests;
  const need = s.policy.minRequests;
  if (s.nowMs < readyAtMs || seen < need) {
    const waits: string[] = [];
    if (s.nowMs < readyAtMs) waits.push(`bake ${fmt1((readyAtMs - s.nowMs) / 1000)} s more`);
    if (seen < need)
      waits.push(
        `${seen} of ${need} ${s.phase === 'shadow' ? 'shadowed rows' : 'requests'}${s.phase === 'shadow' && s.shadow.dropped > 0 ? ` (${s.shadow.dropped} shadow runs dropped for lack of capacity)` : ''}`,
      );
    const d: RolloutDecision = { action: 'wait', reason: `${where}: ${waits.join(', ')}` };
    return s.nowMs < readyAtMs && seen >= need ? { ...d, untilMs: readyAtMs } : d;
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

/** p99 at the batch size both revisions ran most, once each has MIN_LATENCY_SAMPLES batches of it. */
function judgeLatency(s: RolloutSnapshot, where: string): string | undefined {
  const at = comparableBatch(s);
  if (at === undefined) return undefined;
  const { c, a } = at;
  if (c.p99Ms <= a.p99Ms * (1 + s.policy.maxP99Increase)) return undefined;
  return `${where}: p99 ${fmt1(c.p99Ms)} ms vs active ${fmt1(a.p99Ms)} ms at batch ${c.rows}, limit +${Math.round(s.policy.maxP99Increase * 100)}%`;
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

function summary(s: RolloutSnapshot): string {
  const parts = [`${s.candidate.requests} requests, ${s.candidate.errors} errors`];
  if (s.phase === 'shadow')
    parts.push(
      `agreement ${fmt3(s.shadow.comparedRows === 0 ? 1 : s.shadow.agreedRows / s.shadow.comparedRows)} over ${s.shadow.comparedRows} rows`,
    );
  const at = comparableBatch(s);
  parts.push(
    at === undefined
      ? 'latency not comparable yet'
      : `p99 ${fmt1(at.c.p99Ms)} ms vs active ${fmt1(at.a.p99Ms)} ms at batch ${at.c.rows}`,
  );
  return parts.join(', ');
}

const fmt1 = (x: number) => x.toFixed(1);
const fmt3 = (x: number) => x.toFixed(3);
const fmt4 = (x: number) => x.toFixed(4);
