// The route's objective over feasible positions, and the accuracy-vs-misses trade that max-accuracy weighs
// (docs/engine.md, "Objectives" and "Miss risk").
import { accuracyOfEvaluation, type Evaluation, evaluate } from './evaluation.js';
import { explainRiskTrade } from './explanations.js';
import { GRID, ladderAccuracy, snap } from './ladder.js';
import type { EngineParams } from './params.js';
import { missRisk } from './risk.js';
import type { AdaptiveRoute } from './route.js';

/** Expected miss share of an evaluation under the route's (calibrated) stall model. */
export function riskOf(route: AdaptiveRoute, evaluation: Evaluation): number {
  const utilisation = evaluation.utilisation + evaluation.otherUtilisation;
  return missRisk(evaluation.predictedP99Ms, utilisation, route.input.slo.p99Ms, route.stalls);
}

/** Accuracy x the chance to answer in time: the share of offered requests answered correctly and on time. */
export function expectedAccuracy(route: AdaptiveRoute, evaluation: Evaluation): number {
  if (!evaluation.ok) return Number.NEGATIVE_INFINITY;
  return accuracyOfEvaluation(evaluation) * (1 - riskOf(route, evaluation));
}

/**
 * The position the objective prefers among feasible ones up to `maxPosition`. max-accuracy maximises expected
 * effective accuracy over quarter rungs, preferring the higher position unless a lower one gains at least the
 * hysteresis; utility trades it against cost over the whole grid; min-cost takes the cheapest rung.
 */
export function preferred(
  route: AdaptiveRoute,
  maxPosition: number,
  rateRps: number,
  otherUtilisation: number,
  params: EngineParams,
): number {
  const objective = route.input.objective;
  if (objective === 'min-cost') return 0;
  if (objective === 'max-accuracy') return preferredForAccuracy(route, maxPosition, rateRps, otherUtilisation, params);
  let best = 0;
  let bestUtility = Number.NEGATIVE_INFINITY;
  for (let g = 0; g <= Math.round(maxPosition * GRID); g++) {
    const evaluation = evaluate(route.planner, g / GRID, rateRps, otherUtilisation);
    const utility = expectedAccuracy(route, evaluation) - route.input.utilityCostWeight * evaluation.costPerMillion;
    if (utility > bestUtility + 1e-12) {
      bestUtility = utility;
      best = g / GRID;
    }
  }
  return best;
}

function preferredForAccuracy(
  route: AdaptiveRoute,
  maxPosition: number,
  rateRps: number,
  otherUtilisation: number,
  params: EngineParams,
): number {
  let best = maxPosition;
  let bestUtility = expectedAccuracy(route, evaluate(route.planner, maxPosition, rateRps, otherUtilisation));
  for (let g = Math.ceil(maxPosition * 4 - 1e-9) - 1; g >= 0; g--) {
    // Expected accuracy never exceeds accuracy, which only falls further down the ladder: once a position's
    // accuracy cannot beat the best by the hysteresis, no lower one can.
    if (ladderAccuracy(route.planner.ladder, g / 4) <= bestUtility + params.riskHysteresis) break;
    const utility = expectedAccuracy(route, evaluate(route.planner, g / 4, rateRps, otherUtilisation));
    if (utility > bestUtility + params.riskHysteresis) {
      bestUtility = utility;
      best = g / 4;
    }
  }
  return best;
}

/** Whether `upper` (above `lower`) gains expected accuracy net of its risk at a load, and the trade in words. */
export function riskGain(
  route: AdaptiveRoute,
  lower: number,
  upper: number,
  rateRps: number,
  otherUtilisation: number,
): { readonly worth: boolean; readonly why: string } {
  const lowerEvaluation = evaluate(route.planner, lower, rateRps, otherUtilisation);
  const upperEvaluation = evaluate(route.planner, upper, rateRps, otherUtilisation);
  const lowerUtility = expectedAccuracy(route, lowerEvaluation);
  const upperUtility = expectedAccuracy(route, upperEvaluation);
  const why = explainRiskTrade(
    upperEvaluation.shares,
    accuracyOfEvaluation(upperEvaluation) - accuracyOfEvaluation(lowerEvaluation),
    riskOf(route, upperEvaluation) - riskOf(route, lowerEvaluation),
  );
  return { worth: upperUtility > lowerUtility, why };
}

/**
 * A lower position with more expected on-time correct answers than `position`, if any (searched only when the next
 * quarter rung down gains). `atLeast` is the current choice planned at a rate no lower than `rateRps` (risk only
 * grows with load): it bounds the risk without a plan of its own.
 */
export function riskStepDown(
  route: AdaptiveRoute,
  position: number,
  rateRps: number,
  otherUtilisation: number,
  params: EngineParams,
  atLeast?: Evaluation,
): { readonly position: number; readonly trade: string } | undefined {
  const { planner } = route;
  const down = Math.max(0, snap(Math.ceil(position * 4 - 1e-9) / 4 - 0.25));
  // The step down gains at most the current risk less the accuracy it gives up: when that cannot reach the
  // hysteresis, nothing below needs planning.
  const lost = ladderAccuracy(planner.ladder, position) - ladderAccuracy(planner.ladder, down);
  const bound = atLeast ?? evaluate(planner, position, rateRps, otherUtilisation);
  if (bound.ok && accuracyOfEvaluation(bound) * riskOf(route, bound) <= lost + params.riskHysteresis) return undefined;
  const downEvaluation = evaluate(planner, down, rateRps, otherUtilisation);
  const nowEvaluation = bound === atLeast ? evaluate(planner, position, rateRps, otherUtilisation) : bound;
  if (expectedAccuracy(route, downEvaluation) <= expectedAccuracy(route, nowEvaluation) + params.riskHysteresis)
    return undefined;
  return {
    position: preferred(route, down, rateRps, otherUtilisation, params),
    trade: riskGain(route, down, position, rateRps, otherUtilisation).why,
  };
}
