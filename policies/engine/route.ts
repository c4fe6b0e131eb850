// An adaptive route while a decision is made, and its preparation (decide() step 1): the latency correction, the
// risk calibration, the ladder, and the position carried over to it.
import type { VariantModel } from '../latency-model.js';
import { learnCorrection } from './correction.js';
import { createPlanner, type RoutePlanner } from './evaluation.js';
import { explain } from './explanations.js';
import { buildLadder, carryPosition, sameLadder } from './ladder.js';
import { freshEvidence, freshLoad } from './overload.js';
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
  /**
   * Set when the route plans on fresh evidence after an overload (overload.ts, freshEvidence): 'passed' while
   * the overload rule's conditions hold, 'recovered' for FRESH_EVIDENCE_MS after the recovery from it.
   */
  readonly freshEvidence?: 'passed' | 'recovered';
  /** Utilisation of the route alone at its position, and at the cheapest rung (shared capacity). */
  utilisation: number;
  cheapestUtilisation: number;
  /** Admission rate (req/s); infinite when not limited. */
  admissionRps: number;
  /** Why the route is where it is (the last rule or step that moved or held it). */
  reason: string;
}

/** A surge in the latency window: the peak tick rate over SURGE_OVER_SLOW_RATE x the 5 s average. */
function surgeInWindow(input: RouteInput): boolean {
  return input.rate.peak > SURGE_OVER_SLOW_RATE * Math.max(input.rate.slow, 1);
}

/** What a route plans on: its rate now, the burstiness of its arrivals and the gateway's overhead. */
export interface Evidence {
  readonly rateNowRps: number;
  readonly burstiness: number;
  readonly overheadMs: number;
}

/** The averages: max(instant, fast), the 2 s burstiness, the 5 s overhead. */
export function averageEvidence(input: RouteInput): Evidence {
  return {
    rateNowRps: Math.max(input.rate.instant, input.rate.fast),
    burstiness: input.rate.burstiness,
    overheadMs: input.overheadMs,
  };
}

/**
 * Prepares a route on the averages; after an overload (overload.ts, freshEvidence) prepares it again on fresh evidence
 * when that is lower (its ladder too: an overhead the overload left in the window may have pushed variants off it).
 */
export function prepareRoute(
  input: RouteInput,
  snapshot: EngineSnapshot,
  models: ReadonlyMap<string, VariantModel>,
): AdaptiveRoute {
  const averages = averageEvidence(input);
  const route = prepareOn(input, snapshot, models, averages);
  if (!route.servable) return route;
  const fresh = freshEvidence(route, snapshot);
  if (fresh === undefined) return route;
  const evidence = freshLoad(input);
  const lower =
    evidence.rateNowRps < averages.rateNowRps ||
    evidence.burstiness < averages.burstiness ||
    evidence.overheadMs < averages.overheadMs;
  return { ...(lower ? prepareOn(input, snapshot, models, evidence) : route), freshEvidence: fresh };
}

function prepareOn(
  input: RouteInput,
  snapshot: EngineSnapshot,
  models: ReadonlyMap<string, VariantModel>,
  evidence: Evidence,
): AdaptiveRoute {
  const params = snapshot.params;
  const surge = surgeInWindow(input);
  const correction = learnCorrection(input, snapshot, surge);
  // Nor is the risk learnt from a route nothing could serve (its probes were expected to miss; an empty ladder).
  const learnRisk = !surge && input.state.ladder.length > 0;
  const calibration = calibrateRisk(input.state, input.outcomes, snapshot.nowMs, learnRisk);
  const budgetMs = (1 - params.margin) * input.slo.p99Ms;
  const variants = input.allowed.map((n) => models.get(n)).filter((v): v is VariantModel => v !== undefined);
  // Eligibility caps the gateway's overhead at half the budget: an overhead spike is no reason to give up the
  // variants (observed breaches and admission handle it), only a model too slow for the SLO is.
  const overheadMs = Math.min(evidence.overheadMs, budgetMs / 2);
  const ladder = buildLadder(variants, input.slo.minAccuracy, overheadMs, budgetMs, correction);
  const state: EngineState = { ...input.state, correction };
  const ladderNote = carryOver(state, input.state.ladder, ladder, models);
  state.ladder = ladder.map((v) => v.name);
  state.missesSeen = calibration.missesSeen;
  state.missesExpected = calibration.missesExpected;
  state.riskAtMs = snapshot.nowMs;
  const { rateNowRps } = evidence;
  const plannerInput = {
    slots: snapshot.slots,
    burstiness: evidence.burstiness,
    overheadMs: evidence.overheadMs,
    correction,
    p99Ms: input.slo.p99Ms,
    maxCostPerMillion: input.slo.maxCostPerMillion,
  };
  return {
    input,
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

/** Carries the position over to a changed ladder (see carryPosition); returns what changed, for the reason, or ''. */
function carryOver(
  state: EngineState,
  previous: readonly string[],
  ladder: readonly VariantModel[],
  models: ReadonlyMap<string, VariantModel>,
): string {
  if (sameLadder(ladder, previous) || !Number.isFinite(state.position) || ladder.length === 0) return '';
  const carried = carryPosition(state.position, previous, ladder, models);
  state.position = carried.position;
  const ladderNote = explain.ladderChange(carried.gone, carried.added);
  // A changed ladder renumbers positions: the backoff ceiling no longer points at the same mix.
  if (ladderNote !== '') {
    state.ceiling = Number.POSITIVE_INFINITY;
    state.ceilingUntilMs = Number.NEGATIVE_INFINITY;
  }
  return ladderNote;
}
