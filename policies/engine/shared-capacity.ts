// The replicas all routes share (decide() steps 3-4): what each route plans against, the greedy step-down while the
// total is over maxUtilisation, and admission by priority when even the cheapest choices are over
// (docs/engine.md, "Shared capacity").
import { accuracyOfEvaluation, evaluate } from './evaluation.js';
import { explain } from './explanations.js';
import { snap } from './ladder.js';
import type { EngineParams } from './params.js';
import type { AdaptiveRoute } from './route.js';

/** The load on the replicas: the servable adaptive routes (each at its utilisation alone) and the fixed routes. */
export interface SharedLoad {
  readonly routes: readonly AdaptiveRoute[];
  readonly fixedUtilisation: number;
}

/** Records each route's load at its current position and at its cheapest rung. */
export function measureLoad(routes: readonly AdaptiveRoute[], fixedUtilisation: number): SharedLoad {
  for (const route of routes) {
    const { state, planner } = route;
    const position = Number.isFinite(state.position) ? Math.min(state.position, planner.ladder.length - 1) : 0;
    route.utilisation = evaluate(planner, position, route.rateNowRps, 0).utilisation;
  }
  for (const route of routes) route.cheapestUtilisation = evaluate(route.planner, 0, route.rateNowRps, 0).utilisation;
  return { routes, fixedUtilisation };
}

export function totalUtilisation(load: SharedLoad): number {
  let total = load.fixedUtilisation;
  for (const route of load.routes) total += route.utilisation;
  return total;
}

/**
 * What a route plans against: less important routes count as if already at their cheapest choice (they yield before
 * it does), routes at least as important with their current load.
 */
export function otherUtilisation(load: SharedLoad, route: AdaptiveRoute): number {
  let total = load.fixedUtilisation;
  for (const other of load.routes) {
    if (other === route) continue;
    const yields = other.input.priority < route.input.priority;
    total += yields ? Math.min(other.utilisation, other.cheapestUtilisation) : other.utilisation;
  }
  return total;
}

/** Share of a step down of the greedy step-down. */
const STEP_DOWN = 0.25;

interface StepDown {
  /** Accuracy lost per utilisation freed, weighted by rate and priority: the lowest steps down first. */
  readonly score: number;
  readonly utilisation: number;
}

/** Sheddable (negative-priority) routes yield first; more important ones later. */
function priorityWeight(priority: number): number {
  return priority < 0 ? 0.05 : 1 + priority;
}

function stepDownOf(route: AdaptiveRoute): StepDown | undefined {
  const position = route.state.position;
  if (!(position > 0)) return undefined;
  const current = evaluate(route.planner, position, route.rateNowRps, 0);
  const down = evaluate(route.planner, Math.max(0, snap(position - STEP_DOWN)), route.rateNowRps, 0);
  const freed = current.utilisation - down.utilisation;
  if (!(freed > 1e-9)) return undefined;
  const lost = Math.max(0, accuracyOfEvaluation(current) - accuracyOfEvaluation(down));
  const score = (lost * Math.max(route.rateNowRps, 1e-3) * priorityWeight(route.input.priority)) / freed;
  return { score, utilisation: down.utilisation };
}

/**
 * While the total is over maxUtilisation, steps down by a quarter rung the route that loses the least
 * (priority-weighted) accuracy per capacity freed. A route's next step is evaluated again only after it moves.
 */
export function shareCapacity(load: SharedLoad, params: EngineParams, nowMs: number): void {
  const steps = new Map<AdaptiveRoute, StepDown | undefined>();
  const stepOf = (route: AdaptiveRoute) => {
    if (!steps.has(route)) steps.set(route, stepDownOf(route));
    return steps.get(route);
  };
  for (let guard = 0; guard < 400 && totalUtilisation(load) > params.maxUtilisation; guard++) {
    let best: AdaptiveRoute | undefined;
    let bestStep: StepDown | undefined;
    for (const route of load.routes) {
      const step = stepOf(route);
      if (step !== undefined && (bestStep === undefined || step.score < bestStep.score)) {
        best = route;
        bestStep = step;
      }
    }
    if (best === undefined || bestStep === undefined) break;
    const { state } = best;
    state.position = Math.max(0, snap(state.position - STEP_DOWN));
    state.lastSwitchMs = nowMs;
    state.upStreak = 0;
    best.reason = explain.sharedStepDown(params.maxUtilisation);
    best.utilisation = bestStep.utilisation;
    steps.delete(best);
  }
}

/**
 * Still over at the cheapest choices: routes are admitted by priority (ties by name), each taking its load while room
 * is left; the first that does not fit gets the share that does, those after it none. Returns whether it was over.
 */
export function admitUnderOverload(load: SharedLoad, params: EngineParams): boolean {
  if (!(totalUtilisation(load) > params.maxUtilisation)) return false;
  let room = Math.max(0, params.maxUtilisation - load.fixedUtilisation);
  const byPriority = [...load.routes].sort(
    (a, b) => b.input.priority - a.input.priority || a.input.name.localeCompare(b.input.name),
  );
  for (const route of byPriority) {
    const utilisation = route.utilisation;
    if (utilisation <= room) {
      room -= utilisation;
      continue;
    }
    const share = utilisation > 0 ? room / utilisation : 0;
    route.admissionRps = Math.min(route.admissionRps, Math.max(0, route.rateNowRps * share));
    route.reason = explain.overload(route.admissionRps, route.rateNowRps, route.input.priority);
    route.utilisation = utilisation * share;
    room = 0;
  }
  return true;
}
