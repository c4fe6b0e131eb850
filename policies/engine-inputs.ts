// The engine's inputs: the snapshot `decide()` reads (routes' rates, observed and predicted p99, outcomes since the last
// tick, gateway overhead, queued rows; variants' corrected service-time tables; replica slots), the prediction history
// it is checked against, and the utilisation meter (event loop and replicas, over each tick).
import type { Clock } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import { variantKey } from '../core/types.js';
import type { RuntimePort } from '../runtime/port.js';
import {
  type EngineParams,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
} from './engine/index.js';
import type { VariantModel } from './latency-model.js';
import type { RouteStats, RouteTotals } from './route-stats.js';
import type { RouteState } from './router.js';

/** Utilisation (event loop, replicas) is measured over at least this long. */
const MIN_UTILISATION_WINDOW_MS = 100;
/** The window of the observed p99 the engine reads (RouteStats.observedP99's default). */
const OBSERVED_WINDOW_MS = 5000;
/** Answers since a switch before their p99 speaks for the new choice (at most two of them late). */
const SINCE_SWITCH_MIN_ANSWERS = 200;
/** The fresh p99: the last whole second and the current one, from this many answers (the worst of them or better). */
const RECENT_WINDOW_MS = 1000;
const RECENT_MIN_ANSWERS = 50;

/** The p99 of a route's answers since its last switch, while the observed window still reaches back before it. */
export function observedSinceSwitch(stats: RouteStats, lastSwitchMs: number, nowMs: number): number {
  // The window reads whole seconds: it reaches before the switch until a whole window has passed after the second
  // the switch fell in.
  if (!Number.isFinite(lastSwitchMs) || nowMs - lastSwitchMs > OBSERVED_WINDOW_MS + 1000) return Number.NaN;
  return stats.observedP99Since(lastSwitchMs, SINCE_SWITCH_MIN_ANSWERS);
}

/** A decision's predicted p99 and the latency correction it was made with. */
export interface Prediction {
  readonly atMs: number;
  readonly p99Ms: number;
  readonly correction: number;
}

/**
 * The event loop's utilisation by inference over a window: the whole loop's, less the share other requests took.
 * Without a window (the first measurement) the whole loop's.
 */
export function inferenceUtilisation(loopUtilisation: number, windowMs: number, otherWorkMs: number): number {
  if (!(windowMs > 0)) return loopUtilisation;
  return Math.max(0, Math.min(1, loopUtilisation - otherWorkMs / windowMs));
}

/**
 * The highest p99 predicted by the decisions in force over an observed-latency window (its whole seconds, and the
 * decision in force when it began), with the correction it was made with; `history` is oldest first. The observed p99
 * of a window that spans a switch is the worse choice's: set against the last prediction alone, a downgrade from
 * `large` read `cnn-small`'s 2.7 ms prediction against `large`'s 25 ms and learnt a 2.3x correction.
 */
export function windowPrediction(
  history: readonly Prediction[],
  nowMs: number,
  windowMs: number,
): { p99Ms: number; correction: number } {
  const from = Math.floor((nowMs - windowMs) / 1000) * 1000;
  let best: Prediction | undefined;
  for (let i = history.length - 1; i >= 0; i--) {
    const e = history[i] as Prediction;
    if (Number.isFinite(e.p99Ms) && (best === undefined || e.p99Ms > best.p99Ms)) best = e;
    if (e.atMs <= from) break;
  }
  return best === undefined ? { p99Ms: Number.NaN, correction: 1 } : { p99Ms: best.p99Ms, correction: best.correction };
}

export interface EngineInputsDeps {
  readonly runtime: Pick<RuntimePort, 'models' | 'serviceTable' | 'queueStats' | 'readySlots'>;
  /** The routes as they are now (admin changes included). */
  readonly routes: () => Iterable<RouteState>;
  readonly clock: Clock;
  readonly params: EngineParams;
  /** Price of one replica slot per millisecond (pricing units). */
  readonly pricePerSlotMs: number;
  /** Default gateway overhead before it is measured (ms). */
  readonly defaultOverheadMs?: number | undefined;
  /** Event-loop utilisation since the last call (0..1); the real event loop by default, a model in the simulator. */
  readonly gatewayUtilisation?: (() => number) | undefined;
  /**
   * Event-loop time spent on requests that never reach a model since the last call (ms; resets): left out of the
   * gateway's utilisation, which then counts only what admitting less inference could relieve.
   */
  readonly otherWorkMs?: (() => number) | undefined;
  /** The share of a variant's batches also run elsewhere on its replicas (a rollout's shadow share; 0 by default). */
  readonly shadowShare?: ((model: string, variant: string) => number) | undefined;
  /** Where each route's recent gateway overhead goes at every snapshot (admission's deadline check). */
  readonly admissionOverhead: (route: string, overheadMs: number) => void;
}

