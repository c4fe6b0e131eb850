// Which resource a latency breach is blamed on, and the admission factor that answers a gateway-bound one
// (docs/engine.md, "Which bottleneck?").
import { BREACH_COOLDOWN_MS, GATEWAY_SATURATED, REPLICA_BUSY } from './params.js';
import type { AdaptiveRoute } from './route.js';
import type { EngineSnapshot, RouteInput } from './types.js';

/** The admission factor: cut by this factor on a gateway-bound breach, never below the floor; regrown by a step. */
const ADMIT_CUT = 0.8;
const ADMIT_FLOOR = 0.05;
const ADMIT_REGROW = 0.05;
/** Event-loop utilisation under which the factor regrows; under the second, even while a stale breach shows. */
const GATEWAY_HAS_ROOM = 0.75;
const GATEWAY_IDLE = 0.5;

export interface Bottleneck {
  /** The replicas are busy: a cheaper variant relieves a breach. */
  readonly replicaBound: boolean;
  /** The event loop is saturated while the replicas are not: only admitting less relieves a breach. */
  readonly gatewayBound: boolean;
}

export function diagnose(snapshot: EngineSnapshot): Bottleneck {
  const replicaBound = snapshot.replicaUtilisation >= REPLICA_BUSY;
  return { replicaBound, gatewayBound: snapshot.gatewayUtilisation >= GATEWAY_SATURATED && !replicaBound };
}

/**
 * An observed breach: the window's p99 over target, unless the answers since the last switch meet it (the breach was
 * the last choice's). The answers since the switch only ever clear a breach, never raise one: they are fewer.
 */
export function observedBreachOf(input: RouteInput): boolean {
  if (!(Number.isFinite(input.observedP99Ms) && input.observedP99Ms > input.slo.p99Ms)) return false;
  return !(Number.isFinite(input.observedSinceSwitchP99Ms) && input.observedSinceSwitchP99Ms <= input.slo.p99Ms);
}

/**
 * The current choice's observed p99: its own answers since the last switch when there are enough of them, else the
 * window's (which, for a few seconds after a switch, still holds the last choice's answers).
 */
export function ownP99(input: RouteInput): number {
  return Number.isFinite(input.observedSinceSwitchP99Ms) ? input.observedSinceSwitchP99Ms : input.observedP99Ms;
}

/**
 * The priority class that gateway-bound shedding cuts: the lowest one that still admits something, while the gateway
 * is the bottleneck and some route breaches; NaN otherwise.
 */
export function shedClassOf(routes: readonly AdaptiveRoute[], bottleneck: Bottleneck): number {
  if (!bottleneck.gatewayBound || !routes.some((route) => route.servable && observedBreachOf(route.input)))
    return Number.NaN;
  const admitting = routes.filter((route) => route.servable && route.state.admitFactor > ADMIT_FLOOR);
  return Math.min(...admitting.map((route) => route.input.priority));
}

/**
 * Admission while the gateway is the bottleneck: multiplicative decrease on a breach (at most once per cooldown),
 * additive increase while the route meets its target and the gateway has room, or, with the event loop idle and no
 * cut for two cooldowns, while a stale breach is still in the latency window.
 */
export function updateAdmitFactor(
  route: AdaptiveRoute,
  snapshot: EngineSnapshot,
  bottleneck: Bottleneck,
  shedClass: number,
  observedBreach: boolean,
): void {
  const { state } = route;
  const actOnBreach = observedBreach && snapshot.nowMs - state.lastBreachMs >= BREACH_COOLDOWN_MS;
  if (bottleneck.gatewayBound && actOnBreach && route.input.priority === shedClass) {
    state.admitFactor = Math.max(ADMIT_FLOOR, state.admitFactor * ADMIT_CUT);
    state.lastBreachMs = snapshot.nowMs;
    return;
  }
  const loop = snapshot.gatewayUtilisation;
  const staleBreach = loop < GATEWAY_IDLE && snapshot.nowMs - state.lastBreachMs >= 2 * BREACH_COOLDOWN_MS;
  if (state.admitFactor < 1 && loop < GATEWAY_HAS_ROOM && (!observedBreach || staleBreach))
    state.admitFactor = Math.min(1, state.admitFactor + ADMIT_REGROW);
}
