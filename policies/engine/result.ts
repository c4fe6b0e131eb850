// The result of a decision (decide() step 5): each route's decision with its final prediction at the final load,
// the batch knobs per variant, and the state carried to the next tick.
import type { Decision } from '../../core/decision.js';
import { variantKey } from '../../core/types.js';
import type { BatchKnobs } from '../../runtime/batch-policy.js';
import { batchLimit, capacityRps, type VariantModel } from '../latency-model.js';
import { decisionInputs, makeDecision } from './decision.js';
import { budgetMs, evaluate } from './evaluation.js';
import { explain } from './explanations.js';
import { type FixedRoute, fixedRouteDecision } from './fixed-routes.js';
import { missRisk } from './risk.js';
import type { AdaptiveRoute } from './route.js';
import { type SharedLoad, totalUtilisation } from './shared-capacity.js';
import type { EngineResult, EngineSnapshot, RouteEngineState } from './types.js';

/**
 * Batch knobs per variant ("model/variant"): a variant several routes use gets the smallest limit and delay (the
 * tightest route using it), and the sum of their expected arrivals (the batch policy waits only when some are due).
 */
class KnobTable {
  readonly byVariant = new Map<string, BatchKnobs>();

  set(model: string, variant: string, maxBatch: number, maxQueueDelayMs: number, arrivalRps: number): void {
    const key = variantKey(model, variant);
    const prev = this.byVariant.get(key);
    this.byVariant.set(
      key,
      prev === undefined
        ? { maxBatch, maxQueueDelayMs, arrivalRps }
        : {
            maxBatch: Math.min(prev.maxBatch, maxBatch),
            maxQueueDelayMs: Math.min(prev.maxQueueDelayMs, maxQueueDelayMs),
            arrivalRps: (prev.arrivalRps ?? 0) + arrivalRps,
          },
    );
  }
}

export function buildResult(
  snapshot: EngineSnapshot,
  adaptive: readonly AdaptiveRoute[],
  fixed: readonly FixedRoute[],
  load: SharedLoad,
  overCapacity: boolean,
): EngineResult {
  const decisions = new Map<string, Decision>();
  const states = new Map<string, RouteEngineState>();
  const knobs = new KnobTable();
  const total = totalUtilisation(load);
  const shadow = shadowWork(snapshot, adaptive);
  for (const route of adaptive) {
    const decision = route.servable
      ? adaptiveDecision(route, snapshot, total, knobs, shadow)
      : unservableDecision(route, snapshot);
    decisions.set(route.input.name, decision);
    states.set(route.input.name, route.state);
  }
  for (const fixedRoute of fixed) {
    // A fixed policy's knobs join the others for its variant, so an adaptive route sharing it cannot undo them.
    if (fixedRoute.variant !== undefined) {
      const maxBatch = Math.max(1, Math.min(fixedRoute.variant.maxBatch, fixedRoute.policy.maxBatch));
      const rateRps = Math.max(fixedRoute.input.rate.instant, fixedRoute.input.rate.fast);
      knobs.set(
        fixedRoute.input.model,
        fixedRoute.policy.variant,
        maxBatch,
        fixedRoute.policy.maxQueueDelayMs,
        rateRps,
      );
    }
    decisions.set(fixedRoute.input.name, fixedRouteDecision(fixedRoute, snapshot, total));
    states.set(fixedRoute.input.name, fixedRoute.input.state);
  }
  const underPressure = overCapacity || adaptive.some((route) => route.servable && route.state.admitFactor < 1);
  return { decisions, states, knobs: knobs.byVariant, underPressure };
}

/** Utilisation of the shared replicas by extra work (a rollout's shadow runs), and the variants running it. */
interface ShadowWork {
  readonly utilisation: number;
  readonly variants: readonly string[];
}

/** Shadow work below this share of the replicas is not worth a word in a reason. */
const SHADOW_WORTH_NAMING = 0.005;

function shadowWork(snapshot: EngineSnapshot, adaptive: readonly AdaptiveRoute[]): ShadowWork {
  const variants: string[] = [];
  for (const [model, vs] of snapshot.variants)
    for (const v of vs.values())
      if ((v.extraWorkShare ?? 0) > 0)
        variants.push(`${model}/${v.name} shadow ${Math.round((v.extraWorkShare ?? 0) * 100)}%`);
  if (variants.length === 0) return { utilisation: 0, variants };
  let utilisation = 0;
  for (const route of adaptive) {
    if (!route.servable) continue;
    const admittedRps = Math.min(route.rateNowRps, route.admissionRps);
    utilisation += evaluate(route.planner, route.state.position, admittedRps, 0).extraUtilisation;
  }
  return { utilisation, variants };
}

