// Every reason string the engine writes, in one place. A decision's reason names the rule that fired and the numbers
// it fired on (docs/engine.md, "Explainability"); tests and operators match on these words.
import type { VariantShare } from '../../core/decision.js';
import type { Evidence } from './route.js';
import type { RouteInput } from './types.js';

export function fmt(ms: number): string {
  return Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 2 : 1)} ms` : 'unbounded';
}

function percent(share: number): string {
  return `${(share * 100).toFixed(0)}%`;
}

function pts(share: number): string {
  return `${share >= 0 ? '+' : '-'}${Math.abs(share * 100).toFixed(2)} pts`;
}

export function mixName(shares: readonly VariantShare[]): string {
  return shares
    .filter((s) => s.share > 0)
    .map((s) => (s.share === 1 ? s.variant : `${Math.round(s.share * 100)}% ${s.variant}`))
    .join(' + ');
}

/** What a mix adds over a lower one: accuracy, and expected misses. */
export function explainRiskTrade(shares: readonly VariantShare[], accuracyGain: number, riskGain: number): string {
  return `${mixName(shares)} adds ${pts(accuracyGain)} of accuracy and ${pts(riskGain)} of expected misses`;
}

/** The reasons of the per-route rules (route-rules.ts), the shared-capacity steps and the result. */
export const explain = {
  ladderChange(gone: readonly string[], added: readonly string[]): string {
    const left = gone.length > 0 ? `no longer eligible: ${gone.join(', ')}` : '';
    const joined = added.length > 0 ? `eligible again: ${added.join(', ')}` : '';
    return `${left}${left !== '' && joined !== '' ? '; ' : ''}${joined}`;
  },
  unservable(input: RouteInput, probeRps: number): string {
    const accuracy = input.slo.minAccuracy !== undefined ? ` with accuracy >= ${input.slo.minAccuracy}` : '';
    return (
      `no variant${accuracy} can hold p99 ${input.slo.p99Ms} ms even alone ` +
      `(gateway overhead ${fmt(input.overheadMs)}): shedding all but a probe of ${probeRps.toFixed(1)} req/s`
    );
  },
  start(feasible: boolean): string {
    return feasible
      ? 'start: best choice for the objective at the current load'
      : 'start: even the cheapest variant is over budget at this load';
  },
  gatewaySaturated(gatewayUtilisation: number, replicaUtilisation: number, admitFactor: number): string {
    return (
      `gateway saturated (event loop ${percent(gatewayUtilisation)}, replicas ${percent(replicaUtilisation)}): ` +
      `keeping the variant, admitting ${percent(admitFactor)} of arrivals`
    );
  },
  transient(observedP99Ms: number, replicaUtilisation: number, gatewayUtilisation: number): string {
    return (
      `observed p99 ${fmt(observedP99Ms)} > target with replicas ${percent(replicaUtilisation)} and event loop ` +
      `${percent(gatewayUtilisation)} busy: transient, holding`
    );
  },
  overheadBound(
    observedP99Ms: number | undefined,
    rateRps: number,
    overheadMs: number,
    budgetMs: number,
    replicaUtilisation: number,
  ): string {
    const what =
      observedP99Ms !== undefined
        ? `observed p99 ${fmt(observedP99Ms)} > target`
        : `predicted over budget at ${rateRps.toFixed(0)} req/s`;
    return (
      `${what} with gateway overhead ${fmt(overheadMs)} of the ${fmt(budgetMs)} budget and replicas ` +
      `${percent(replicaUtilisation)} busy: a cheaper variant would not help, holding`
    );
  },
  downgradeOnBreach(observedP99Ms: number, targetMs: number): string {
    return `downgrade: observed p99 ${fmt(observedP99Ms)} > target ${targetMs} ms`;
  },
  downgradeOnPrediction(rateRps: number, surgeLanding: boolean): string {
    const surge = surgeLanding ? ' (a surge: landing with upgrade headroom)' : '';
    return `downgrade: current choice predicted over budget at ${rateRps.toFixed(0)} req/s${surge}`;
  },
  breachAtCheapest(observedP99Ms: number): string {
    return `observed p99 ${fmt(observedP99Ms)} > target at the cheapest choice`;
  },
  overBudgetAtCheapest(): string {
    return 'over budget at the cheapest choice';
  },
  waitingForWindow(observedP99Ms: number): string {
    return `observed p99 ${fmt(observedP99Ms)} > target: waiting for the last change to show`;
  },
  riskStepDown(rateRps: number, trade: string): string {
    return `expected effective accuracy: at ${rateRps.toFixed(0)} req/s ${trade}: stepping down`;
  },
  cheaperHolds(objective: RouteInput['objective']): string {
    return `${objective}: cheaper choice holds p99`;
  },
  backingOff(nowMs: number, ceilingUntilMs: number, ceilingRps: number, backoffMs: number): string {
    return (
      `steady: backing off for ${((ceilingUntilMs - nowMs) / 1000).toFixed(0)} s from where p99 broke the target ` +
      `at ${ceilingRps.toFixed(0)} req/s (backoff ${(backoffMs / 1000).toFixed(0)} s)`
    );
  },
  upgradeVetoed(ownP99Ms: number, withSlowdownMs: number, budgetMs: number): string {
    return (
      `steady: upgrade vetoed, observed p99 ${fmt(ownP99Ms)} plus its predicted slowdown is ${fmt(withSlowdownMs)} ` +
      `> budget ${fmt(budgetMs)}`
    );
  },
  upgradeNotWorthRisk(trade: string): string {
    return `steady: upgrade not worth its risk, ${trade}`;
  },
  upgrade(upgradeTicks: number, rateRps: number): string {
    return `upgrade: headroom for ${upgradeTicks} ticks at ${rateRps.toFixed(0)} req/s`;
  },
  recovery(upgradeTicks: number, rateRps: number, surgeRps: number): string {
    return `upgrade: the surge has passed (${surgeRps.toFixed(0)} -> ${rateRps.toFixed(0)} req/s), headroom for ${upgradeTicks} ticks: straight to the target`;
  },
  overloadRecovery(
    was: { readonly overloadRps: number; readonly overloadOtherUtilisation: number },
    now: { readonly rateRps: number; readonly otherUtilisation: number },
    recentRps: number,
    recentP99Ms: number,
  ): string {
    const rateRps = Math.max(now.rateRps, recentRps);
    return (
      `upgrade: the overload has passed (${was.overloadRps.toFixed(0)} -> ${rateRps.toFixed(0)} req/s, other load ` +
      `${percent(was.overloadOtherUtilisation)} -> ${percent(now.otherUtilisation)}), last second's p99 ` +
      `${fmt(recentP99Ms)}: straight to the target`
    );
  },
  /** A plan on fresh evidence after an overload (overload.ts): what it used, and what the averages still held. */
  freshEvidence(fresh: Evidence, averages: Evidence): string {
    const show = (e: Evidence) =>
      `${e.rateNowRps.toFixed(0)} req/s, burstiness ${e.burstiness.toFixed(1)}, overhead ${fmt(e.overheadMs)}`;
    return `planned on the last seconds (${show(fresh)}; the averages still held ${show(averages)})`;
  },
  headroomBuilding(upStreak: number, upgradeTicks: number): string {
    return upStreak < upgradeTicks
      ? `steady: headroom building (${upStreak}/${upgradeTicks})`
      : 'steady: headroom, holding after the last switch';
  },
  steady(): string {
    return 'steady: current choice holds p99';
  },
  sharedStepDown(maxUtilisation: number): string {
    return `shared replicas over ${percent(maxUtilisation)}: stepped down (least accuracy lost per capacity freed)`;
  },
  overload(admissionRps: number, rateRps: number, priority: number): string {
    return (
      `overload: admitting ${admissionRps.toFixed(0)} of ${rateRps.toFixed(0)} req/s (priority ${priority}), ` +
      'shedding the rest'
    );
  },
  /** A route held below its best choice while variants run extra work (a rollout's shadow) on the replicas. */
  shadowWork(utilisation: number, variants: readonly string[]): string {
    return `counting shadow work: ${percent(utilisation)} of the replicas (${variants.join(', ')})`;
  },
  /** The decision's reason: what changed in the ladder, the rule's reason, and the resulting mix and prediction. */
  decision(
    ladderNote: string,
    reason: string,
    shares: readonly VariantShare[],
    predictedP99Ms: number,
    input: RouteInput,
  ) {
    const note = ladderNote === '' ? '' : `${ladderNote}; `;
    return `${note}${reason} [${mixName(shares)}, predicted p99 ${fmt(predictedP99Ms)} of ${input.slo.p99Ms} ms]`;
  },
  fixed(): string {
    return 'fixed by the route policy';
  },
};
