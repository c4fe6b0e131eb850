// The tradeoff engine: decide(snapshot) -> a decision per route. Pure: no I/O, no clock reads, no hidden state (each
// route's state goes in with the snapshot and comes back in the result), so a decision can be replayed offline.
//
// Each adaptive route holds a position on a ladder of its eligible variants, cheapest to most accurate (a rung, or a
// mix of two neighbouring rungs). Every tick (docs/engine.md):
//  1. prepare each route: learn the latency correction, calibrate the miss risk, build the ladder, carry the
//     position over to it (route.ts); fixed routes only add their load (fixed-routes.ts);
//  2. step each route, most important first, against everyone else's load: the first of the named rules with an
//     opinion moves or holds it (route-step.ts, route-rules.ts): down at once, up slowly;
//  3. share capacity: while the routes together overload the replicas, step down the route losing the least
//     priority-weighted accuracy per capacity freed (shared-capacity.ts);
//  4. admit under overload: still over at the cheapest choices, admit by priority and shed the rest;
//  5. build the result: final predictions, batch knobs, and the state for the next tick (result.ts).
import type { VariantModel } from '../latency-model.js';
import { diagnose, shedClassOf } from './bottleneck.js';
import { type FixedRoute, prepareFixedRoute } from './fixed-routes.js';
import { buildResult } from './result.js';
import { type AdaptiveRoute, prepareRoute } from './route.js';
import { ROUTE_RULES } from './route-rules.js';
import { stepRoute, stepUnservable } from './route-step.js';
import { admitUnderOverload, measureLoad, otherUtilisation, shareCapacity } from './shared-capacity.js';
import type { EngineResult, EngineSnapshot } from './types.js';

const NO_VARIANTS: ReadonlyMap<string, VariantModel> = new Map();

export function decide(snapshot: EngineSnapshot): EngineResult {
  const params = snapshot.params;

  // 1. Prepare each route.
  const adaptive: AdaptiveRoute[] = [];
  const fixed: FixedRoute[] = [];
  for (const input of snapshot.routes) {
    const models = snapshot.variants.get(input.model) ?? NO_VARIANTS;
    if (input.policy.kind === 'fixed') fixed.push(prepareFixedRoute(input, input.policy, models, snapshot.slots));
    else adaptive.push(prepareRoute(input, snapshot, models));
  }
  const servable = adaptive.filter((route) => route.servable);
  const fixedUtilisation = fixed.reduce((total, route) => total + route.utilisation, 0);
  const load = measureLoad(servable, fixedUtilisation);

  // 2. Step each route by priority, against everyone else's current load.
  const bottleneck = diagnose(snapshot);
  const shedClass = shedClassOf(adaptive, bottleneck);
  for (const route of [...adaptive].sort((a, b) => b.input.priority - a.input.priority)) {
    if (!route.servable) stepUnservable(route);
    else stepRoute(route, snapshot, bottleneck, shedClass, otherUtilisation(load, route), ROUTE_RULES);
  }

  // 3. Share capacity: step down where the least (priority-weighted) accuracy is lost per capacity freed.
  shareCapacity(load, params, snapshot.nowMs);

  // 4. Admit under overload: by priority, shedding the rest.
  const overCapacity = admitUnderOverload(load, params);

  // 5. Build the result.
  return buildResult(snapshot, adaptive, fixed, load, overCapacity);
}