/** The reason names the shadow work when the route is held below its best choice while it takes capacity. */
function withShadowNote(route: AdaptiveRoute, shadow: ShadowWork): string {
  const top = route.planner.ladder.length - 1;
  const held = route.state.position < top - 1e-9 || Number.isFinite(route.admissionRps);
  if (!held || shadow.utilisation < SHADOW_WORTH_NAMING) return route.reason;
  return `${route.reason}; ${explain.shadowWork(shadow.utilisation, shadow.variants)}`;
}

/**
 * A servable route's decision: its position evaluated at the admitted rate against everything else. Routes that
 * never wait for fuller batches (max-accuracy) get no queue delay; the others wait up to half their slack (<= 5 ms),
 * and their prediction includes that wait whenever their own arrivals make it apply.
 */
function adaptiveDecision(
  route: AdaptiveRoute,
  snapshot: EngineSnapshot,
  total: number,
  knobs: KnobTable,
  shadow: ShadowWork,
): Decision {
  const input = route.input;
  const { state, planner } = route;
  const params = snapshot.params;
  const otherUtilisation = total - route.utilisation;
  const admittedRps = Math.min(route.rateNowRps, route.admissionRps);
  const final = evaluate(planner, state.position, admittedRps, otherUtilisation);
  const budget = budgetMs(planner);
  const lowest = planner.ladder[Math.floor(state.position)] as VariantModel;
  const capacity = capacityRps(lowest, batchLimit(lowest, input.overheadMs, budget, state.correction), {
    slots: snapshot.slots,
    otherUtilisation,
    maxUtilisation: params.maxUtilisation,
  });
  const delay = input.objective === 'max-accuracy' ? 0 : Math.max(0, Math.min(5, (budget - final.predictedP99Ms) / 2));
  final.shares.forEach((share, i) => {
    const limit = (i === 0 ? final.lowerBatchLimit : final.upperBatchLimit) || final.maxBatch;
    knobs.set(input.model, share.variant, Math.max(1, limit), delay, admittedRps * share.share);
  });
  const waitMs = (admittedRps * delay) / 1000 >= 1 ? delay : 0;
  // The unscaled model's expectation: the next tick's calibration compares what happens with it.
  state.riskPerRequest = missRisk(
    final.predictedP99Ms,
    final.utilisation + final.otherUtilisation,
    input.slo.p99Ms,
    params,
  );
  return makeDecision(input, snapshot, {
    variants: final.shares,
    maxBatch: final.maxBatch,
    maxQueueDelayMs: delay,
    admissionRps: route.admissionRps,
    predictedP99Ms: final.predictedP99Ms + waitMs,
    accuracy: final.accuracy,
    costPerMillion: final.costPerMillion,
    reason: explain.decision(
      route.ladderNote,
      withShadowNote(route, shadow),
      final.shares,
      final.predictedP99Ms + waitMs,
      input,
    ),
    inputs: decisionInputs(input, snapshot, state.correction, route.calibration.scale, capacity),
    fallbackVariant: (planner.ladder[0] as VariantModel).name,
  });
}

/** A route nothing can serve: probed on its fastest allowed variant (the most likely to answer in time). */
function unservableDecision(route: AdaptiveRoute, snapshot: EngineSnapshot): Decision {
  const input = route.input;
  const models = snapshot.variants.get(input.model);
  let probe = input.allowed[0] ?? '';
  let fastestMs = Number.POSITIVE_INFINITY;
  for (const name of input.allowed) {
    const v = models?.get(name);
    const ms = v === undefined ? Number.POSITIVE_INFINITY : (v.table.p99[1] as number);
    if (ms < fastestMs) {
      fastestMs = ms;
      probe = name;
    }
  }
  resetUnservable(route);
  return makeDecision(input, snapshot, {
    variants: [{ variant: probe, share: 1 }],
    maxBatch: 1,
    maxQueueDelayMs: 0,
    admissionRps: route.admissionRps,
    predictedP99Ms: Number.POSITIVE_INFINITY,
    accuracy: Number.NaN,
    costPerMillion: Number.NaN,
    reason: route.reason,
    inputs: decisionInputs(input, snapshot, route.state.correction, route.calibration.scale, 0),
    fallbackVariant: undefined,
  });
}

/** The state of a route nothing can serve: no position, ladder or backoff to carry over; its probes expect misses. */
function resetUnservable(route: AdaptiveRoute): void {
  const { state } = route;
  state.position = Number.NaN;
  state.upStreak = 0;
  state.ladder = [];
  state.admitFactor = 1;
  state.ceiling = Number.POSITIVE_INFINITY;
  state.ceilingRps = 0;
  state.ceilingUntilMs = Number.NEGATIVE_INFINITY;
  state.riskPerRequest = 0;
}
