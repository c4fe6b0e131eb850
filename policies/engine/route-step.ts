// One adaptive route's own step (decide() step 2): its evaluation context, the first rule with an opinion
// (route-rules.ts), and the move applied to the route's state (docs/engine.md, "Hysteresis: down at once, up slowly").
import { type Bottleneck, observedBreachOf, updateAdmitFactor } from './bottleneck.js';
import { type Evaluation, evaluate, highestFeasible } from './evaluation.js';
import { explain } from './explanations.js';
import { snap } from './ladder.js';
import { measuredOtherUtilisation, noteOverload, noteUpgrade, type OverloadLoad, overloadPassed } from './overload.js';
import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  BREACH_COOLDOWN_MS,
  type EngineParams,
  PROBE_RPS,
  PROBE_SHARE,
} from './params.js';
import type { AdaptiveRoute } from './route.js';
import type { EngineSnapshot, EngineState } from './types.js';

/** What a rule sees of one route at one tick. */
export interface StepContext {
  readonly route: AdaptiveRoute;
  readonly state: EngineState;
  readonly snapshot: EngineSnapshot;
  readonly params: EngineParams;
  readonly nowMs: number;
  readonly bottleneck: Bottleneck;
  /** Utilisation of everything else, as this route plans against it (see otherUtilisation in shared-capacity.ts). */
  readonly otherUtilisation: number;
  /** The current position on the ladder; NaN before the first decision. */
  readonly position: number;
  /** The top of the ladder. */
  readonly top: number;
  /**
   * The load that forced the last downgrades has gone and the last second's answers meet the target (overload.ts):
   * the window's breach is stale (observedBreach is then false) and an upgrade may go straight to the target.
   */
  readonly overloadPassed: boolean;
  readonly observedBreach: boolean;
  /** An observed breach older actions have had time to show on (BREACH_COOLDOWN_MS since the last one acted on). */
  readonly actOnBreach: boolean;
  /** Highest feasible position at the rate now (searched once, on the paths that need it). */
  highestNow(): number;
  /** The current position at the rate now, against everything else. */
  current(): Evaluation;
  /** The load now: the route's rate, and the replicas' measured utilisation its own load does not explain. */
  loadNow(): OverloadLoad;
}

/** A rule's verdict: where the route goes, whether that is a switch, and why. */
export interface Move {
  readonly position: number;
  /** A switch restarts the upgrade hold time (upgradeHoldMs). */
  readonly switched: boolean;
  readonly reason: string;
  /** The upgrade streak after the move; 0 when not given. */
  readonly upStreak?: number;
  /** The move answers an observed breach: noted for the cooldown; a downgrade also starts the upgrade backoff. */
  readonly onBreach?: boolean;
  /** A downgrade notes the load that forced it; an upgrade to the top spends the note (overload.ts). */
  readonly overload?: 'downgrade' | 'upgrade';
}

/** A rule has an opinion (a move) or none (the next rule is asked). */
export type Rule = (ctx: StepContext) => Move | undefined;

export function stepContext(
  route: AdaptiveRoute,
  snapshot: EngineSnapshot,
  bottleneck: Bottleneck,
  otherUtilisation: number,
): StepContext {
  const { state, planner } = route;
  const top = planner.ladder.length - 1;
  const position = Number.isFinite(state.position) ? Math.min(state.position, top) : Number.NaN;
  let highest: number | undefined;
  let current: Evaluation | undefined;
  let load: OverloadLoad | undefined;
  const loadNow = () => {
    load ??= { rateRps: route.rateNowRps, otherUtilisation: measuredOtherUtilisation(route, snapshot, position) };
    return load;
  };
  const passed =
    route.freshEvidence === 'passed' ||
    (Number.isFinite(state.overloadAtMs) && overloadPassed(route, snapshot, loadNow()));
  const observedBreach = observedBreachOf(route.input) && !passed;
  return {
    route,
    state,
    snapshot,
    params: snapshot.params,
    nowMs: snapshot.nowMs,
    bottleneck,
    otherUtilisation,
    position,
    top,
    overloadPassed: passed,
    observedBreach,
    actOnBreach: observedBreach && snapshot.nowMs - state.lastBreachMs >= BREACH_COOLDOWN_MS,
    highestNow: () => {
      highest ??= highestFeasible(planner, route.rateNowRps, otherUtilisation);
      return highest;
    },
    current: () => {
      current ??= evaluate(planner, position, route.rateNowRps, otherUtilisation);
      return current;
    },
    loadNow,
  };
}

/** Steps a servable route: its admission factor, then the move of the first rule with an opinion. */
export function stepRoute(
  route: AdaptiveRoute,
  snapshot: EngineSnapshot,
  bottleneck: Bottleneck,
  shedClass: number,
  otherUtilisation: number,
  rules: readonly Rule[],
): void {
  const ctx = stepContext(route, snapshot, bottleneck, otherUtilisation);
  updateAdmitFactor(route, snapshot, bottleneck, shedClass, ctx.observedBreach);
  for (const rule of rules) {
    const move = rule(ctx);
    if (move === undefined) continue;
    applyMove(ctx, move);
    break;
  }
  const { state } = route;
  if (state.admitFactor < 1) route.admissionRps = state.admitFactor * route.rateNowRps;
  state.position = snap(state.position);
  route.utilisation = evaluate(route.planner, state.position, route.rateNowRps, 0).utilisation;
}

/** A route nothing can serve admits only a probe: its answers keep the measurements alive, so it is not locked out. */
export function stepUnservable(route: AdaptiveRoute): void {
  const rateRps = route.rateNowRps;
  route.admissionRps = Math.min(rateRps, Math.max(PROBE_RPS, PROBE_SHARE * rateRps));
  route.reason = explain.unservable(route.input, route.admissionRps);
}

function applyMove(ctx: StepContext, move: Move): void {
  const { state } = ctx;
  if (move.onBreach === true) {
    state.lastBreachMs = ctx.nowMs;
    if (move.switched) startBackoff(state, ctx.nowMs, ctx.position, ctx.route.rateNowRps);
  }
  if (move.switched && move.overload === 'downgrade') noteOverload(state, ctx.nowMs, ctx.loadNow());
  if (move.switched && move.overload === 'upgrade')
    noteUpgrade(state, ctx.nowMs, ctx.overloadPassed, move.position >= ctx.top - 1e-9);
  state.position = move.position;
  if (move.switched) state.lastSwitchMs = ctx.nowMs;
  state.upStreak = move.upStreak ?? 0;
  ctx.route.reason = move.reason;
}

/**
 * Upgrades may not return to where a breach-driven downgrade left until a backoff has passed: a repeat soon after the
 * last backoff ended doubles it; a breach lower down while it lasts lowers the ceiling and restarts it.
 */
function startBackoff(state: EngineState, nowMs: number, from: number, rateRps: number): void {
  if (nowMs < state.ceilingUntilMs) state.ceiling = Math.min(state.ceiling, from);
  else {
    const repeat = nowMs < state.ceilingUntilMs + 2 * state.backoffMs;
    state.backoffMs = repeat ? Math.min(BACKOFF_MAX_MS, 2 * state.backoffMs) : BACKOFF_BASE_MS;
    state.ceiling = from;
  }
  state.ceilingUntilMs = nowMs + state.backoffMs;
  state.ceilingRps = rateRps;
}
