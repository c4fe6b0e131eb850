// What decide() reads and returns: the snapshot of every route, and per route the decision and the state carried
// to the next tick. The state is the engine's only memory: it goes in with the snapshot and comes back in the result.
import type { Decision } from '../../core/decision.js';
import type { BatchKnobs } from '../../runtime/batch-policy.js';
import type { VariantModel } from '../latency-model.js';
import type { RateSnapshot } from '../rate-estimator.js';
import type { EngineParams } from './params.js';

export interface RouteEngineState {
  /** Position on the ladder (docs/engine.md, "The ladder"); NaN before the first decision. */
  readonly position: number;
  /** Consecutive ticks with upgrade headroom. */
  readonly upStreak: number;
  readonly lastSwitchMs: number;
  /** Learned multiplier on predicted latency (>= 1). */
  readonly correction: number;
  /** The ladder the position refers to (variant names, cheapest first). */
  readonly ladder: readonly string[];
  /** Share of arrivals admitted while the gateway itself is the bottleneck (1 = no limit). */
  readonly admitFactor: number;
  /** Last time an observed breach was acted on (actions wait for the latency window to show their effect). */
  readonly lastBreachMs: number;
  /**
   * Upgrade backoff: where (ladder position) and at what rate the last breach-driven downgrade happened, until when
   * upgrades may not return there, and the current backoff (doubles when the route breaches again soon after).
   */
  readonly ceiling: number;
  readonly ceilingRps: number;
  readonly ceilingUntilMs: number;
  readonly backoffMs: number;
  /**
   * The load that forced the last downgrades (their highest over one episode): the route's rate, and the replicas'
   * utilisation by everything else, and when. A recovery jumps back once it has gone (see overloadPassed); -inf: none.
   */
  readonly overloadRps: number;
  readonly overloadOtherUtilisation: number;
  readonly overloadAtMs: number;
  /** The last recovery from an overload, and the last one a downgrade soon after proved wrong. */
  readonly recoveredAtMs: number;
  readonly recoveryFailedAtMs: number;
  /**
   * Miss-risk calibration: misses seen, and misses the stall model expected for the decisions in force, both
   * decayed (RISK_TAU_MS), and when they were last updated; the expected miss share of the decision made now.
   */
  readonly missesSeen: number;
  readonly missesExpected: number;
  readonly riskAtMs: number;
  readonly riskPerRequest: number;
}

/** The state of a route while a decision is made: a copy of the route's RouteEngineState, updated in place. */
export type EngineState = { -readonly [K in keyof RouteEngineState]: RouteEngineState[K] };

export const INITIAL_STATE: RouteEngineState = {
  position: Number.NaN,
  upStreak: 0,
  lastSwitchMs: Number.NEGATIVE_INFINITY,
  correction: 1,
  ladder: [],
  admitFactor: 1,
  lastBreachMs: Number.NEGATIVE_INFINITY,
  ceiling: Number.POSITIVE_INFINITY,
  ceilingRps: 0,
  ceilingUntilMs: Number.NEGATIVE_INFINITY,
  backoffMs: 0,
  overloadRps: 0,
  overloadOtherUtilisation: 0,
  overloadAtMs: Number.NEGATIVE_INFINITY,
  recoveredAtMs: Number.NEGATIVE_INFINITY,
  recoveryFailedAtMs: Number.NEGATIVE_INFINITY,
  missesSeen: 0,
  missesExpected: 0,
  riskAtMs: Number.NaN,
  riskPerRequest: 0,
};

export type RouteKind =
  | { readonly kind: 'adaptive' }
  | { readonly kind: 'fixed'; readonly variant: string; readonly maxBatch: number; readonly maxQueueDelayMs: number };

export type FixedPolicy = Extract<RouteKind, { kind: 'fixed' }>;

export interface RouteInput {
  readonly name: string;
  readonly model: string;
  readonly priority: number;
  readonly objective: 'max-accuracy' | 'min-cost' | 'utility';
  readonly utilityCostWeight: number;
  readonly slo: {
    readonly p99Ms: number;
    readonly minAccuracy?: number | undefined;
    readonly maxCostPerMillion?: number | undefined;
  };
  readonly policy: RouteKind;
  readonly allowed: readonly string[];
  readonly rate: RateSnapshot;
  readonly observedP99Ms: number;
  /**
   * p99 of the answers since the last switch (whole seconds after it, at least a few hundred answers; NaN otherwise or
   * when the switch is older than the window): the current choice's own record, while observedP99Ms's window still
   * holds the last choice's answers.
   */
  readonly observedSinceSwitchP99Ms: number;
  /**
   * p99 of the answers of the last whole second and the current one (NaN with too few): fresh evidence that an overload
   * has gone, while the observed window still holds its answers. Absent: unknown.
   */
  readonly recentP99Ms?: number;
  readonly overheadMs: number;
  /**
   * The same p90 over the last whole second and the current one; NaN with fewer than 20 answers. Fresh evidence once
   * an overload has gone while the 5 s window still holds it (read only then: overload.ts, freshLoad).
   */
  readonly recentOverheadMs?: number;
  readonly queuedRows: number;
  readonly state: RouteEngineState;
  /**
   * The highest p99 predicted by this route's decisions in force over the window observedP99Ms covers, and the
   * correction it was made with: what the observed p99 is checked against to learn the correction.
   */
  readonly windowPrediction: { readonly p99Ms: number; readonly correction: number };
  /** Requests answered, and answered late (after the route's p99 target), since the last decision. */
  readonly outcomes: { readonly answered: number; readonly missed: number };
}

export interface EngineSnapshot {
  readonly nowMs: number;
  readonly at: string;
  /** Replica slots (shared by every model). */
  readonly slots: number;
  /** Event-loop utilisation of the gateway since the last tick (0..1). */
  readonly gatewayUtilisation: number;
  /** Measured busy fraction of the replicas since the last tick (0..1). */
  readonly replicaUtilisation: number;
  readonly variants: ReadonlyMap<string, ReadonlyMap<string, VariantModel>>;
  readonly routes: readonly RouteInput[];
  readonly params: EngineParams;
}

export interface EngineResult {
  readonly decisions: ReadonlyMap<string, Decision>;
  readonly states: ReadonlyMap<string, RouteEngineState>;
  /** Batch knobs per variant ("model/variant") that routes decided (fixed policies included: the smallest wins). */
  readonly knobs: ReadonlyMap<string, BatchKnobs>;
  /**
   * The replicas or the gateway are over their planned load: shedding by capacity or by gateway saturation is on.
   * Sheddable (negative-priority) requests are refused everywhere while it lasts. Probes of a route that nothing can
   * serve do not count: they are no sign of load.
   */
  readonly underPressure: boolean;
}
