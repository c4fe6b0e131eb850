// The control loop beside the request path: every tick (and at once on an alarm) it snapshots the routes' rates and
// latencies, the replicas and the corrected latency profiles, runs the pure engine, and publishes the decisions
// (read by the router without waiting), the batch knobs, metrics, one log line per change, and a history.
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Config, EngineConfig } from '../core/config.js';
import type { Decision } from '../core/decision.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { Runtime } from '../runtime/runtime.js';
import { AdmissionGate } from './admission-gate.js';
import { aimdStep } from './aimd.js';
import type { VariantModel } from './latency-model.js';
import type { RouteStats, RouteTotals } from './route-stats.js';
import type { DecisionSource, Router } from './router.js';
import {
  DEFAULT_ENGINE_PARAMS,
  decide,
  type EngineParams,
  type EngineResult,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
} from './tradeoff-engine.js';

export interface DecisionChange {
  readonly at: string;
  readonly atMs: number;
  readonly route: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly decision: Decision;
}

export interface ControllerDeps {
  readonly config: Readonly<Config>;
  readonly runtime: Runtime;
  readonly router: Router;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Price of one replica slot per millisecond (pricing units). */
  readonly pricePerSlotMs: number;
  /** Default gateway overhead before it is measured (ms). */
  readonly defaultOverheadMs?: number;
  /** Event-loop utilisation since the last call (0..1); the real event loop by default, a model in the simulator. */
  readonly gatewayUtilisation?: () => number;
}

const HISTORY = 1000;
const MIN_ALARM_GAP_MS = 25;
/** Utilisation (event loop, replicas) is measured over at least this long. */
const MIN_UTILISATION_WINDOW_MS = 100;
/** The window of the observed p99 the engine reads (RouteStats.observedP99's default). */
const OBSERVED_WINDOW_MS = 5000;
/** Answers since a switch before their p99 speaks for the new choice (at most two of them late). */
const SINCE_SWITCH_MIN_ANSWERS = 200;

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

export function engineParams(c: EngineConfig): EngineParams {
  return {
    ...DEFAULT_ENGINE_PARAMS,
    margin: c.margin,
    maxUtilisation: c.maxUtilisation,
    upgradeTicks: c.upgradeTicks,
    upgradeHoldMs: c.upgradeHoldMs,
  };
}

