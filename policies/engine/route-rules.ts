// The per-route rules, tried in order: the first with an opinion moves (or holds) the route. Down at once, up
// slowly; each rule's reason says which one fired (docs/engine.md, "Hysteresis: down at once, up slowly").

import { ownP99 } from './bottleneck.js';
import { budgetMs, evaluate, highestFeasible } from './evaluation.js';
import { explain } from './explanations.js';
import { GRID, snap } from './ladder.js';
import { preferred, riskGain, riskStepDown } from './objective.js';
import { BREACH_COOLDOWN_MS, CEILING_RATE_SHARE, SURGE_OVER_SLOW_RATE } from './params.js';
import { averageEvidence } from './route.js';
import type { Move, Rule, StepContext } from './route-step.js';

function hold(ctx: StepContext, reason: string, upStreak = 0): Move {
  return { position: ctx.position, switched: false, reason, upStreak };
}

/** First decision: the objective's preference at the current load, no hysteresis. */
export const firstDecision: Rule = (ctx) => {
  if (!Number.isNaN(ctx.position)) return undefined;
  const highest = ctx.highestNow();
  const feasible = !Number.isNaN(highest);
  const position = feasible ? preferred(ctx.route, highest, ctx.route.rateNowRps, ctx.otherUtilisation, ctx.params) : 0;
  return { position, switched: true, reason: explain.start(feasible), upStreak: ctx.state.upStreak };
};

/** A breach while the gateway is the bottleneck: a cheaper variant would not help (admission answers it). */
export const gatewayBoundHold: Rule = (ctx) => {
  if (!(ctx.bottleneck.gatewayBound && ctx.observedBreach)) return undefined;
  const { gatewayUtilisation, replicaUtilisation } = ctx.snapshot;
  return hold(ctx, explain.gatewaySaturated(gatewayUtilisation, replicaUtilisation, ctx.state.admitFactor));
};

/** A breach with neither replicas nor gateway busy while the model says the choice fits: a transient, held. */
export const transientHold: Rule = (ctx) => {
  if (!(ctx.observedBreach && !ctx.bottleneck.replicaBound && ctx.current().ok)) return undefined;
  const { gatewayUtilisation, replicaUtilisation } = ctx.snapshot;
  return hold(ctx, explain.transient(ctx.route.input.observedP99Ms, replicaUtilisation, gatewayUtilisation));
};

/**
 * The gateway's own overhead takes over a third of the budget while the replicas idle, and a breach is observed or
 * predicted on latency rather than on utilisation: the time goes outside the model, so a cheaper variant would save
 * little and cost accuracy for the whole climb back. Hold.
 */
export const overheadBoundHold: Rule = (ctx) => {
  const input = ctx.route.input;
  const budget = budgetMs(ctx.route.planner);
  if (ctx.bottleneck.replicaBound || !(input.overheadMs > budget / 3)) return undefined;
  const current = ctx.current();
  const latencyBound = !current.ok && current.utilisation + current.otherUtilisation < ctx.params.maxUtilisation;
  if (!(ctx.actOnBreach || latencyBound)) return undefined;
  const observed = ctx.actOnBreach ? input.observedP99Ms : undefined;
  const { replicaUtilisation } = ctx.snapshot;
  return hold(ctx, explain.overheadBound(observed, ctx.route.rateNowRps, input.overheadMs, budget, replicaUtilisation));
};

/**
 * The highest position a downgrade may land on. In a surge the stricter upgrade plan trims a mix (profiles are least
 * trustworthy when load jumps), but never below a whole rung the normal plan holds (a surge's first tick reads high).
 */
function landingLimit(highest: number, strictHighest: number): number {
  if (Number.isNaN(highest)) return 0;
  if (Number.isNaN(strictHighest)) return highest;
  return Math.max(Math.min(highest, strictHighest), Math.floor(highest + 1e-9));
}

/**
 * Down at once: to the highest position predicted to hold p99 when the current one does not (max-accuracy: the
 * objective's choice at or below it), or at least a rung down on an observed breach the cooldown lets it act on.
 */
export const downgrade: Rule = (ctx) => {
  if (!ctx.actOnBreach && ctx.current().ok) return undefined;
  const { route, params, otherUtilisation } = ctx;
  const input = route.input;
  const highest = ctx.highestNow();
  const surge = !ctx.actOnBreach && route.rateNowRps > SURGE_OVER_SLOW_RATE * input.rate.slow;
  const strictHighest =
    surge && !Number.isNaN(highest)
      ? highestFeasible(route.planner, route.rateNowRps, otherUtilisation, 'strict')
      : Number.NaN;
  const limit = landingLimit(highest, strictHighest);
  const landing =
    Number.isNaN(highest) || input.objective !== 'max-accuracy'
      ? limit
      : preferred(route, limit, route.rateNowRps, otherUtilisation, params);
  const target = ctx.actOnBreach ? Math.min(landing, Math.max(0, Math.ceil(ctx.position) - 1)) : landing;
  if (target < ctx.position) {
    const reason = ctx.actOnBreach
      ? explain.downgradeOnBreach(input.observedP99Ms, input.slo.p99Ms)
      : explain.downgradeOnPrediction(route.rateNowRps, !Number.isNaN(strictHighest));
    return { position: target, switched: true, reason, onBreach: ctx.actOnBreach, overload: 'downgrade' };
  }
  const reason = ctx.actOnBreach ? explain.breachAtCheapest(input.observedP99Ms) : explain.overBudgetAtCheapest();
  return { position: ctx.position, switched: false, reason, onBreach: ctx.actOnBreach };
};

