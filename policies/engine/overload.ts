// Recovery once an overload has gone (docs/engine.md, "Hysteresis: down at once, up slowly"): a downgrade notes the
// load that forced it; when that load has measurably gone and the last second's answers meet the target, the breach
// the latency window still holds is stale, and the route may go straight back to where the plan supports.
import { evaluate } from './evaluation.js';
import {
  FRESH_EVIDENCE_MS,
  OTHER_LOAD_MATTERS,
  OVERLOAD_EPISODE_MS,
  OVERLOAD_GONE_SHARE,
  RECOVERY_BLOCK_MS,
  RECOVERY_TRIAL_MS,
  REPLICA_BUSY,
  SURGE_OVER_SLOW_RATE,
} from './params.js';
import type { AdaptiveRoute, Evidence } from './route.js';
import type { EngineSnapshot, EngineState, RouteInput } from './types.js';

/** What an overload was and is: the route's rate, and the replicas' utilisation by everything else. */
export interface OverloadLoad {
  readonly rateRps: number;
  readonly otherUtilisation: number;
}

/**
 * The replicas' measured utilisation that this route's own load at `position` does not explain (other routes, pinned
 * or fixed traffic, other models); 0 when its own explains it all.
 */
export function measuredOtherUtilisation(route: AdaptiveRoute, snapshot: EngineSnapshot, position: number): number {
  if (!Number.isFinite(position)) return 0;
  const own = evaluate(route.planner, position, route.rateNowRps, 0).utilisation;
  return Math.max(0, snapshot.replicaUtilisation - (Number.isFinite(own) ? own : 0));
}

/**
 * Notes the load a downgrade answers: the highest of one episode, a fresh note after a quiet spell. A downgrade soon
 * after a recovery marks that recovery failed.
 */
export function noteOverload(state: EngineState, nowMs: number, load: OverloadLoad): void {
  if (nowMs - state.recoveredAtMs <= RECOVERY_TRIAL_MS) state.recoveryFailedAtMs = nowMs;
  const sameEpisode = nowMs - state.overloadAtMs <= OVERLOAD_EPISODE_MS;
  state.overloadRps = sameEpisode ? Math.max(state.overloadRps, load.rateRps) : load.rateRps;
  state.overloadOtherUtilisation = sameEpisode
    ? Math.max(state.overloadOtherUtilisation, load.otherUtilisation)
    : load.otherUtilisation;
  state.overloadAtMs = nowMs;
}

/**
 * An upgrade: a recovery on the note is remembered (see noteOverload); the note is spent once the route is back at the
 * top. Until then it stands: a recovery goes as far as the plan supports at the recent rate, and again as that falls.
 */
export function noteUpgrade(state: EngineState, nowMs: number, recovered: boolean, atTop: boolean): void {
  if (recovered) state.recoveredAtMs = nowMs;
  if (!atTop) return;
  state.overloadRps = 0;
  state.overloadOtherUtilisation = 0;
  state.overloadAtMs = Number.NEGATIVE_INFINITY;
}

/**
 * The noted overload has gone: its cause, the route's rate (the recent peak included) or the other load on the
 * replicas, is at most OVERLOAD_GONE_SHARE of what it was, and the last RECENT_PEAK_MS hold no surge over the rate
 * now; and fresh evidence says so: the replicas are not busy and the answers of the last second meet the target.
 * Steady load near capacity never passes (its cause does not drop), nor does a route whose last recovery failed.
 */
export function overloadPassed(route: AdaptiveRoute, snapshot: EngineSnapshot, load: OverloadLoad): boolean {
  const { state, input } = route;
  if (!Number.isFinite(state.overloadAtMs) || snapshot.nowMs - state.recoveryFailedAtMs < RECOVERY_BLOCK_MS)
    return false;
  const recentP99Ms = input.recentP99Ms ?? Number.NaN;
  if (!(recentP99Ms <= input.slo.p99Ms && snapshot.replicaUtilisation < REPLICA_BUSY)) return false;
  const recentRps = Math.max(load.rateRps, input.rate.recentPeak ?? input.rate.peak);
  if (recentRps > SURGE_OVER_SLOW_RATE * load.rateRps) return false;
  const rateGone = recentRps <= OVERLOAD_GONE_SHARE * state.overloadRps;
  const otherGone =
    state.overloadOtherUtilisation >= OTHER_LOAD_MATTERS &&
    load.otherUtilisation <= OVERLOAD_GONE_SHARE * state.overloadOtherUtilisation;
  return rateGone || otherGone;
}

/**
 * Whether the route plans on fresh evidence: its noted overload has passed, or it recovered from one within
 * FRESH_EVIDENCE_MS with no downgrade since. 'passed' is the overload rule's own test (overloadPassed).
 */
export function freshEvidence(route: AdaptiveRoute, snapshot: EngineSnapshot): 'passed' | 'recovered' | undefined {
  const { state } = route;
  if (Number.isFinite(state.overloadAtMs)) {
    const position = Math.min(state.position, route.planner.ladder.length - 1);
    const load = { rateRps: route.rateNowRps, otherUtilisation: measuredOtherUtilisation(route, snapshot, position) };
    if (overloadPassed(route, snapshot, load)) return 'passed';
  }
  // Any downgrade since (a new overload noted, or the recovery failed) ends it.
  const recently = snapshot.nowMs - state.recoveredAtMs <= FRESH_EVIDENCE_MS;
  const since = Math.max(state.recoveryFailedAtMs, state.overloadAtMs);
  return recently && since < state.recoveredAtMs ? 'recovered' : undefined;
}

/**
 * Once an overload has passed, and for FRESH_EVIDENCE_MS after the recovery from it, the route plans on fresh
 * evidence (route.ts, prepareRoute): the rate of the last tick and RECENT_PEAK_MS, the burstiness of the last second
 * and the gateway overhead of the last second, instead of averages that still hold the overload after it ended. Never
 * above the averages, so it stops mattering once they have caught up. Load that comes back shows in the next tick's
 * instant rate, and any downgrade ends the fresh evidence (one within RECOVERY_TRIAL_MS also fails the recovery:
 * RECOVERY_BLOCK_MS).
 */
export function freshLoad(input: RouteInput): Evidence {
  const { instant, fast, peak, recentPeak, burstiness, recentBurstiness } = input.rate;
  const recentOverheadMs = input.recentOverheadMs ?? Number.NaN;
  return {
    rateNowRps: Math.max(instant, Math.min(fast, recentPeak ?? peak)),
    burstiness: Math.min(burstiness, recentBurstiness ?? burstiness),
    overheadMs: Number.isNaN(recentOverheadMs) ? input.overheadMs : Math.min(input.overheadMs, recentOverheadMs),
  };
}