/** What the control loop holds that a snapshot reads: the decision and engine state in force, AIMD's limits. */
export interface EngineView {
  decision(route: string): Decision | undefined;
  state(route: string): RouteEngineState | undefined;
  aimdLimit(model: string, variant: string): number;
}

export class EngineInputs {
  readonly #deps: EngineInputsDeps;
  /** Each route's predicted p99 per tick (ms), over the observed-latency window and the tick before it. */
  readonly #predicted = new Map<string, Prediction[]>();
  readonly #lastTotals = new Map<string, RouteTotals>();
  #elu = performance.eventLoopUtilization();
  #busyMs = 0;
  #lastSnapshotMs = Number.NaN;
  /** Utilisations measured over the last tick (gateway event loop, replicas). */
  readonly utilisation = { gateway: 0, replicas: 0 };

  constructor(deps: EngineInputsDeps) {
    this.#deps = deps;
  }

  /**
   * Utilisation is measured from here: start-up (profiling, the warm-up) kept the event loop busy, and reading that as
   * load would make the first decisions on a saturated gateway.
   */
  startMeasuring(): void {
    this.#elu = performance.eventLoopUtilization();
    this.#busyMs = 0;
    this.#deps.otherWorkMs?.();
    this.#lastSnapshotMs = this.#deps.clock.now();
  }

  /** A replica was busy this long (one batch). */
  addBusy(ms: number): void {
    this.#busyMs += ms;
  }