/** A breach acted on recently: wait for the latency window to show the effect. */
export const waitForWindow: Rule = (ctx) =>
  ctx.observedBreach ? hold(ctx, explain.waitingForWindow(ctx.route.input.observedP99Ms)) : undefined;

/**
 * max-accuracy, once the last switch has settled: a step down that delivers more expected on-time correct answers.
 * Weighed at the slow rate: risk is a long-run average, and the tick's rate is noisy.
 */
export const riskStepDownRule: Rule = (ctx) => {
  const input = ctx.route.input;
  if (input.objective !== 'max-accuracy' || !(ctx.position > 0)) return undefined;
  if (!(ctx.nowMs - ctx.state.lastSwitchMs >= ctx.params.upgradeHoldMs)) return undefined;
  const slowRps = input.rate.slow;
  const atLeast = ctx.route.rateNowRps >= slowRps ? ctx.current() : undefined;
  const step = riskStepDown(ctx.route, ctx.position, slowRps, ctx.otherUtilisation, ctx.params, atLeast);
  if (step === undefined) return undefined;
  return { position: step.position, switched: true, reason: explain.riskStepDown(slowRps, step.trade) };
};

/** min-cost and utility: a cheaper position the objective prefers is taken at once. */
export const cheaperForObjective: Rule = (ctx) => {
  const input = ctx.route.input;
  if (input.objective === 'max-accuracy') return undefined;
  const highest = ctx.highestNow();
  const want = Number.isNaN(highest)
    ? 0
    : preferred(ctx.route, highest, ctx.route.rateNowRps, ctx.otherUtilisation, ctx.params);
  return want < ctx.position
    ? { position: want, switched: true, reason: explain.cheaperHolds(input.objective) }
    : undefined;
};

/**
 * Where upgrades may head: the highest position the stricter plan holds at the upgrade rate (the objective's choice
 * there for min-cost and utility). Only looks above the current position: usually one evaluation says there is none.
 */
function upgradeTarget(ctx: StepContext, upgradeRateRps: number): number {
  const { route, otherUtilisation, position } = ctx;
  const stepUp = Math.min(ctx.top, snap(position + 1 / GRID));
  const highest =
    position >= ctx.top || !evaluate(route.planner, stepUp, upgradeRateRps, otherUtilisation, 'strict').ok
      ? position
      : highestFeasible(route.planner, upgradeRateRps, otherUtilisation, 'strict');
  if (route.input.objective === 'max-accuracy') return highest;
  return Number.isNaN(highest) ? 0 : preferred(route, highest, upgradeRateRps, otherUtilisation, ctx.params);
}

/**
 * A surge that has passed: the peak of the last RECENT_PEAK_MS is under 1/SURGE_OVER_SLOW_RATE of the 5 s peak. The
 * load to plan an upgrade for is then the recent one, not the surge's (fresh evidence, not a stale window).
 */
export function surgePassed(ctx: StepContext): boolean {
  const { peak, recentPeak } = ctx.route.input.rate;
  return recentPeak !== undefined && recentPeak * SURGE_OVER_SLOW_RATE < peak;
}

/** How an upgrade goes: after a passed surge or overload, a recovery (see upgrade). */
type Recovery = 'none' | 'surge' | 'overload';

/**
 * Up slowly: after upgradeTicks ticks of strict headroom at the upgrade rate (max(now, peak)) and upgradeHoldMs since
 * the last switch, half a rung (a full one when far below the target), unless the backoff, the observed latency or
 * (max-accuracy) the misses it risks say no. Recovery after a surge or an overload that has passed: the rate is
 * max(now, recent peak), the risk is weighed at it, and the step goes straight to the target (the plan supports it
 * now). After an overload, the last second's answers are the evidence the ticks and the backoff wait for.
 */
