// Evaluating a ladder position for one route: the plan of each rung at its share of the rate, against the load of
// everything else (docs/engine.md, "Feasibility"). The planning contexts are mutated per evaluation: no allocation.
import type { VariantShare } from '../../core/decision.js';
import { type LoadContext, plan, planLimit, type VariantModel } from '../latency-model.js';
import { GRID } from './ladder.js';
import type { EngineParams } from './params.js';

export interface Evaluation {
  readonly ok: boolean;
  readonly shares: VariantShare[];
  readonly utilisation: number;
  /** The part of utilisation that is the variants' extra work (a rollout's shadow runs). */
  readonly extraUtilisation: number;
  readonly predictedP99Ms: number;
  readonly accuracy: number;
  readonly costPerMillion: number;
  readonly maxBatch: number;
  /** Batch limit of each rung used (the lower, and the upper of a mix; 0 without one). */
  readonly lowerBatchLimit: number;
  readonly upperBatchLimit: number;
  /** Utilisation of everything else the plan was made against. */
  readonly otherUtilisation: number;
}

/** Normal planning (margin, maxUtilisation), or the stricter planning upgrades need (upgradeMargin, ...). */
export type Planning = 'normal' | 'strict';

interface PlanningContext {
  readonly load: LoadContext & { otherUtilisation: number };
  /** Batch limit per rung (it does not depend on the load). */
  readonly limits: Map<VariantModel, number>;
}

/** What evaluating positions of one route needs, and the evaluations reused within a decision. */
export interface RoutePlanner {
  readonly ladder: readonly VariantModel[];
  readonly maxCostPerMillion: number | undefined;
  /** The route's rate now: evaluations at it with no other load are cached by grid position. */
  readonly rateNowRps: number;
  readonly normal: PlanningContext;
  readonly strict: PlanningContext;
  readonly alone: Map<number, Evaluation>;
}

export interface PlannerInput {
  readonly slots: number;
  readonly burstiness: number;
  readonly overheadMs: number;
  readonly correction: number;
  readonly p99Ms: number;
  readonly maxCostPerMillion: number | undefined;
}

export function createPlanner(
  ladder: readonly VariantModel[],
  input: PlannerInput,
  params: EngineParams,
  rateNowRps: number,
): RoutePlanner {
  // Plain literals, not spreads: this runs for every route on every tick.
  const { slots, burstiness, overheadMs, correction } = input;
  const normal = {
    slots,
    burstiness,
    overheadMs,
    correction,
    maxUtilisation: params.maxUtilisation,
    budgetMs: (1 - params.margin) * input.p99Ms,
    otherUtilisation: 0,
  };
  const strict = {
    slots,
    burstiness,
    overheadMs,
    correction,
    maxUtilisation: Math.min(params.upgradeUtilisation, params.maxUtilisation),
    budgetMs: (1 - params.upgradeMargin) * input.p99Ms,
    otherUtilisation: 0,
  };
  return {
    ladder,
    maxCostPerMillion: input.maxCostPerMillion,
    rateNowRps,
    normal: { load: normal, limits: new Map() },
    strict: { load: strict, limits: new Map() },
    alone: new Map(),
  };
}

/** The planning budget (normal planning): (1 - margin) x the p99 target. */
export function budgetMs(planner: RoutePlanner): number {
  return planner.normal.load.budgetMs;
}

export function evaluate(
  planner: RoutePlanner,
  position: number,
  rateRps: number,
  otherUtilisation: number,
  planning: Planning = 'normal',
): Evaluation {
  if (otherUtilisation !== 0 || planning !== 'normal' || rateRps !== planner.rateNowRps)
    return evaluateUncached(planner, position, rateRps, otherUtilisation, planning);
  const key = Math.round(position * GRID);
  let evaluation = planner.alone.get(key);
  if (evaluation === undefined) {
    evaluation = evaluateUncached(planner, position, rateRps, otherUtilisation, planning);
    planner.alone.set(key, evaluation);
  }
  return evaluation;
}

