// An adaptive route while a decision is made, and its preparation (decide() step 1): the latency correction, the
// risk calibration, the ladder, and the position carried over to it.
import type { VariantModel } from '../latency-model.js';
import { learnsCorrection, nextCorrection } from './correction.js';
import { createPlanner, type RoutePlanner } from './evaluation.js';
import { explain } from './explanations.js';
import { buildLadder, carryPosition, sameLadder } from './ladder.js';
import { SURGE_OVER_SLOW_RATE } from './params.js';
import { calibrateRisk, type RiskCalibration, type StallModel } from './risk.js';
import type { EngineSnapshot, EngineState, RouteInput } from './types.js';

export interface AdaptiveRoute {
  readonly input: RouteInput;
  /** The route's one mutable state: a copy of input.state, updated by every step, returned in the result. */
  readonly state: EngineState;
  readonly planner: RoutePlanner;
  /** False when the ladder is empty: nothing can meet the SLO, the route is shed but for a probe. */
  readonly servable: boolean;
  /** The rate now, max(instant, fast): what downgrades, shared capacity and admission plan for. */
  readonly rateNowRps: number;
  /** The stall model, scaled by what this route's misses showed (see calibrateRisk). */
  readonly stalls: StallModel;
  readonly calibration: RiskCalibration;
  /** What changed in the ladder since the last tick (for the reason), or ''. */
  readonly ladderNote: string;
  /** Utilisation of the route alone at its position, and at the cheapest rung (shared capacity). */
  utilisation: number;
  cheapestUtilisation: number;
  /** Admission rate (req/s); infinite when not limited. */
  admissionRps: number;
  /** Why the route is where it is (the last rule or step that moved or held it). */
  reason: string;
}

/** A surge in the latency window: the peak tick rate over SURGE_OVER_SLOW_RATE x the 5 s average. */
function surgeInWindow(r: RouteInput): boolean {
  return r.rate.peak > SURGE_OVER_SLOW_RATE * Math.max(r.rate.slow, 1);
}

export function prepareRoute(
  r: RouteInput,
  snapshot: EngineSnapshot,
  models: ReadonlyMap<string, VariantModel>,
): AdaptiveRoute {
  const params = snapshot.params;
  const surge = surgeInWindow(r);
  const correction = learnsCorrection(snapshot.replicaUtilisation, snapshot.gatewayUtilisation, surge)
    ? nextCorrection(r.state.correction, r.observedP99Ms, r.windowPrediction.p99Ms, r.windowPrediction.correction)
    : Math.max(1, r.state.correction * 0.98);
  // Nor is the risk learnt from a route nothing could serve (its probes were expected to miss; an empty ladder).
  const calibration = calibrateRisk(r.state, r.outcomes, snapshot.nowMs, !surge && r.state.ladder.length > 0);
  const budgetMs = (1 - params.margin) * r.slo.p99Ms;
  const variants = r.allowed.map((n) => models.get(n)).filter((v): v is VariantModel => v !== undefined);
  // Eligibility caps the gateway's overhead at half the budget: an overhead spike is no reason to give up the
  // variants (observed breaches and admission handle it), only a model too slow for the SLO is.
  const ladder = buildLadder(variants, r.slo.minAccuracy, Math.min(r.overheadMs, budgetMs / 2), budgetMs, correction);
  const state: EngineState = { ...r.state, correction };
  let ladderNote = '';
  if (!sameLadder(ladder, r.state.ladder) && Number.isFinite(state.position) && ladder.length > 0) {
    const carried = carryPosition(state.position, r.state.ladder, ladder, models);
    state.position = carried.position;
    ladderNote = explain.ladderChange(carried.gone, carried.added);
    // A changed ladder renumbers positions: the backoff ceiling no longer points at the same mix.
    if (ladderNote !== '') {
      state.ceiling = Number.POSITIVE_INFINITY;
      state.ceilingUntilMs = Number.NEGATIVE_INFINITY;
    }
  }
  state.ladder = ladder.map((v) => v.name);
  state.missesSeen = calibration.missesSeen;
  state.missesExpected = calibration.missesExpected;
  state.riskAtMs = snapshot.nowMs;
  const rateNowRps = Math.max(r.rate.instant, r.rate.fast);
  const plannerInput = {
    slots: snapshot.slots,
    burstiness: r.rate.burstiness,
    overheadMs: r.overheadMs,
    correction,
    p99Ms: r.slo.p99Ms,
    maxCostPerMillion: r.slo.maxCostPerMillion,
  };
  return {
    input: r,
    state,
    planner: createPlanner(ladder, plannerInput, params, rateNowRps),
    servable: ladder.length > 0,
    rateNowRps,
    stalls: { stallShare: params.stallShare * calibration.scale, stallMeanMs: params.stallMeanMs },
    calibration,
    ladderNote,
    utilisation: 0,
    cheapestUtilisation: 0,
    admissionRps: Number.POSITIVE_INFINITY,
    reason: '',
  };
}