export const upgrade: Rule = (ctx) => {
  const recovery: Recovery = ctx.overloadPassed ? 'overload' : surgePassed(ctx) ? 'surge' : 'none';
  const recentRps = ctx.route.input.rate.recentPeak ?? ctx.route.input.rate.peak;
  const upgradeRateRps = Math.max(ctx.route.rateNowRps, recovery !== 'none' ? recentRps : ctx.route.input.rate.peak);
  const target = upgradeTarget(ctx, upgradeRateRps);
  if (!(target > ctx.position + 1e-9)) return undefined;
  const upStreak = ctx.state.upStreak + 1;
  // A recovery waits only as long as a breach's cooldown: the surge's end is the evidence the hold time waits for.
  const holdMs =
    recovery !== 'none' ? Math.min(BREACH_COOLDOWN_MS, ctx.params.upgradeHoldMs) : ctx.params.upgradeHoldMs;
  const ticks = recovery === 'overload' ? 1 : ctx.params.upgradeTicks;
  if (upStreak < ticks || ctx.nowMs - ctx.state.lastSwitchMs < holdMs)
    return hold(ctx, explain.headroomBuilding(upStreak, ctx.params.upgradeTicks), upStreak);
  return upgradeStep(ctx, target, upgradeRateRps, upStreak, recovery);
};

function upgradeStep(
  ctx: StepContext,
  target: number,
  upgradeRateRps: number,
  upStreak: number,
  recovery: Recovery,
): Move {
  const { route, state, params, position, otherUtilisation } = ctx;
  const input = route.input;
  const recovering = recovery !== 'none';
  const stepSize = recovering
    ? target - position
    : target - position >= 1.5
      ? Math.max(1, params.upgradeStep)
      : params.upgradeStep;
  let next = Math.min(target, snap(position + stepSize));
  // Backoff: not back to where this load broke the target until the backoff has passed (unless that load has gone).
  const backingOff =
    recovery !== 'overload' &&
    ctx.nowMs < state.ceilingUntilMs &&
    upgradeRateRps >= CEILING_RATE_SHARE * state.ceilingRps;
  if (backingOff) next = Math.min(next, snap(state.ceiling - 1 / GRID));
  if (!(next > position + 1e-9))
    return hold(ctx, explain.backingOff(ctx.nowMs, state.ceilingUntilMs, state.ceilingRps, state.backoffMs), upStreak);
  // Veto: latency the model does not see (stalls, the client's side) adds to the predicted slowdown, not scales it.
  // After an overload, the current choice's record is the last second's: the older answers are the overload's.
  const slowdownMs =
    evaluate(route.planner, next, upgradeRateRps, otherUtilisation).predictedP99Ms - ctx.current().predictedP99Ms;
  const ownMs = recovery === 'overload' ? (input.recentP99Ms ?? Number.NaN) : ownP99(input);
  const withSlowdownMs = Number.isFinite(ownMs) ? ownMs + Math.max(0, slowdownMs) : 0;
  const budget = budgetMs(route.planner);
  if (withSlowdownMs > budget) return hold(ctx, explain.upgradeVetoed(ownMs, withSlowdownMs, budget), upStreak);
  // Worth it: net of the misses it risks at the slow rate (the peak only has to be held, by the strict plan).
  if (input.objective === 'max-accuracy') {
    const riskRps = recovering ? Math.min(input.rate.slow, upgradeRateRps) : input.rate.slow;
    const gain = riskGain(route, position, next, riskRps, otherUtilisation);
    if (!gain.worth) return hold(ctx, explain.upgradeNotWorthRisk(gain.why), upStreak);
  }
  const reason =
    recovery === 'overload'
      ? overloadRecoveryReason(ctx, upgradeRateRps)
      : recovering
        ? explain.recovery(params.upgradeTicks, upgradeRateRps, input.rate.peak)
        : explain.upgrade(params.upgradeTicks, upgradeRateRps);
  return { position: next, switched: true, reason, overload: 'upgrade' };
}

/** The overload recovery's reason, with the fresh evidence it was planned on when the averages still held more. */
function overloadRecoveryReason(ctx: StepContext, upgradeRateRps: number): string {
  const { route, state } = ctx;
  const { recentP99Ms } = route.input;
  const reason = explain.overloadRecovery(state, ctx.loadNow(), upgradeRateRps, recentP99Ms ?? Number.NaN);
  const { burstiness, overheadMs } = route.planner.normal.load;
  const fresh = { rateNowRps: route.rateNowRps, burstiness, overheadMs };
  const averages = averageEvidence(route.input);
  const lower =
    fresh.rateNowRps < averages.rateNowRps ||
    fresh.burstiness < averages.burstiness ||
    fresh.overheadMs < averages.overheadMs;
  return lower ? `${reason}; ${explain.freshEvidence(fresh, averages)}` : reason;
}

/** Nothing to do: the current choice holds p99 and there is no headroom above it. */
export const steady: Rule = (ctx) => hold(ctx, explain.steady());

/** The rules in the order they are asked. */
export const ROUTE_RULES: readonly Rule[] = [
  firstDecision,
  gatewayBoundHold,
  transientHold,
  overheadBoundHold,
  downgrade,
  waitForWindow,
  riskStepDownRule,
  cheaperForObjective,
  upgrade,
  steady,
];
