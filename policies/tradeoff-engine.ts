// The tradeoff engine: decide(snapshot) -> a decision per route. Pure: no I/O, no clock reads, no hidden state
// (per-route state goes in with the snapshot and comes back in the result), so a decision can be replayed offline.
//
// Each adaptive route climbs a ladder: its eligible variants (accuracy >= minAccuracy, able to meet p99 alone),
// pruned to the Pareto frontier of (capacity cost per request, accuracy) and sorted from cheapest to most accurate.
// A position x on the ladder is a mix: rung floor(x) with share 1 - frac(x) and the next rung with frac(x), so
// capacity is used fully between rungs (Proteus-style accuracy scaling, without a solver). The engine:
//  1. downgrades at once to the highest position predicted to hold p99 at max(instant, fast) rate when the current
//     one is not (in a surge, the highest the stricter upgrade plan holds), or one rung below when the observed p99
//     already broke the target (and learns a correction);
//  2. upgrades by half a rung only after `upgradeTicks` ticks of headroom (stricter margin and utilisation, slow
//     rate) and `upgradeHoldMs` since the last switch, never back to where an observed breach happened at this load
//     until a backoff (5 s, doubling on each repeat up to 60 s) has passed, never when the observed p99 plus the
//     predicted slowdown of the upgrade would leave the budget, and (max-accuracy) only when the extra accuracy outweighs
//     the misses it risks (see missRisk: near capacity a cheaper mix answers more requests correctly and on time);
//  3. when routes together overload the replicas, steps down first the route losing the least accuracy per unit
//     of capacity freed, weighted by priority (sheddable routes first);
//  4. when everything is at its cheapest and still over, admits by priority and sheds the rest (token-bucket rate).
import type { Decision, VariantShare } from '../core/decision.js';
import type { BatchKnobs } from '../runtime/batch-policy.js';
import {
  batchLimit,
  capacityRps,
  costPerMillion,
  type LoadContext,
  plan,
  planLimit,
  type VariantModel,
} from './latency-model.js';
import type { RateSnapshot } from './rate-estimator.js';

export interface EngineParams {
  readonly margin: number;
  readonly maxUtilisation: number;
  readonly upgradeTicks: number;
  readonly upgradeHoldMs: number;
  /** Stricter planning for upgrades. */
  readonly upgradeMargin: number;
  readonly upgradeUtilisation: number;
  /** Ladder step of one upgrade (0.5 = half a rung: a 50/50 mix, then the full rung). */
  readonly upgradeStep: number;
  /**
   * Miss risk: the host stalls (GC, the OS, neighbours) for this share of the time, in stalls of this mean length
   * (exponential). See missRisk().
   */
  readonly stallShare: number;
  readonly stallMeanMs: number;
  /** A move for expected effective accuracy alone must gain at least this much (0.0005 = 0.05 points). */
  readonly riskHysteresis: number;
}

export const DEFAULT_ENGINE_PARAMS: EngineParams = {
  margin: 0.1,
  maxUtilisation: 0.8,
  upgradeTicks: 3,
  upgradeHoldMs: 3000,
  upgradeMargin: 0.25,
  upgradeUtilisation: 0.6,
  upgradeStep: 0.5,
  stallShare: 0.001,
  stallMeanMs: 15,
  riskHysteresis: 0.0005,
};

export interface RouteEngineState {
  /** Position on the ladder (see above); NaN before the first decision. */
  readonly position: number;
  readonly upStreak: number;
  readonly lastSwitchMs: number;
  /** Learned multiplier on predicted latency (>= 1). */
  readonly correction: number;
  /** The ladder the position refers to (variant names, cheapest first). */
  readonly ladder: readonly string[];
  /** Share of arrivals admitted while the gateway itself is the bottleneck (1 = no limit). */
  readonly admitFactor: number;
  /** Last time an observed breach was acted on (actions wait for the latency window to show their effect). */
  readonly lastBreachMs: number;
  /**
   * Upgrade backoff: where (ladder position) and at what rate the last breach-driven downgrade happened, until when
   * upgrades may not return there, and the current backoff (doubles when the route breaches again soon after).
   */
  readonly ceiling: number;
  readonly ceilingRps: number;
  readonly ceilingUntilMs: number;
  readonly backoffMs: number;
  /**
   * Miss-risk calibration: misses seen, and misses the stall model expected for the decisions in force, both
   * decayed (RISK_TAU_MS), and when they were last updated; the expected miss share of the decision made now.
   */
  readonly missesSeen: number;
  readonly missesExpected: number;
  readonly riskAtMs: number;
  readonly riskPerRequest: number;
}

export const INITIAL_STATE: RouteEngineState = {
  position: Number.NaN,
  upStreak: 0,
  lastSwitchMs: Number.NEGATIVE_INFINITY,
  correction: 1,
  ladder: [],
  admitFactor: 1,
  lastBreachMs: Number.NEGATIVE_INFINITY,
  ceiling: Number.POSITIVE_INFINITY,
  ceilingRps: 0,
  ceilingUntilMs: Number.NEGATIVE_INFINITY,
  backoffMs: 0,
  missesSeen: 0,
  missesExpected: 0,
  riskAtMs: Number.NaN,
  riskPerRequest: 0,
};

/** Replica utilisation from which a latency breach is blamed on the replicas (a cheaper variant helps). */
export const REPLICA_BUSY = 0.5;

/** A route nothing can serve still admits this much, to keep measuring. */
export const PROBE_RPS = 2;
export const PROBE_SHARE = 0.02;

/** An observed breach is acted on at most this often: the p99 window needs time to show an action's effect. */
export const BREACH_COOLDOWN_MS = 1000;
/** Upgrade backoff after a breach-driven downgrade: first hold, and its cap as repeats double it. */
export const BACKOFF_BASE_MS = 5000;
export const BACKOFF_MAX_MS = 60_000;
/** A rate over this multiple of its 5 s average is a surge: downgrades then land with upgrade headroom. */
export const SURGE_FACTOR = 1.5;
/** The backoff ceiling applies while the rate is at least this share of the rate it breached at. */
const CEILING_RATE_SHARE = 0.8;
/**
 * Miss-risk calibration: seen and expected misses decay with this time constant; the scale on the stall model is
 * (seen + prior) / (expected + prior), within these bounds. The prior keeps a few misses from moving it much. The
 * scale never goes under 1: the gateway sees only its own share of a request's latency, not the client's (its
 * sockets, its side of a loaded machine), so it counts fewer misses than clients do, and the stall model was
 * calibrated against clients' counts. Allowed down to 0.25, it read 0.25 at 2x C in a bench sweep and kept a `large`
 * share that cost 0.3 points of attainment there. What the gateway sees can only say the host stalls more.
 */
export const RISK_TAU_MS = 30_000;
export const RISK_PRIOR = 3;
export const RISK_SCALE_MIN = 1;
export const RISK_SCALE_MAX = 20;
/** Event-loop utilisation above which (with replicas not busy) the gateway, not the model, is the bottleneck. */
export const GATEWAY_SATURATED = 0.85;

export type RouteKind =
  | { readonly kind: 'adaptive' }
  | { readonly kind: 'fixed'; readonly variant: string; readonly maxBatch: number; readonly maxQueueDelayMs: number };