  /** The engine's snapshot of live state: routes, variants and their corrected profiles, replicas, utilisation. */
  snapshot(engine: EngineView): EngineSnapshot {
    const { runtime, routes: liveRoutes, clock } = this.#deps;
    const nowMs = clock.now();
    const variants = new Map<string, Map<string, VariantModel>>();
    for (const m of runtime.models.values()) {
      const vm = new Map<string, VariantModel>();
      for (const v of m.variants.values()) {
        const shadow = this.#deps.shadowShare?.(m.name, v.name) ?? 0;
        vm.set(v.name, {
          name: v.name,
          accuracy: v.accuracy ?? Number.NaN,
          table: runtime.serviceTable(m.name, v.name, m.config.maxBatch),
          maxBatch: m.config.maxBatch,
          pricePerSlotMs: this.#deps.pricePerSlotMs,
          ...(shadow > 0 ? { extraWorkShare: shadow } : {}),
        });
      }
      variants.set(m.name, vm);
    }
    const queued = new Map(runtime.queueStats().map((q) => [variantKey(q.model, q.variant), q.queuedRows]));
    const routes: RouteInput[] = [];
    for (const r of liveRoutes()) {
      const p = r.config.policy;
      const rate = r.stats.rates(nowMs);
      const prev = engine.decision(r.name);
      routes.push({
        name: r.name,
        model: r.model.name,
        priority: r.config.priority,
        objective: r.config.objective,
        utilityCostWeight: r.config.utilityCostWeight,
        slo: r.config.slo,
        policy:
          p.kind === 'adaptive'
            ? { kind: 'adaptive' }
            : p.kind === 'static'
              ? { kind: 'fixed', variant: p.variant, maxBatch: p.maxBatch, maxQueueDelayMs: p.maxQueueDelayMs }
              : {
                  kind: 'fixed',
                  variant: p.variant,
                  maxBatch: engine.aimdLimit(r.model.name, p.variant),
                  maxQueueDelayMs: 0,
                },
        allowed: r.allowed,
        rate,
        observedP99Ms: r.stats.observedP99(nowMs, OBSERVED_WINDOW_MS),
        observedSinceSwitchP99Ms: observedSinceSwitch(
          r.stats,
          (engine.state(r.name) ?? INITIAL_STATE).lastSwitchMs,
          nowMs,
        ),
        recentP99Ms: r.stats.observedP99(nowMs, RECENT_WINDOW_MS, RECENT_MIN_ANSWERS),
        overheadMs: r.stats.overheadHighMs(nowMs, this.#deps.defaultOverheadMs ?? 1),
        recentOverheadMs: r.stats.overheadHighMs(nowMs, Number.NaN, RECENT_WINDOW_MS),
        queuedRows:
          prev === undefined
            ? 0
            : prev.variants.reduce((a, s) => a + (queued.get(variantKey(r.model.name, s.variant)) ?? 0), 0),
        state: engine.state(r.name) ?? INITIAL_STATE,
        windowPrediction: windowPrediction(this.#predicted.get(r.name) ?? [], nowMs, OBSERVED_WINDOW_MS),
        outcomes: this.#outcomesSince(r.name, r.stats.totals),
      });
    }
    // Admission's deadline check looks at the overhead of the last second or two, not the engine's 5 s window: it
    // refuses requests on it, and refused requests measure nothing, so one slow second (a cold start's first requests)
    // would hold the door shut for the whole window. With nothing answered lately the default applies, and admission
    // lets requests in to measure again.
    for (const r of liveRoutes())
      this.#deps.admissionOverhead(r.name, r.stats.overheadHighMs(nowMs, this.#deps.defaultOverheadMs ?? 1, 1000));
    const slots = Math.max(1, runtime.readySlots);
    this.#measureUtilisation(nowMs, slots);
    return {
      nowMs,
      at: new Date().toISOString(),
      slots,
      gatewayUtilisation: this.utilisation.gateway,
      replicaUtilisation: this.utilisation.replicas,
      variants,
      routes,
      params: { ...this.#deps.params },
    };
  }

  #measureUtilisation(nowMs: number, slots: number): void {
    // An alarm tick soon after the last one keeps the last values: over a few ms, one GC pause or one batch reads as
    // a saturated event loop or replica, and the next measurement covers the whole span anyway.
    if (nowMs - this.#lastSnapshotMs < MIN_UTILISATION_WINDOW_MS) return;
    let loop: number;
    if (this.#deps.gatewayUtilisation !== undefined) loop = this.#deps.gatewayUtilisation();
    else {
      const elu = performance.eventLoopUtilization();
      loop = performance.eventLoopUtilization(elu, this.#elu).utilization;
      this.#elu = elu;
    }
    const dt = nowMs - this.#lastSnapshotMs;
    this.utilisation.gateway = inferenceUtilisation(loop, dt, this.#deps.otherWorkMs?.() ?? 0);
    this.utilisation.replicas = Number.isFinite(dt) && dt > 0 ? Math.min(1, this.#busyMs / (dt * slots)) : 0;
    this.#busyMs = 0;
    this.#lastSnapshotMs = nowMs;
  }

  /** Answered and late requests since the last snapshot (the engine checks its miss model against them). */
  #outcomesSince(route: string, t: RouteTotals): { answered: number; missed: number } {
    const prev = this.#lastTotals.get(route);
    this.#lastTotals.set(route, t);
    if (prev === undefined) return { answered: 0, missed: 0 };
    return { answered: t.met + t.missed - prev.met - prev.missed, missed: t.missed - prev.missed };
  }

  /** A decision's prediction, kept over the observed-latency window (see windowPrediction). */
  recordPrediction(route: string, nowMs: number, d: Decision): void {
    let h = this.#predicted.get(route);
    if (h === undefined) {
      h = [];
      this.#predicted.set(route, h);
    }
    h.push({ atMs: nowMs, p99Ms: d.predictedP99Ms, correction: d.inputs.correction });
    // Keep the window (plus a second for its whole-second start) and the entry in force when it began.
    const keepFrom = nowMs - OBSERVED_WINDOW_MS - 1000;
    let drop = 0;
    while (drop + 1 < h.length && (h[drop + 1] as Prediction).atMs <= keepFrom) drop++;
    if (drop > 0) h.splice(0, drop);
  }
}