export class Controller implements DecisionSource {
  readonly #deps: ControllerDeps;
  readonly #params: EngineParams;
  readonly #states = new Map<string, RouteEngineState>();
  readonly #decisions = new Map<string, Decision>();
  readonly #aimd = new Map<string, number>();
  readonly #history: DecisionChange[] = [];
  #timer: TimerHandle | undefined;
  #lastTickMs = Number.NEGATIVE_INFINITY;
  #alarmPending = false;
  /** Each route's predicted p99 per tick (ms), over the observed-latency window and the tick before it. */
  readonly #predicted = new Map<string, Prediction[]>();
  readonly #lastTotals = new Map<string, RouteTotals>();
  #running = false;
  /** Wall-clock cost of the last decide() call (ms), for the status page and benchmarks. */
  lastDecideMs = 0;
  #elu = performance.eventLoopUtilization();
  #busyMs = 0;
  #lastSnapshotMs = Number.NaN;
  /** Utilisations measured over the last tick (gateway event loop, replicas). */
  utilisation = { gateway: 0, replicas: 0 };
  /** The last snapshot decided on (for GET /admin/engine/snapshot and offline replay). */
  lastSnapshot: EngineSnapshot | undefined;
  /** Admission on the request path, fed by this loop's decisions. */
  readonly gate: AdmissionGate;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#params = engineParams(deps.config.engine);
    this.gate = new AdmissionGate({
      runtime: deps.runtime,
      clock: deps.clock,
      current: (route) => this.#decisions.get(route),
      alarm: (route) => this.alarm(route),
    });
    deps.runtime.onBatch((o) => {
      // Batches before start() (the request path's warm-up) are no load and no evidence for AIMD.
      if (!this.#running) return;
      this.#busyMs += o.computeMs;
      this.#onBatch(o.model, o.variant, o.rows, o.serviceMs);
    });
    const m = deps.metrics;
    m.onCollect(m.arrivalRate, () => {
      for (const d of this.#decisions.values()) m.arrivalRate.labels(d.route).set(round(d.inputs.rateFast));
    });
  }

  current(route: string): Decision | undefined {
    return this.#decisions.get(route);
  }

  get decisions(): ReadonlyMap<string, Decision> {
    return this.#decisions;
  }

  engineState(route: string): RouteEngineState | undefined {
    return this.#states.get(route);
  }

  /** Decision changes since `sinceMs` (clock ms), oldest first. */
  history(sinceMs = Number.NEGATIVE_INFINITY): DecisionChange[] {
    return this.#history.filter((h) => h.atMs > sinceMs);
  }

  get underPressure(): boolean {
    return this.gate.underPressure;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    // Utilisation is measured from here: start-up (profiling, the warm-up) kept the event loop busy, and reading that
    // as load would make the first decisions on a saturated gateway.
    this.#elu = performance.eventLoopUtilization();
    this.#busyMs = 0;
    this.#lastSnapshotMs = this.#deps.clock.now();
    this.applyFixedKnobs();
    this.tick();
  }

  /**
   * Batch knobs of variants that fixed policies name: `static` sets them (capped by the model's maxBatch), `aimd`
   * starts at 1 and adapts. Knobs belong to a variant's queue: routes naming the same variant share the smaller.
   */
  applyFixedKnobs(): void {
    const want = new Map<string, { model: string; variant: string; maxBatch: number; maxQueueDelayMs: number }>();
    for (const r of this.#deps.router.routes.values()) {
      const p = r.config.policy;
      if (p.kind === 'adaptive') continue;
      const variant = p.variant;
      const maxBatch = Math.min(
        r.model.config.maxBatch,
        p.kind === 'static' ? p.maxBatch : (this.#aimd.get(`${r.model.name}/${variant}`) ?? 1),
      );
      const delay = p.kind === 'static' ? p.maxQueueDelayMs : 0;
      const key = `${r.model.name}/${variant}`;
      const prev = want.get(key);
      want.set(key, {
        model: r.model.name,
        variant,
        maxBatch: Math.min(prev?.maxBatch ?? maxBatch, maxBatch),
        maxQueueDelayMs: Math.min(prev?.maxQueueDelayMs ?? delay, delay),
      });
    }
    for (const k of want.values())
      this.#deps.runtime.setKnobs(k.model, k.variant, { maxBatch: k.maxBatch, maxQueueDelayMs: k.maxQueueDelayMs });
  }

  close(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#deps.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    if (this.#timer !== undefined) this.#deps.clock.clearTimer(this.#timer);
    this.#timer = this.#deps.clock.setTimer(() => {
      this.#timer = undefined;
      this.tick();
    }, delayMs);
  }