export interface RouteInput {
  readonly name: string;
  readonly model: string;
  readonly priority: number;
  readonly objective: 'max-accuracy' | 'min-cost' | 'utility';
  readonly utilityCostWeight: number;
  readonly slo: {
    readonly p99Ms: number;
    readonly minAccuracy?: number | undefined;
    readonly maxCostPerMillion?: number | undefined;
  };
  readonly policy: RouteKind;
  readonly allowed: readonly string[];
  readonly rate: RateSnapshot;
  readonly observedP99Ms: number;
  /**
   * p99 of the answers since the last switch (whole seconds after it, at least a few hundred answers; NaN otherwise or
   * when the switch is older than the window): the current choice's own record, while observedP99Ms's window still
   * holds the last choice's answers.
   */
  readonly observedSinceSwitchP99Ms: number;
  readonly overheadMs: number;
  readonly queuedRows: number;
  readonly state: RouteEngineState;
  /**
   * The highest p99 predicted by this route's decisions in force over the window observedP99Ms covers, and the
   * correction it was made with: what the observed p99 is checked against to learn the correction.
   */
  readonly windowPrediction: { readonly p99Ms: number; readonly correction: number };
  /** Requests answered, and answered late (after the route's p99 target), since the last decision. */
  readonly outcomes: { readonly answered: number; readonly missed: number };
}

export interface EngineSnapshot {
  readonly nowMs: number;
  readonly at: string;
  /** Replica slots (shared by every model). */
  readonly slots: number;
  /** Event-loop utilisation of the gateway since the last tick (0..1). */
  readonly gatewayUtilisation: number;
  /** Measured busy fraction of the replicas since the last tick (0..1). */
  readonly replicaUtilisation: number;
  readonly variants: ReadonlyMap<string, ReadonlyMap<string, VariantModel>>;
  readonly routes: readonly RouteInput[];
  readonly params: EngineParams;
}

export interface EngineResult {
  readonly decisions: ReadonlyMap<string, Decision>;
  readonly states: ReadonlyMap<string, RouteEngineState>;
  /** Batch knobs per variant ("model/variant") that routes decided (fixed policies included: the smallest wins). */
  readonly knobs: ReadonlyMap<string, BatchKnobs>;
  /**
   * The replicas or the gateway are over their planned load: shedding by capacity or by gateway saturation is on.
   * Sheddable (negative-priority) requests are refused everywhere while it lasts. Probes of a route that nothing can
   * serve do not count: they are no sign of load.
   */
  readonly underPressure: boolean;
}

interface Eval {
  readonly ok: boolean;
  readonly shares: VariantShare[];
  readonly utilisation: number;
  readonly predictedP99Ms: number;
  readonly accuracy: number;
  readonly costPerMillion: number;
  readonly maxBatch: number;
  /** Batch limit of each rung used (the lower, and the upper of a mix). */
  readonly loLimit: number;
  readonly hiLimit: number;
  /** Utilisation of everything else the plan was made against. */
  readonly other: number;
}

const GRID = 20; // positions per rung

interface Work {
  readonly input: RouteInput;
  readonly ladder: VariantModel[];
  readonly ctx: Omit<LoadContext, 'otherUtilisation'>;
  /** Scratch contexts (planning, and the stricter upgrade planning), mutated per evaluation: no allocation. */
  readonly scratch: LoadContext & { otherUtilisation: number };
  readonly strict: LoadContext & { otherUtilisation: number };
  /** Batch limits per rung, for each context (they do not depend on the load). */
  readonly limits: Map<VariantModel, number>;
  readonly strictLimits: Map<VariantModel, number>;
  /** Evaluations of this route alone (no other load) at its own rate, by grid position: reused within a decision. */
  readonly alone: Map<number, Eval>;
  lambda: number;
  position: number;
  upStreak: number;
  lastSwitchMs: number;
  correction: number;
  eval: Eval | undefined;
  utilisation: number;
  admissionRps: number;
  admitFactor: number;
  lastBreachMs: number;
  ceiling: number;
  ceilingRps: number;
  ceilingUntilMs: number;
  backoffMs: number;
  /** The stall model, scaled by what this route's misses showed (see calibrateRisk). */
  readonly risk: Pick<EngineParams, 'stallShare' | 'stallMeanMs'>;
  readonly calib: RiskCalibration;
  reason: string;
  /** What changed in the ladder since the last tick (for the reason), or ''. */
  ladderNote: string;
  /** Nothing can meet the SLO: shed everything. */
  hopeless: boolean;
}

function accuracyOf(v: VariantModel): number {
  return Number.isNaN(v.accuracy) ? 0 : v.accuracy;
}

/** Eligible variants on the Pareto frontier of (capacity per request, accuracy), cheapest first. */
export function buildLadder(
  variants: readonly VariantModel[],
  minAccuracy: number | undefined,
  overheadMs: number,
  budgetMs: number,
  correction: number,
): VariantModel[] {
  const scored: { v: VariantModel; perRequest: number }[] = [];
  for (const v of variants) {
    if (minAccuracy !== undefined && (Number.isNaN(v.accuracy) || v.accuracy < minAccuracy)) continue;
    const b = batchLimit(v, overheadMs, budgetMs, correction);
    if (b > 0) scored.push({ v, perRequest: (v.table.p50[b] as number) / b });
  }
  scored.sort((a, b) => a.perRequest - b.perRequest || accuracyOf(a.v) - accuracyOf(b.v));
  const out: VariantModel[] = [];
  for (const { v } of scored)
    if (out.length === 0 || accuracyOf(v) > accuracyOf(out[out.length - 1] as VariantModel)) out.push(v);
  return out;
}

function evaluate(w: Work, x: number, lambda: number, other: number, strict = false): Eval {
  if (other === 0 && !strict && lambda === w.lambda) {
    const k = Math.round(x * GRID);
    let e = w.alone.get(k);
    if (e === undefined) {
      e = evaluateUncached(w, x, lambda, other, strict);
      w.alone.set(k, e);
    }
    return e;
  }
  return evaluateUncached(w, x, lambda, other, strict);
}