function evaluateUncached(
  planner: RoutePlanner,
  position: number,
  rateRps: number,
  otherUtilisation: number,
  planning: Planning,
): Evaluation {
  const { load, limits } = planning === 'strict' ? planner.strict : planner.normal;
  const limitOf = (v: VariantModel) => {
    let limit = limits.get(v);
    if (limit === undefined) {
      limit = planLimit(v, load);
      limits.set(v, limit);
    }
    return limit;
  };
  const rung = Math.floor(position + 1e-9);
  const upperShare = position - rung;
  const lower = planner.ladder[rung] as VariantModel;
  const maxCost = planner.maxCostPerMillion;
  if (upperShare < 1e-6 || rung + 1 >= planner.ladder.length) {
    load.otherUtilisation = otherUtilisation;
    const single = plan(lower, rateRps, load, limitOf(lower));
    return {
      ok: single.ok && (maxCost === undefined || single.costPerMillion <= maxCost),
      shares: [{ variant: lower.name, share: 1 }],
      utilisation: single.utilisation,
      extraUtilisation: single.extraUtilisation,
      predictedP99Ms: single.predictedP99Ms,
      accuracy: lower.accuracy,
      costPerMillion: single.costPerMillion,
      maxBatch: single.maxBatch,
      lowerBatchLimit: single.maxBatch,
      upperBatchLimit: 0,
      otherUtilisation,
    };
  }
  return evaluateMix(planner, rung, upperShare, rateRps, otherUtilisation, load, limitOf);
}

/** A mix of two rungs: each planned at its share of the rate, seeing the other rung's load. */
function evaluateMix(
  planner: RoutePlanner,
  rung: number,
  upperShare: number,
  rateRps: number,
  otherUtilisation: number,
  load: LoadContext & { otherUtilisation: number },
  limitOf: (v: VariantModel) => number,
): Evaluation {
  const lower = planner.ladder[rung] as VariantModel;
  const upper = planner.ladder[rung + 1] as VariantModel;
  const lowerRps = rateRps * (1 - upperShare);
  const upperRps = rateRps * upperShare;
  const lowerLimit = limitOf(lower);
  const upperLimit = limitOf(upper);
  load.otherUtilisation = otherUtilisation;
  const lowerAlone = plan(lower, lowerRps, load, lowerLimit).utilisation;
  const upperAlone = plan(upper, upperRps, load, upperLimit).utilisation;
  load.otherUtilisation = otherUtilisation + upperAlone;
  const lowerPlan = plan(lower, lowerRps, load, lowerLimit);
  load.otherUtilisation = otherUtilisation + lowerAlone;
  const upperPlan = plan(upper, upperRps, load, upperLimit);
  const cost = (1 - upperShare) * lowerPlan.costPerMillion + upperShare * upperPlan.costPerMillion;
  const maxCost = planner.maxCostPerMillion;
  return {
    ok: lowerPlan.ok && upperPlan.ok && (maxCost === undefined || cost <= maxCost),
    shares: [
      { variant: lower.name, share: round3(1 - upperShare) },
      { variant: upper.name, share: round3(upperShare) },
    ],
    utilisation: lowerPlan.utilisation + upperPlan.utilisation,
    extraUtilisation: lowerPlan.extraUtilisation + upperPlan.extraUtilisation,
    predictedP99Ms: Math.max(lowerPlan.predictedP99Ms, upperPlan.predictedP99Ms),
    accuracy: (1 - upperShare) * lower.accuracy + upperShare * upper.accuracy,
    costPerMillion: cost,
    maxBatch: Math.min(lowerPlan.maxBatch, upperPlan.maxBatch),
    lowerBatchLimit: lowerPlan.maxBatch,
    upperBatchLimit: upperPlan.maxBatch,
    otherUtilisation,
  };
}

function round3(share: number): number {
  return Math.round(share * 1000) / 1000;
}

/** Accuracy of an evaluation, with an unknown one as 0. */
export function accuracyOfEvaluation(evaluation: Evaluation): number {
  return Number.isNaN(evaluation.accuracy) ? 0 : evaluation.accuracy;
}

/** Highest feasible position (grid of 1/GRID rung) at this load; NaN when not even the cheapest rung is. */
export function highestFeasible(
  planner: RoutePlanner,
  rateRps: number,
  otherUtilisation: number,
  planning: Planning = 'normal',
): number {
  const top = (planner.ladder.length - 1) * GRID;
  if (!evaluate(planner, 0, rateRps, otherUtilisation, planning).ok) return Number.NaN;
  if (evaluate(planner, top / GRID, rateRps, otherUtilisation, planning).ok) return top / GRID;
  let feasible = 0;
  let infeasible = top;
  while (infeasible - feasible > 1) {
    const mid = (feasible + infeasible) >> 1;
    if (evaluate(planner, mid / GRID, rateRps, otherUtilisation, planning).ok) feasible = mid;
    else infeasible = mid;
  }
  return feasible / GRID;
}