  alarm(_route: string): void {
    if (!this.#running || this.#alarmPending) return;
    // Too soon after the last tick: tick as soon as the gap allows (an alarm is never dropped: an admin PUT must take
    // effect even when it lands just after a tick).
    const since = this.#deps.clock.now() - this.#lastTickMs;
    this.#alarmPending = true;
    this.#schedule(Math.max(0, MIN_ALARM_GAP_MS - since));
  }

  /** AIMD routes adapt their variant's batch limit after every batch of it. */
  #onBatch(model: string, variant: string, rows: number, serviceMs: number): void {
    for (const r of this.#deps.router.routes.values()) {
      const p = r.config.policy;
      if (p.kind !== 'aimd' || p.variant !== variant || r.model.name !== model) continue;
      const key = `${model}/${variant}`;
      const cur = this.#aimd.get(key) ?? 1;
      const budgetMs = ((1 - this.#params.margin) * r.config.slo.p99Ms) / 2;
      const next = aimdStep(
        { maxBatch: cur },
        { serviceMs, rows },
        { budgetMs, ceiling: Math.min(p.maxBatch, r.model.config.maxBatch) },
      ).maxBatch;
      if (next !== cur) {
        this.#aimd.set(key, next);
        this.#deps.runtime.setKnobs(model, variant, { maxBatch: next, maxQueueDelayMs: 0 });
      }
      return;
    }
  }

  /** Builds the engine's snapshot from live state (exported shape: the simulator and tests build it too). */
  snapshot(): EngineSnapshot {
    const { runtime, router, clock, config } = this.#deps;
    const nowMs = clock.now();
    const variants = new Map<string, Map<string, VariantModel>>();
    for (const m of runtime.repository.models.values()) {
      const vm = new Map<string, VariantModel>();
      for (const v of m.variants.values()) {
        vm.set(v.name, {
          name: v.name,
          accuracy: v.accuracy ?? Number.NaN,
          table: runtime.profiles.table(m.name, v.name, m.config.maxBatch),
          maxBatch: m.config.maxBatch,
          pricePerSlotMs: this.#deps.pricePerSlotMs,
        });
      }
      variants.set(m.name, vm);
    }
    const queued = new Map(runtime.queueStats().map((q) => [`${q.model}/${q.variant}`, q.queuedRows]));
    const routes: RouteInput[] = [];
    for (const r of router.routes.values()) {
      const p = r.config.policy;
      const rate = r.stats.rates(nowMs);
      const prev = this.#decisions.get(r.name);
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
                  maxBatch: this.#aimd.get(`${r.model.name}/${p.variant}`) ?? 1,
                  maxQueueDelayMs: 0,
                },
        allowed: r.allowed,
        rate,
        observedP99Ms: r.stats.observedP99(nowMs, OBSERVED_WINDOW_MS),
        observedSinceSwitchP99Ms: observedSinceSwitch(
          r.stats,
          (this.#states.get(r.name) ?? INITIAL_STATE).lastSwitchMs,
          nowMs,
        ),
        overheadMs: r.stats.overheadHighMs(nowMs, this.#deps.defaultOverheadMs ?? 1),
        queuedRows:
          prev === undefined
            ? 0
            : prev.variants.reduce((a, s) => a + (queued.get(`${r.model.name}/${s.variant}`) ?? 0), 0),
        state: this.#states.get(r.name) ?? INITIAL_STATE,
        windowPrediction: windowPrediction(this.#predicted.get(r.name) ?? [], nowMs, OBSERVED_WINDOW_MS),
        outcomes: this.#outcomesSince(r.name, r.stats.totals),
      });
    }
    // Admission's deadline check looks at the overhead of the last second or two, not the engine's 5 s window: it
    // refuses requests on it, and refused requests measure nothing, so one slow second (a cold start's first requests
    // took 38 ms of overhead) would hold the door shut for the whole window. With nothing answered lately the
    // default applies, and admission lets requests in to measure again.
    for (const r of router.routes.values())
      this.gate.setOverhead(r.name, r.stats.overheadHighMs(nowMs, this.#deps.defaultOverheadMs ?? 1, 1000));
    const slots = Math.max(1, runtime.pool.readySlots);
    this.#measureUtilisation(nowMs, slots);
    return {
      nowMs,
      at: new Date().toISOString(),
      slots,
      gatewayUtilisation: this.utilisation.gateway,
      replicaUtilisation: this.utilisation.replicas,
      variants,
      routes,
      params: { ...this.#params, maxUtilisation: config.engine.maxUtilisation },
    };
  }

  #measureUtilisation(nowMs: number, slots: number): void {
    // An alarm tick soon after the last one keeps the last values: over a few ms, one GC pause or one batch reads as
    // a saturated event loop or replica, and the next measurement covers the whole span anyway.
    if (nowMs - this.#lastSnapshotMs < MIN_UTILISATION_WINDOW_MS) return;
    if (this.#deps.gatewayUtilisation !== undefined) this.utilisation.gateway = this.#deps.gatewayUtilisation();
    else {
      const elu = performance.eventLoopUtilization();
      this.utilisation.gateway = performance.eventLoopUtilization(elu, this.#elu).utilization;
      this.#elu = elu;
    }
    const dt = nowMs - this.#lastSnapshotMs;
    this.utilisation.replicas = Number.isFinite(dt) && dt > 0 ? Math.min(1, this.#busyMs / (dt * slots)) : 0;
    this.#busyMs = 0;
    this.#lastSnapshotMs = nowMs;
  }

  /** One control step: snapshot -> decide -> publish. */
  tick(): EngineResult | undefined {
    const { runtime, clock } = this.#deps;
    this.#alarmPending = false;
    this.#lastTickMs = clock.now();
    let result: EngineResult | undefined;
    if (runtime.ready) {
      const snap = this.snapshot();
      this.lastSnapshot = snap;
      // The rate each route's decision plans for (the engine's max(instant, fast)): what a surge is measured against.
      for (const r of snap.routes) this.gate.plan(r.name, Math.max(r.rate.instant, r.rate.fast));
      const t0 = performance.now();
      result = decide(snap);
      this.lastDecideMs = performance.now() - t0;
      this.#apply(result, snap.nowMs);
    }
    this.#schedule(this.#deps.config.engine.tickMs);
    return result;
  }

  /** Moves the backlog a route built on variants it now uses less to the cheapest variant of its new mix. */
  #migrate(route: string, model: string, prev: Decision, next: Decision): void {
    const target = next.variants.find((s) => s.share > 0)?.variant;
    if (target === undefined) return;
    for (const s of prev.variants) {
      const after = share(next, s.variant);
      if (s.variant === target || s.share <= 0 || after >= s.share - 1e-9) continue;
      this.#deps.runtime.scheduler.migrate(model, s.variant, target, route, (s.share - after) / s.share);
    }
  }

  /** Answered and late requests since the last snapshot (the engine checks its miss model against them). */
  #outcomesSince(route: string, t: RouteTotals): { answered: number; missed: number } {
    const prev = this.#lastTotals.get(route);
    this.#lastTotals.set(route, t);
    if (prev === undefined) return { answered: 0, missed: 0 };
    return { answered: t.met + t.missed - prev.met - prev.missed, missed: t.missed - prev.missed };
  }

  #recordPrediction(route: string, nowMs: number, d: Decision): void {
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

  #apply(result: EngineResult, nowMs: number): void {
    const { metrics, logger, runtime, router } = this.#deps;
    for (const [route, d] of result.decisions) {
      const prev = this.#decisions.get(route);
      this.#decisions.set(route, d);
      this.#recordPrediction(route, nowMs, d);
      const st = result.states.get(route);
      if (st !== undefined) this.#states.set(route, st);
      this.gate.publish(route, d, nowMs, runtime.pool.readySlots);
      const r = router.routes.get(route);
      const model = r?.model.name ?? d.model;
      for (const v of r?.model.variants.keys() ?? [])
        metrics.variantShare.labels(route, `${model}/${v}`).set(d.variants.find((s) => s.variant === v)?.share ?? 0);
      metrics.p99Predicted.labels(route).set(Number.isFinite(d.predictedP99Ms) ? d.predictedP99Ms / 1000 : 0);
      // NaN (no recent answers) rather than a stale value when traffic stops.
      metrics.p99Observed
        .labels(route)
        .set(Number.isFinite(d.inputs.observedP99Ms) ? d.inputs.observedP99Ms / 1000 : Number.NaN);
      if (prev !== undefined && r !== undefined && r.config.policy.kind === 'adaptive')
        this.#migrate(route, model, prev, d);
      if (prev === undefined || changed(prev, d)) {
        const from = prev === undefined ? '(none)' : describe(prev);
        const to = describe(d);
        if (prev !== undefined) metrics.decisionChanges.labels(route).inc();
        this.#history.push({ at: d.at, atMs: d.atMs, route, from, to, reason: d.reason, decision: d });
        if (this.#history.length > HISTORY) this.#history.shift();
        logger.info(
          {
            route,
            from,
            to,
            reason: d.reason,
            rate: round(d.inputs.rateFast),
            predictedP99Ms: round(d.predictedP99Ms),
            observedP99Ms: round(d.inputs.observedP99Ms),
          },
          `decision ${route}: ${from} -> ${to}: ${d.reason}`,
        );
      }
    }
    this.gate.underPressure = result.underPressure;
    for (const [key, k] of result.knobs) {
      const [model, variant] = key.split('/') as [string, string];
      const cur = runtime.scheduler.knobs(model, variant);
      if (cur.maxBatch !== k.maxBatch || cur.maxQueueDelayMs !== k.maxQueueDelayMs) runtime.setKnobs(model, variant, k);
    }
  }
}

function share(d: Decision, variant: string): number {
  return d.variants.find((s) => s.variant === variant)?.share ?? 0;
}

function describe(d: Decision): string {
  const mix = d.variants
    .filter((s) => s.share > 0)
    .map((s) => (s.share === 1 ? s.variant : `${Math.round(s.share * 100)}% ${s.variant}`))
    .join(' + ');
  const adm = Number.isFinite(d.admissionRps) ? `, admit ${Math.round(d.admissionRps)} req/s` : '';
  return `${mix} (batch <= ${d.maxBatch}${adm})`;
}

/** A change of the variant mix or of admission (batch limits move with load and are not "switches"). */
function changed(a: Decision, b: Decision): boolean {
  if (a.variants.length !== b.variants.length) return true;
  for (let i = 0; i < a.variants.length; i++) {
    const x = a.variants[i];
    const y = b.variants[i];
    if (x?.variant !== y?.variant || Math.abs((x?.share ?? 0) - (y?.share ?? 0)) > 0.01) return true;
  }
  const fa = Number.isFinite(a.admissionRps);
  const fb = Number.isFinite(b.admissionRps);
  if (fa !== fb) return true;
  return fa && fb && Math.abs(a.admissionRps - b.admissionRps) > 0.1 * Math.max(1, a.admissionRps);
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 100) / 100 : x;
}