function evaluateUncached(w: Work, x: number, lambda: number, other: number, strict: boolean): Eval {
  const ctx = strict ? w.strict : w.scratch;
  const limits = strict ? w.strictLimits : w.limits;
  const limitOf = (v: VariantModel) => {
    let l = limits.get(v);
    if (l === undefined) {
      l = planLimit(v, ctx);
      limits.set(v, l);
    }
    return l;
  };
  const i = Math.floor(x + 1e-9);
  const f = x - i;
  const lo = w.ladder[i] as VariantModel;
  const maxCost = w.input.slo.maxCostPerMillion;
  if (f < 1e-6 || i + 1 >= w.ladder.length) {
    ctx.otherUtilisation = other;
    const p = plan(lo, lambda, ctx, limitOf(lo));
    return {
      ok: p.ok && (maxCost === undefined || p.costPerMillion <= maxCost),
      shares: [{ variant: lo.name, share: 1 }],
      utilisation: p.utilisation,
      predictedP99Ms: p.predictedP99Ms,
      accuracy: lo.accuracy,
      costPerMillion: p.costPerMillion,
      maxBatch: p.maxBatch,
      loLimit: p.maxBatch,
      hiLimit: 0,
      other,
    };
  }
  const hi = w.ladder[i + 1] as VariantModel;
  const lLo = lambda * (1 - f);
  const lHi = lambda * f;
  const limLo = limitOf(lo);
  const limHi = limitOf(hi);
  ctx.otherUtilisation = other;
  const a0 = plan(lo, lLo, ctx, limLo).utilisation;
  const b0 = plan(hi, lHi, ctx, limHi).utilisation;
  ctx.otherUtilisation = other + b0;
  const a = plan(lo, lLo, ctx, limLo);
  ctx.otherUtilisation = other + a0;
  const b = plan(hi, lHi, ctx, limHi);
  const cost = (1 - f) * a.costPerMillion + f * b.costPerMillion;
  return {
    ok: a.ok && b.ok && (maxCost === undefined || cost <= maxCost),
    shares: [
      { variant: lo.name, share: round3(1 - f) },
      { variant: hi.name, share: round3(f) },
    ],
    utilisation: a.utilisation + b.utilisation,
    predictedP99Ms: Math.max(a.predictedP99Ms, b.predictedP99Ms),
    accuracy: (1 - f) * lo.accuracy + f * hi.accuracy,
    costPerMillion: cost,
    maxBatch: Math.min(a.maxBatch, b.maxBatch),
    loLimit: a.maxBatch,
    hiLimit: b.maxBatch,
    other,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Highest feasible position (grid of 1/GRID rung) at this load; NaN when not even the cheapest rung is. */
function highestFeasible(w: Work, lambda: number, other: number, strict = false): number {
  const top = (w.ladder.length - 1) * GRID;
  if (!evaluate(w, 0, lambda, other, strict).ok) return Number.NaN;
  if (evaluate(w, top / GRID, lambda, other, strict).ok) return top / GRID;
  let lo = 0;
  let hi = top;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (evaluate(w, mid / GRID, lambda, other, strict).ok) lo = mid;
    else hi = mid;
  }
  return lo / GRID;
}

/**
 * The position the objective prefers among feasible ones up to `maxX`. max-accuracy maximises expected effective
 * accuracy (accuracy x the chance to answer in time) over quarter rungs, preferring the higher position unless a lower
 * one gains at least the hysteresis; utility trades it against cost over the whole grid.
 */
function preferred(w: Work, maxX: number, lambda: number, other: number, P: EngineParams): number {
  const obj = w.input.objective;
  if (obj === 'min-cost') return 0;
  if (obj === 'max-accuracy') {
    let best = maxX;
    let bestU = expectedAccuracy(w, evaluate(w, maxX, lambda, other));
    for (let g = Math.ceil(maxX * 4 - 1e-9) - 1; g >= 0; g--) {
      // Expected accuracy never exceeds accuracy, which only falls further down the ladder: once a position's
      // accuracy cannot beat the best by the hysteresis, no lower one can (usually one or two plans, not twenty).
      if (ladderAccuracy(w, g / 4) <= bestU + P.riskHysteresis) break;
      const u = expectedAccuracy(w, evaluate(w, g / 4, lambda, other));
      if (u > bestU + P.riskHysteresis) {
        bestU = u;
        best = g / 4;
      }
    }
    return best;
  }
  let best = 0;
  let bestU = Number.NEGATIVE_INFINITY;
  for (let g = 0; g <= Math.round(maxX * GRID); g++) {
    const e = evaluate(w, g / GRID, lambda, other);
    const u = expectedAccuracy(w, e) - w.input.utilityCostWeight * e.costPerMillion;
    if (u > bestU + 1e-12) {
      bestU = u;
      best = g / GRID;
    }
  }
  return best;
}

function accuracyOfEval(e: Eval): number {
  return Number.isNaN(e.accuracy) ? 0 : e.accuracy;
}

/**
 * Expected share of requests that miss the target under a plan. Misses on a loaded host come from stalls (a GC pause,
 * the scheduler, a neighbour), not from the steady queue the plan models: a stall of S ms starting on an idle queue
 * delays the requests arriving in the next S / (1 - rho) ms by S - (1 - rho) t, so the ones whose slack (target
 * minus their latency, here conservatively the predicted p99) is smaller miss. With stalls of exponential length
 * (mean m) taking a share f of the time, the miss share is f x exp(-slack / m) / (1 - rho). It grows fast near the
 * budget and near saturation: exactly where mixing in a slower, more accurate variant buys least.
 */
export function missRisk(
  predictedP99Ms: number,
  utilisation: number,
  targetMs: number,
  P: Pick<EngineParams, 'stallShare' | 'stallMeanMs'>,
): number {
  if (!Number.isFinite(predictedP99Ms) || utilisation >= 1) return 1;
  const slack = Math.max(0, targetMs - predictedP99Ms);
  return Math.min(1, (P.stallShare * Math.exp(-slack / P.stallMeanMs)) / Math.max(0.02, 1 - utilisation));
}

/** Accuracy x the chance to answer in time: the share of offered requests answered correctly and on time. */
function expectedAccuracy(w: Work, e: Eval): number {
  if (!e.ok) return Number.NEGATIVE_INFINITY;
  return accuracyOfEval(e) * (1 - missRisk(e.predictedP99Ms, e.utilisation + e.other, w.input.slo.p99Ms, w.risk));
}

/** Expected accuracy of x vs y (y above x) at a load: whether y gains anything (net of its risk), and why in words. */
function riskGain(w: Work, x: number, y: number, lambda: number, other: number): { worth: boolean; why: string } {
  const ex = evaluate(w, x, lambda, other);
  const ey = evaluate(w, y, lambda, other);
  const ux = expectedAccuracy(w, ex);
  const uy = expectedAccuracy(w, ey);
  const rx = missRisk(ex.predictedP99Ms, ex.utilisation + ex.other, w.input.slo.p99Ms, w.risk);
  const ry = missRisk(ey.predictedP99Ms, ey.utilisation + ey.other, w.input.slo.p99Ms, w.risk);
  const why = `${mixName(ey.shares)} adds ${pts(accuracyOfEval(ey) - accuracyOfEval(ex))} of accuracy and ${pts(ry - rx)} of expected misses`;
  return { worth: uy > ux, why };
}

/** A lower position with more expected on-time correct answers than x, if any (searched only when the next step down gains). */
function riskStepDown(
  w: Work,
  x: number,
  lambda: number,
  other: number,
  P: EngineParams,
  atLeast?: Eval,
): { x: number; why: string } | undefined {
  const down = Math.max(0, snap(Math.ceil(x * 4 - 1e-9) / 4 - 0.25));
  // The step down gains at most the current risk less the accuracy it gives up: when that cannot reach the
  // hysteresis, nothing below needs planning. `atLeast` is the current choice planned at a rate no lower than
  // `lambda` (risk only grows with load), which bounds the risk without a plan of its own.
  const lost = ladderAccuracy(w, x) - ladderAccuracy(w, down);
  const bound = atLeast ?? evaluate(w, x, lambda, other);
  if (
    bound.ok &&
    accuracyOfEval(bound) *
      missRisk(bound.predictedP99Ms, bound.utilisation + bound.other, w.input.slo.p99Ms, w.risk) <=
      lost + P.riskHysteresis
  )
    return undefined;
  const eDown = evaluate(w, down, lambda, other);
  const eNow = bound === atLeast ? evaluate(w, x, lambda, other) : bound;
  if (expectedAccuracy(w, eDown) <= expectedAccuracy(w, eNow) + P.riskHysteresis) return undefined;
  return {
    x: preferred(w, down, lambda, other, P),
    why: `at ${lambda.toFixed(0)} req/s ${riskGain(w, down, x, lambda, other).why}: stepping down`,
  };
}

/** Accuracy of a ladder position (share-weighted over its two rungs), without planning. */
function ladderAccuracy(w: Work, x: number): number {
  const i = Math.floor(x + 1e-9);
  const f = x - i;
  const lo = accuracyOf(w.ladder[i] as VariantModel);
  if (f < 1e-6 || i + 1 >= w.ladder.length) return lo;
  return (1 - f) * lo + f * accuracyOf(w.ladder[i + 1] as VariantModel);
}

function pts(share: number): string {
  return `${share >= 0 ? '+' : '-'}${Math.abs(share * 100).toFixed(2)} pts`;
}

function snap(x: number): number {
  return Math.round(x * GRID) / GRID;
}

/**
 * The current choice's observed p99: its own answers since the last switch when there are enough of them, else the
 * window's (which, for a few seconds after a switch, still holds the last choice's answers).
 */
function ownP99(r: RouteInput): number {
  return Number.isFinite(r.observedSinceSwitchP99Ms) ? r.observedSinceSwitchP99Ms : r.observedP99Ms;
}

/**
 * An observed breach: the window's p99 over target, unless the answers since the last switch meet it (the breach was
 * the last choice's: after a cold start's stall it held upgrades back for the whole 5 s window). The answers since
 * the switch only ever clear a breach, never raise one: there are fewer of them than the window's.
 */
function observedBreachOf(r: RouteInput): boolean {
  if (!(Number.isFinite(r.observedP99Ms) && r.observedP99Ms > r.slo.p99Ms)) return false;
  return !(Number.isFinite(r.observedSinceSwitchP99Ms) && r.observedSinceSwitchP99Ms <= r.slo.p99Ms);
}

function fmt(ms: number): string {
  return Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 2 : 1)} ms` : 'unbounded';
}

function mixName(shares: readonly VariantShare[]): string {
  return shares
    .filter((s) => s.share > 0)
    .map((s) => (s.share === 1 ? s.variant : `${Math.round(s.share * 100)}% ${s.variant}`))
    .join(' + ');
}

/**
 * Updates the learned correction from observed vs predicted p99 (only when observations exist). `predictedWith` is
 * the correction the prediction was made with (an earlier tick's): the one the observation implies is that times
 * the ratio. Scaling the current correction instead compounded it, tick after tick, against the same old prediction.
 */
export function nextCorrection(
  current: number,
  observedMs: number,
  predictedMs: number,
  predictedWith = current,
): number {
  if (!Number.isFinite(observedMs) || !Number.isFinite(predictedMs) || predictedMs <= 0)
    return Math.max(1, current * 0.98);
  const ratio = observedMs / predictedMs;
  if (ratio > 1.1) return Math.min(3, 0.5 * current + 0.5 * Math.min(3, predictedWith * ratio));
  if (ratio < 0.8) return Math.max(1, current * 0.95);
  return current;
}

/** Decayed misses seen and expected, and the scale they put on the stall model. */
export interface RiskCalibration {
  readonly missesSeen: number;
  readonly missesExpected: number;
  readonly scale: number;
}

/**
 * Checks the stall model against what happened: the misses seen since the last decision against the ones the
 * decision in force expected (its miss share x the requests answered), both decayed over RISK_TAU_MS. Their ratio
 * scales the stall model for this route: a host that stalls more than calibrated (a slower sitting, a neighbour)
 * makes the engine keep more headroom near capacity (never less than calibrated: see RISK_SCALE_MIN). Not learnt while
 * a surge is in the window: those misses come from the reaction to the surge, which the stall model does not describe.
 */
export function calibrateRisk(
  state: Pick<RouteEngineState, 'missesSeen' | 'missesExpected' | 'riskAtMs' | 'riskPerRequest'>,
  outcomes: { readonly answered: number; readonly missed: number },
  nowMs: number,
  learn: boolean,
): RiskCalibration {
  const decay = Number.isFinite(state.riskAtMs) ? Math.exp(-Math.max(0, nowMs - state.riskAtMs) / RISK_TAU_MS) : 1;
  let seen = state.missesSeen * decay;
  let expected = state.missesExpected * decay;
  if (learn) {
    seen += outcomes.missed;
    expected += outcomes.answered * state.riskPerRequest;
  }
  const scale = Math.min(RISK_SCALE_MAX, Math.max(RISK_SCALE_MIN, (seen + RISK_PRIOR) / (expected + RISK_PRIOR)));
  return { missesSeen: seen, missesExpected: expected, scale };
}

function priorityWeight(p: number): number {
  return p < 0 ? 0.05 : 1 + p;
}

export function decide(s: EngineSnapshot): EngineResult {
  const P = s.params;
  const works: Work[] = [];
  const fixed: { input: RouteInput; variant: VariantModel | undefined; utilisation: number }[] = [];

  for (const r of s.routes) {
    const models = s.variants.get(r.model) ?? new Map<string, VariantModel>();
    // Downgrades plan for the rate now (this tick's, or the 1 s average when higher).
    const lambdaUp = Math.max(r.rate.instant, r.rate.fast);
    if (r.policy.kind === 'fixed') {
      const v = models.get(r.policy.variant);
      const util = v === undefined ? 0 : utilisationAt(v, lambdaUp, s.slots, r.policy.maxBatch);
      fixed.push({ input: r, variant: v, utilisation: util });
      continue;
    }
    // Learn from observed vs predicted only when the replicas carry real load, the event loop is not saturated and no
    // surge is in the latency window: a stall elsewhere on the machine (a cold start's first second) says nothing
    // about the queueing model, and neither does the queue a step (or a cold start's first load) builds before the
    // engine reacts: learnt from a cold start's first load, it doubled every prediction for the seconds after.
    const surgeInWindow = r.rate.peak > SURGE_FACTOR * Math.max(r.rate.slow, 1);
    const correction =
      s.replicaUtilisation >= REPLICA_BUSY && s.gatewayUtilisation < GATEWAY_SATURATED && !surgeInWindow
        ? nextCorrection(r.state.correction, r.observedP99Ms, r.windowPrediction.p99Ms, r.windowPrediction.correction)
        : Math.max(1, r.state.correction * 0.98);
    // Nor from a route nothing could serve (its probes were expected to miss; an empty ladder in the state).
    const calib = calibrateRisk(r.state, r.outcomes, s.nowMs, !surgeInWindow && r.state.ladder.length > 0);
    const budgetMs = (1 - P.margin) * r.slo.p99Ms;
    const variants = r.allowed.map((n) => models.get(n)).filter((v): v is VariantModel => v !== undefined);
    // Eligibility caps the gateway's overhead at half the budget: an overhead spike is no reason to give up the
    // variants (observed breaches and admission handle it), only a model too slow for the SLO is.
    const ladder = buildLadder(variants, r.slo.minAccuracy, Math.min(r.overheadMs, budgetMs / 2), budgetMs, correction);
    // Carry the position over when the ladder changed (a variant appeared or became ineligible): the same mix when
    // both of its rungs are still adjacent, else its lower rung, else the best rung no more accurate than that. Never
    // an upgrade: those wait for the hysteresis below.
    let position = r.state.position;
    let ladderNote = '';
    if (!sameLadder(ladder, r.state.ladder) && Number.isFinite(position) && ladder.length > 0) {
      const loName = r.state.ladder[Math.floor(position)];
      const frac = position - Math.floor(position);
      const hiName = frac > 1e-6 ? r.state.ladder[Math.floor(position) + 1] : undefined;
      const lo = ladder.findIndex((v) => v.name === loName);
      if (lo >= 0 && hiName !== undefined && ladder[lo + 1]?.name === hiName) position = lo + frac;
      else if (lo >= 0) position = lo;
      else {
        const prevAcc = accuracyOf(models.get(loName ?? '') ?? (ladder[0] as VariantModel));
        let best = 0;
        ladder.forEach((v, i) => {
          if (accuracyOf(v) <= prevAcc) best = i;
        });
        position = best;
      }
      const gone = r.state.ladder.filter((n) => !ladder.some((v) => v.name === n));
      const added = ladder.filter((v) => !r.state.ladder.includes(v.name)).map((v) => v.name);
      ladderNote = `${gone.length > 0 ? `no longer eligible: ${gone.join(', ')}` : ''}${gone.length > 0 && added.length > 0 ? '; ' : ''}${added.length > 0 ? `eligible again: ${added.join(', ')}` : ''}`;
    }
    // Plain literals, not spreads: this runs for every route on every tick (object spread is slow here).
    const ctx = {
      slots: s.slots,
      burstiness: r.rate.burstiness,
      overheadMs: r.overheadMs,
      correction,
      maxUtilisation: P.maxUtilisation,
      budgetMs,
    };
    works.push({
      input: r,
      ladder,
      ctx,
      scratch: {
        slots: s.slots,
        burstiness: r.rate.burstiness,
        overheadMs: r.overheadMs,
        correction,
        maxUtilisation: P.maxUtilisation,
        budgetMs,
        otherUtilisation: 0,
      },
      strict: {
        slots: s.slots,
        burstiness: r.rate.burstiness,
        overheadMs: r.overheadMs,
        correction,
        maxUtilisation: Math.min(P.upgradeUtilisation, P.maxUtilisation),
        budgetMs: (1 - P.upgradeMargin) * r.slo.p99Ms,
        otherUtilisation: 0,
      },
      limits: new Map(),
      strictLimits: new Map(),
      alone: new Map(),
      lambda: lambdaUp,
      position,
      upStreak: r.state.upStreak,
      lastSwitchMs: r.state.lastSwitchMs,
      correction,
      eval: undefined,
      utilisation: 0,
      admissionRps: Number.POSITIVE_INFINITY,
      admitFactor: r.state.admitFactor,
      lastBreachMs: r.state.lastBreachMs,
      // A changed ladder renumbers positions: the ceiling no longer points at the same mix.
      ceiling: ladderNote === '' ? r.state.ceiling : Number.POSITIVE_INFINITY,
      ceilingRps: r.state.ceilingRps,
      ceilingUntilMs: ladderNote === '' ? r.state.ceilingUntilMs : Number.NEGATIVE_INFINITY,
      backoffMs: r.state.backoffMs,
      risk: { stallShare: P.stallShare * calib.scale, stallMeanMs: P.stallMeanMs },
      calib,
      reason: '',
      ladderNote,
      hopeless: ladder.length === 0,
    });
  }

  // Current load of everything at its current position.
  const utilOf = new Map<Work, number>();
  for (const w of works) {
    if (w.hopeless) continue;
    const x = Number.isFinite(w.position) ? Math.min(w.position, w.ladder.length - 1) : 0;
    utilOf.set(w, evaluate(w, x, w.lambda, 0).utilisation);
  }
  const fixedUtil = fixed.reduce((a, f) => a + f.utilisation, 0);
  // Each route plans as if less important routes had already stepped down to their cheapest choice: they will yield
  // (step 3) before it does. Routes at least as important count with their current load.
  const cheapest = new Map<Work, number>();
  for (const w of works) if (!w.hopeless) cheapest.set(w, evaluate(w, 0, w.lambda, 0).utilisation);
  const others = (w: Work) => {
    let t = fixedUtil;
    for (const [x, u] of utilOf)
      if (x !== w) t += x.input.priority < w.input.priority ? Math.min(u, cheapest.get(x) ?? u) : u;
    return t;
  };

  // Which resource is the bottleneck when latency breaks: the gateway's event loop (parsing, HTTP) while replicas
  // idle, or the replicas. A cheaper variant only helps the latter; the former needs less admitted traffic.
  const replicaBound = s.replicaUtilisation >= REPLICA_BUSY;
  const gatewayBound = s.gatewayUtilisation >= GATEWAY_SATURATED && !replicaBound;
  const breaching = works.filter((w) => !w.hopeless && observedBreachOf(w.input));
  // Gateway-bound shedding goes to the lowest priority class that still admits something (sheddable first).
  const shedClass =
    gatewayBound && breaching.length > 0
      ? Math.min(...works.filter((w) => !w.hopeless && w.admitFactor > 0.05).map((w) => w.input.priority))
      : Number.NaN;

  // 1-2. Each route on its own (most important first), against everyone else's current load.
  for (const w of [...works].sort((a, b) => b.input.priority - a.input.priority)) {
    const r = w.input;
    if (w.hopeless) {
      // Shed all but a probe: answers keep the overhead and latency measurements alive, so a passing cause (a cold
      // start, a noisy neighbour) does not lock the route out.
      w.admissionRps = Math.min(w.lambda, Math.max(PROBE_RPS, PROBE_SHARE * w.lambda));
      w.reason = `no variant${r.slo.minAccuracy !== undefined ? ` with accuracy >= ${r.slo.minAccuracy}` : ''} can hold p99 ${r.slo.p99Ms} ms even alone (gateway overhead ${fmt(r.overheadMs)}): shedding all but a probe of ${w.admissionRps.toFixed(1)} req/s`;
      continue;
    }
    const other = others(w);
    const top = w.ladder.length - 1;
    const xNow = Number.isFinite(w.position) ? Math.min(w.position, top) : Number.NaN;
    // Highest feasible position at the current rate: searched only on the paths that need it.
    let xMaxUpCache: number | undefined;
    const xMaxUpOf = () => {
      xMaxUpCache ??= highestFeasible(w, w.lambda, other);
      return xMaxUpCache;
    };
    const observedBreach = observedBreachOf(r);
    const actOnBreach = observedBreach && s.nowMs - w.lastBreachMs >= BREACH_COOLDOWN_MS;
    // Admission while the gateway is the bottleneck: multiplicative decrease on a breach, additive increase after.
    if (gatewayBound && actOnBreach && r.priority === shedClass) {
      w.admitFactor = Math.max(0.05, w.admitFactor * 0.8);
      w.lastBreachMs = s.nowMs;
    } else if (
      w.admitFactor < 1 &&
      s.gatewayUtilisation < 0.75 &&
      (!observedBreach || (s.gatewayUtilisation < 0.5 && s.nowMs - w.lastBreachMs >= 2 * BREACH_COOLDOWN_MS))
    ) {
      // Recover while the route meets its target and the gateway has room; and, with the event loop clearly idle and
      // no cut for 2 s, also while a breach is still in the 5 s latency window (after a cold start's stall it stays
      // there for seconds after the cause is gone). A breach with the loop between these thresholds holds the factor.
      w.admitFactor = Math.min(1, w.admitFactor + 0.05);
    }
    if (Number.isNaN(xNow)) {
      // First decision: the objective's preference at the current load, no hysteresis.
      const xMaxUp = xMaxUpOf();
      w.position = Number.isNaN(xMaxUp) ? 0 : preferred(w, xMaxUp, w.lambda, other, P);
      w.lastSwitchMs = s.nowMs;
      w.reason = Number.isNaN(xMaxUp)
        ? 'start: even the cheapest variant is over budget at this load'
        : 'start: best choice for the objective at the current load';
    } else if (gatewayBound && observedBreach) {
      w.position = xNow;
      w.upStreak = 0;
      w.reason = `gateway saturated (event loop ${(s.gatewayUtilisation * 100).toFixed(0)}%, replicas ${(s.replicaUtilisation * 100).toFixed(0)}%): keeping the variant, admitting ${(w.admitFactor * 100).toFixed(0)}% of arrivals`;
    } else if (observedBreach && !replicaBound && evaluate(w, xNow, w.lambda, other).ok) {
      // Neither the replicas nor the gateway are busy and the model says the choice fits: a transient (a stall
      // elsewhere on the machine). A cheaper variant would not help; hold.
      w.position = xNow;
      w.upStreak = 0;
      w.reason = `observed p99 ${fmt(r.observedP99Ms)} > target with replicas ${(s.replicaUtilisation * 100).toFixed(0)}% and event loop ${(s.gatewayUtilisation * 100).toFixed(0)}% busy: transient, holding`;
    } else {
      const eNow = evaluate(w, xNow, w.lambda, other);
      const nowOk = eNow.ok;
      // The gateway's own overhead takes over a third of the budget while the replicas idle (a cold start's first
      // seconds: the gateway's code is not compiled yet; a stall).
      const overheadBound = !replicaBound && r.overheadMs > w.ctx.budgetMs / 3;
      if (overheadBound && (actOnBreach || (!nowOk && eNow.utilisation + eNow.other < w.ctx.maxUtilisation))) {
        // An observed breach, or a predicted one the replicas' load does not explain (the plan fails on latency, not on
        // utilisation): the time goes outside the model, so a cheaper variant would save little and cost accuracy for
        // as long as the climb back takes (a cold start into 0.6x C stepped down to 60% `cnn-small` and took 10 s
        // back). Hold (the gateway-saturation rule admits less when the event loop is the bottleneck for real).
        w.position = xNow;
        w.upStreak = 0;
        w.reason = `${actOnBreach ? `observed p99 ${fmt(r.observedP99Ms)} > target` : `predicted over budget at ${w.lambda.toFixed(0)} req/s`} with gateway overhead ${fmt(r.overheadMs)} of the ${fmt(w.ctx.budgetMs)} budget and replicas ${(s.replicaUtilisation * 100).toFixed(0)}% busy: a cheaper variant would not help, holding`;
      } else if (actOnBreach || !nowOk) {
        const xMaxUp = xMaxUpOf();
        // A surge (the rate at over 1.5x its 5 s average) lands where the stricter upgrade plan holds too: the profile
        // is at its least trustworthy when load jumps (contention arrives with it), and a landing at the edge of
        // the budget turns every model error into misses. Headroom then shows, and upgrades follow.
        const surge = !actOnBreach && w.lambda > SURGE_FACTOR * r.rate.slow;
        const xStrict = surge && !Number.isNaN(xMaxUp) ? highestFeasible(w, w.lambda, other, true) : Number.NaN;
        // The stricter plan trims a mix, but never lands below a whole rung the plan holds: a surge's first tick reads
        // its rate high (2,034 req/s for a real 1,380 in one run: arrivals clump where the surge begins), and at that
        // rate the strict plan sent a 3x step to `medium-int8` for seconds where `cnn-small` held the whole step.
        const highest = Number.isNaN(xMaxUp)
          ? 0
          : Number.isNaN(xStrict)
            ? xMaxUp
            : Math.max(Math.min(xMaxUp, xStrict), Math.floor(xMaxUp + 1e-9));
        // Landing: where the objective prefers at or below the highest position that holds (for max-accuracy, the
        // most expected on-time correct answers: near capacity a cheaper mix loses less to misses than it gains).
        const fallback =
          Number.isNaN(xMaxUp) || r.objective !== 'max-accuracy' ? highest : preferred(w, highest, w.lambda, other, P);
        const target = actOnBreach ? Math.min(fallback, Math.max(0, Math.ceil(xNow) - 1)) : fallback;
        if (actOnBreach) w.lastBreachMs = s.nowMs;
        if (target < xNow) {
          if (actOnBreach) {
            // Back off from this position: a repeat soon after the last backoff ended doubles it; a breach lower
            // down while it lasts lowers the ceiling and restarts it.
            if (s.nowMs < w.ceilingUntilMs) w.ceiling = Math.min(w.ceiling, xNow);
            else {
              w.backoffMs =
                s.nowMs < w.ceilingUntilMs + 2 * w.backoffMs
                  ? Math.min(BACKOFF_MAX_MS, 2 * w.backoffMs)
                  : BACKOFF_BASE_MS;
              w.ceiling = xNow;
            }
            w.ceilingUntilMs = s.nowMs + w.backoffMs;
            w.ceilingRps = w.lambda;
          }
          w.position = target;
          w.lastSwitchMs = s.nowMs;
          w.reason = actOnBreach
            ? `downgrade: observed p99 ${fmt(r.observedP99Ms)} > target ${r.slo.p99Ms} ms`
            : `downgrade: current choice predicted over budget at ${w.lambda.toFixed(0)} req/s${Number.isNaN(xStrict) ? '' : ' (a surge: landing with upgrade headroom)'}`;
        } else {
          w.position = xNow;
          w.reason = actOnBreach
            ? `observed p99 ${fmt(r.observedP99Ms)} > target at the cheapest choice`
            : 'over budget at the cheapest choice';
        }
        w.upStreak = 0;
      } else if (observedBreach) {
        // Acted on recently: wait for the window to show the effect.
        w.position = xNow;
        w.upStreak = 0;
        w.reason = `observed p99 ${fmt(r.observedP99Ms)} > target: waiting for the last change to show`;
      } else {
        // Upgrades plan for the peak of the last seconds too, with a stricter margin and utilisation.
        const lambdaDown = Math.max(w.lambda, r.rate.peak);
        // Upgrades only look above the current position: usually one evaluation says there is no headroom.
        const xMaxDown =
          xNow >= top || !evaluate(w, Math.min(top, snap(xNow + 1 / GRID)), lambdaDown, other, true).ok
            ? xNow
            : highestFeasible(w, lambdaDown, other, true);
        const want =
          r.objective === 'max-accuracy'
            ? xMaxDown
            : Number.isNaN(xMaxDown)
              ? 0
              : preferred(w, xMaxDown, lambdaDown, other, P);
        const wantNow =
          r.objective === 'max-accuracy'
            ? xNow
            : Number.isNaN(xMaxUpOf())
              ? 0
              : preferred(w, xMaxUpOf(), w.lambda, other, P);
        // max-accuracy: a step down that delivers more expected on-time correct answers (the current mix sits where
        // stalls cost more than its extra accuracy earns) is taken once the last switch has settled.
        // Risk is a long-run average: weighed at the slow (5 s) rate, so Poisson noise in the tick's rate does not flip
        // the choice back and forth (feasibility, checked at the current and peak rates, keeps it safe).
        const riskDown =
          r.objective === 'max-accuracy' && xNow > 0 && s.nowMs - w.lastSwitchMs >= P.upgradeHoldMs
            ? riskStepDown(
                w,
                xNow,
                r.rate.slow,
                other,
                P,
                w.lambda >= r.rate.slow ? evaluate(w, xNow, w.lambda, other) : undefined,
              )
            : undefined;
        if (riskDown !== undefined) {
          w.position = riskDown.x;
          w.lastSwitchMs = s.nowMs;
          w.upStreak = 0;
          w.reason = `expected effective accuracy: ${riskDown.why}`;
        } else if (r.objective !== 'max-accuracy' && wantNow < xNow) {
          // Cheaper is better for these objectives: move down at once.
          w.position = wantNow;
          w.lastSwitchMs = s.nowMs;
          w.upStreak = 0;
          w.reason = `${r.objective}: cheaper choice holds p99`;
        } else if (want > xNow + 1e-9) {
          w.upStreak++;
          if (w.upStreak >= P.upgradeTicks && s.nowMs - w.lastSwitchMs >= P.upgradeHoldMs) {
            // Far below what the strict plan allows (after a cold start or a passed spike): a full rung per step.
            let next = Math.min(want, snap(xNow + (want - xNow >= 1.5 ? Math.max(1, P.upgradeStep) : P.upgradeStep)));
            // Backoff: not back to where this load broke the target until the backoff has passed.
            const backingOff = s.nowMs < w.ceilingUntilMs && lambdaDown >= CEILING_RATE_SHARE * w.ceilingRps;
            if (backingOff) next = Math.min(next, snap(w.ceiling - 1 / GRID));
            // Reality check: the observed p99 plus how much slower the model predicts the upgrade to be. What the model
            // does not see (stalls, the client's side of a loaded machine, a slow network) adds to latency rather than
            // scaling with service time: scaled, a cheap variant's stall-dominated p99 blocked every upgrade.
            const predNow = evaluate(w, xNow, w.lambda, other).predictedP99Ms;
            const predNext = next > xNow + 1e-9 ? evaluate(w, next, lambdaDown, other).predictedP99Ms : predNow;
            const own = ownP99(r);
            const scaled = Number.isFinite(own) ? own + Math.max(0, predNext - predNow) : 0;
            // Worth it: net of the misses it risks at the slow rate (the peak only has to be held, by the strict plan).
            const gain =
              next > xNow + 1e-9 && r.objective === 'max-accuracy'
                ? riskGain(w, xNow, next, r.rate.slow, other)
                : undefined;
            if (next <= xNow + 1e-9) {
              w.position = xNow;
              w.reason = `steady: backing off for ${((w.ceilingUntilMs - s.nowMs) / 1000).toFixed(0)} s from where p99 broke the target at ${w.ceilingRps.toFixed(0)} req/s (backoff ${(w.backoffMs / 1000).toFixed(0)} s)`;
            } else if (scaled > w.ctx.budgetMs) {
              w.position = xNow;
              w.reason = `steady: upgrade vetoed, observed p99 ${fmt(own)} plus its predicted slowdown is ${fmt(scaled)} > budget ${fmt(w.ctx.budgetMs)}`;
            } else if (gain !== undefined && !gain.worth) {
              w.position = xNow;
              w.reason = `steady: upgrade not worth its risk, ${gain.why}`;
            } else {
              w.position = next;
              w.lastSwitchMs = s.nowMs;
              w.upStreak = 0;
              w.reason = `upgrade: headroom for ${P.upgradeTicks} ticks at ${lambdaDown.toFixed(0)} req/s`;
            }
          } else {
            w.position = xNow;
            w.reason =
              w.upStreak < P.upgradeTicks
                ? `steady: headroom building (${w.upStreak}/${P.upgradeTicks})`
                : 'steady: headroom, holding after the last switch';
          }
        } else {
          w.position = xNow;
          w.upStreak = 0;
          w.reason = 'steady: current choice holds p99';
        }
      }
    }
    if (w.admitFactor < 1) w.admissionRps = w.admitFactor * w.lambda;
    w.position = snap(w.position);
    utilOf.set(w, evaluate(w, w.position, w.lambda, 0).utilisation);
  }

  // 3. Shared replicas: while over, step down where the least (priority-weighted) accuracy is lost per capacity freed.
  // Each route's next step is evaluated once and again only after that route moves.
  const total = () => {
    let t = fixedUtil;
    for (const u of utilOf.values()) t += u;
    return t;
  };
  const STEP = 0.25;
  const nextStep = new Map<Work, { score: number; util: number } | undefined>();
  const stepOf = (w: Work) => {
    if (nextStep.has(w)) return nextStep.get(w);
    let out: { score: number; util: number } | undefined;
    if (!w.hopeless && w.position > 0) {
      const cur = evaluate(w, w.position, w.lambda, 0);
      const dn = evaluate(w, Math.max(0, snap(w.position - STEP)), w.lambda, 0);
      const saved = cur.utilisation - dn.utilisation;
      if (saved > 1e-9) {
        const lost = Math.max(0, accuracyOfEval(cur) - accuracyOfEval(dn));
        out = {
          score: (lost * Math.max(w.lambda, 1e-3) * priorityWeight(w.input.priority)) / saved,
          util: dn.utilisation,
        };
      }
    }
    nextStep.set(w, out);
    return out;
  };
  for (let guard = 0; guard < 400 && total() > P.maxUtilisation; guard++) {
    let best: Work | undefined;
    let bestStep: { score: number; util: number } | undefined;
    for (const w of works) {
      const st = stepOf(w);
      if (st !== undefined && (bestStep === undefined || st.score < bestStep.score)) {
        best = w;
        bestStep = st;
      }
    }
    if (best === undefined || bestStep === undefined) break;
    best.position = Math.max(0, snap(best.position - STEP));
    best.lastSwitchMs = s.nowMs;
    best.upStreak = 0;
    best.reason = `shared replicas over ${(P.maxUtilisation * 100).toFixed(0)}%: stepped down (least accuracy lost per capacity freed)`;
    utilOf.set(best, bestStep.util);
    nextStep.delete(best);
  }

  // 4. Still over at the cheapest choices: admit by priority, shed the rest (sheddable first).
  const overCapacity = total() > P.maxUtilisation;
  if (overCapacity) {
    let room = Math.max(0, P.maxUtilisation - fixedUtil);
    for (const w of [...works].sort(
      (a, b) => b.input.priority - a.input.priority || a.input.name.localeCompare(b.input.name),
    )) {
      if (w.hopeless) continue;
      const u = utilOf.get(w) ?? 0;
      if (u <= room) {
        room -= u;
        continue;
      }
      const share = u > 0 ? room / u : 0;
      w.admissionRps = Math.min(w.admissionRps, Math.max(0, w.lambda * share));
      w.reason = `overload: admitting ${w.admissionRps.toFixed(0)} of ${w.lambda.toFixed(0)} req/s (priority ${w.input.priority}), shedding the rest`;
      utilOf.set(w, u * share);
      room = 0;
    }
  }

  // Final predictions with the final load, decisions, and knobs.
  const decisions = new Map<string, Decision>();
  const states = new Map<string, RouteEngineState>();
  const knobs = new Map<string, { maxBatch: number; maxQueueDelayMs: number }>();
  const setKnobs = (model: string, variant: string, maxBatch: number, maxQueueDelayMs: number) => {
    const k = `${model}/${variant}`;
    const prev = knobs.get(k);
    knobs.set(
      k,
      prev === undefined
        ? { maxBatch, maxQueueDelayMs }
        : {
            maxBatch: Math.min(prev.maxBatch, maxBatch),
            maxQueueDelayMs: Math.min(prev.maxQueueDelayMs, maxQueueDelayMs),
          },
    );
  };

  for (const w of works) {
    const r = w.input;
    const inputs = {
      rateFast: r.rate.fast,
      rateSlow: r.rate.slow,
      burstiness: r.rate.burstiness,
      queuedRows: r.queuedRows,
      observedP99Ms: r.observedP99Ms,
      observedSinceSwitchP99Ms: r.observedSinceSwitchP99Ms,
      capacityRps: 0,
      replicas: s.slots,
      overheadMs: r.overheadMs,
      correction: w.correction,
      missRiskScale: w.calib.scale,
      gatewayUtilisation: s.gatewayUtilisation,
      replicaUtilisation: s.replicaUtilisation,
    };
    if (w.hopeless) {
      // Probe on the fastest allowed variant: the one most likely to answer in time.
      const models = s.variants.get(r.model);
      let fallback = r.allowed[0] ?? '';
      let fastest = Number.POSITIVE_INFINITY;
      for (const name of r.allowed) {
        const v = models?.get(name);
        const t = v === undefined ? Number.POSITIVE_INFINITY : (v.table.p99[1] as number);
        if (t < fastest) {
          fastest = t;
          fallback = name;
        }
      }
      decisions.set(
        r.name,
        makeDecision(
          r,
          s,
          [{ variant: fallback, share: 1 }],
          1,
          0,
          w.admissionRps,
          Number.POSITIVE_INFINITY,
          Number.NaN,
          Number.NaN,
          w.reason,
          inputs,
        ),
      );
      states.set(r.name, {
        position: Number.NaN,
        upStreak: 0,
        lastSwitchMs: w.lastSwitchMs,
        correction: w.correction,
        ladder: [],
        admitFactor: 1,
        lastBreachMs: w.lastBreachMs,
        ceiling: Number.POSITIVE_INFINITY,
        ceilingRps: 0,
        ceilingUntilMs: Number.NEGATIVE_INFINITY,
        backoffMs: w.backoffMs,
        missesSeen: w.calib.missesSeen,
        missesExpected: w.calib.missesExpected,
        riskAtMs: s.nowMs,
        // Probes are not checked against the model (nothing can hold the target): see calibrateRisk's call above.
        riskPerRequest: 0,
      });
      continue;
    }
    const own = utilOf.get(w) ?? 0;
    const other = total() - own;
    const lambdaAdmitted = Math.min(w.lambda, w.admissionRps);
    const e = evaluate(w, w.position, lambdaAdmitted, other);
    const lowest = w.ladder[Math.floor(w.position)] as VariantModel;
    const cap = capacityRps(lowest, batchLimit(lowest, w.ctx.overheadMs, w.ctx.budgetMs, w.correction), {
      slots: s.slots,
      otherUtilisation: other,
      maxUtilisation: P.maxUtilisation,
    });
    const delay =
      r.objective === 'max-accuracy' ? 0 : Math.max(0, Math.min(5, (w.ctx.budgetMs - e.predictedP99Ms) / 2));
    e.shares.forEach((sh, i) => {
      setKnobs(r.model, sh.variant, Math.max(1, (i === 0 ? e.loLimit : e.hiLimit) || e.maxBatch), delay);
    });
    inputs.capacityRps = cap;
    const reason = `${w.ladderNote === '' ? '' : `${w.ladderNote}; `}${w.reason} [${mixName(e.shares)}, predicted p99 ${fmt(e.predictedP99Ms)} of ${r.slo.p99Ms} ms]`;
    decisions.set(
      r.name,
      makeDecision(
        r,
        s,
        e.shares,
        e.maxBatch,
        delay,
        w.admissionRps,
        e.predictedP99Ms,
        e.accuracy,
        e.costPerMillion,
        reason,
        inputs,
        (w.ladder[0] as VariantModel).name,
      ),
    );
    states.set(r.name, {
      position: w.position,
      upStreak: w.upStreak,
      lastSwitchMs: w.lastSwitchMs,
      correction: w.correction,
      ladder: w.ladder.map((v) => v.name),
      admitFactor: w.admitFactor,
      lastBreachMs: w.lastBreachMs,
      ceiling: w.ceiling,
      ceilingRps: w.ceilingRps,
      ceilingUntilMs: w.ceilingUntilMs,
      backoffMs: w.backoffMs,
      missesSeen: w.calib.missesSeen,
      missesExpected: w.calib.missesExpected,
      riskAtMs: s.nowMs,
      // The unscaled model's expectation: calibration compares what happens with it.
      riskPerRequest: missRisk(e.predictedP99Ms, e.utilisation + e.other, r.slo.p99Ms, P),
    });
  }

  for (const f of fixed) {
    const r = f.input;
    const pol = r.policy as Extract<RouteKind, { kind: 'fixed' }>;
    // A fixed policy's knobs join the others for its variant, so an adaptive route sharing it cannot undo them.
    if (f.variant !== undefined)
      setKnobs(r.model, pol.variant, Math.max(1, Math.min(f.variant.maxBatch, pol.maxBatch)), pol.maxQueueDelayMs);
    const inputs = {
      rateFast: r.rate.fast,
      rateSlow: r.rate.slow,
      burstiness: r.rate.burstiness,
      queuedRows: r.queuedRows,
      observedP99Ms: r.observedP99Ms,
      observedSinceSwitchP99Ms: r.observedSinceSwitchP99Ms,
      capacityRps: 0,
      replicas: s.slots,
      overheadMs: r.overheadMs,
      correction: 1,
      missRiskScale: 1,
      gatewayUtilisation: s.gatewayUtilisation,
      replicaUtilisation: s.replicaUtilisation,
    };
    let predicted = Number.NaN;
    let cost = Number.NaN;
    if (f.variant !== undefined) {
      const other = total() - f.utilisation;
      const v = f.variant;
      const ctx: LoadContext = {
        slots: s.slots,
        otherUtilisation: other,
        burstiness: r.rate.burstiness,
        overheadMs: r.overheadMs,
        correction: 1,
        maxUtilisation: 1,
        budgetMs: Number.POSITIVE_INFINITY,
      };
      const p = plan(
        { ...v, maxBatch: Math.min(v.maxBatch, pol.maxBatch) },
        Math.max(r.rate.instant, r.rate.fast),
        ctx,
      );
      predicted = p.predictedP99Ms;
      cost = costPerMillion(v, p.batch);
      inputs.capacityRps = capacityRps(v, Math.min(v.maxBatch, pol.maxBatch), {
        slots: s.slots,
        otherUtilisation: other,
        maxUtilisation: 1,
      });
    }
    decisions.set(
      r.name,
      makeDecision(
        r,
        s,
        [{ variant: pol.variant, share: 1 }],
        pol.maxBatch,
        pol.maxQueueDelayMs,
        Number.POSITIVE_INFINITY,
        predicted,
        f.variant?.accuracy ?? Number.NaN,
        cost,
        'fixed by the route policy',
        inputs,
      ),
    );
    states.set(r.name, r.state);
  }
  const underPressure = overCapacity || works.some((w) => !w.hopeless && w.admitFactor < 1);
  return { decisions, states, knobs, underPressure };
}

function utilisationAt(v: VariantModel, lambda: number, slots: number, maxBatch: number): number {
  const limit = Math.max(1, Math.min(v.maxBatch, maxBatch));
  let b = 1;
  for (let i = 0; i < 12; i++) {
    const next = Math.min(limit, Math.max(1, Math.ceil((lambda * (v.table.p50[b] as number)) / 1000 / slots)));
    if (next === b) break;
    b = next;
  }
  return (lambda * (v.table.p50[b] as number)) / b / 1000 / slots;
}

function sameLadder(a: readonly VariantModel[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v.name === b[i]);
}

function makeDecision(
  r: RouteInput,
  s: EngineSnapshot,
  variants: VariantShare[],
  maxBatch: number,
  maxQueueDelayMs: number,
  admissionRps: number,
  predictedP99Ms: number,
  accuracy: number,
  cost: number,
  reason: string,
  inputs: Decision['inputs'],
  fallbackVariant?: string,
): Decision {
  // One literal with every field (no spreads, no later additions): the shape stays stable and cheap.
  return {
    route: r.name,
    model: r.model,
    variants,
    maxBatch,
    maxQueueDelayMs,
    admissionRps,
    predictedP99Ms,
    accuracy,
    costPerMillion: cost,
    reason,
    inputs,
    atMs: s.nowMs,
    at: s.at,
    fallbackVariant,
  };
}
