// The control loop beside the request path: every tick (and at once on an alarm) it takes the engine's snapshot
// (engine-inputs.ts), runs the pure engine, and publishes the decisions (read by the router and the admission gate
// without waiting), the batch knobs, metrics, one log line per change, a history, and backlog migration. The
// fixed-policy baselines (aimd-baseline.ts) and the admission gate (admission-gate.ts) are its parts.
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Config, EngineConfig } from '../core/config.js';
import type { Decision } from '../core/decision.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { variantKey } from '../core/types.js';
import type { RuntimePort } from '../runtime/port.js';
import { AdmissionGate } from './admission-gate.js';
import { AimdBaseline } from './aimd-baseline.js';
import {
  DEFAULT_ENGINE_PARAMS,
  decide,
  type EngineParams,
  type EngineResult,
  type EngineSnapshot,
  type RouteEngineState,
} from './engine/index.js';
import { EngineInputs, type EngineView } from './engine-inputs.js';
import type { DecisionSource, Router } from './router.js';

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
  readonly runtime: RuntimePort;
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
  /** Event-loop time spent on requests that never reach a model since the last call (ms; resets). */
  readonly otherWorkMs?: () => number;
  /** What a running rollout means for a variant's planning, for the decision's reason (policies/rollout/). */
  readonly rolloutNote?: (model: string, variant: string) => string | undefined;
  /** The share of a variant's batches a rollout also runs on its candidate (shadow work the engine plans with). */
  readonly shadowShare?: (model: string, variant: string) => number;
}

const HISTORY = 1000;
const MIN_ALARM_GAP_MS = 25;

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
  readonly #history: DecisionChange[] = [];
  #timer: TimerHandle | undefined;
  #lastTickMs = Number.NEGATIVE_INFINITY;
  #alarmPending = false;
  #running = false;
  /** Wall-clock cost of the last decide() call (ms), for the status page and benchmarks. */
  lastDecideMs = 0;
  /** The last snapshot decided on (for GET /admin/engine/snapshot and offline replay). */
  lastSnapshot: EngineSnapshot | undefined;
  /** Admission on the request path, fed by this loop's decisions. */
  readonly gate: AdmissionGate;
  readonly #inputs: EngineInputs;
  readonly #aimd: AimdBaseline;
  /** What a snapshot reads of this loop's state. */
  readonly #view: EngineView = {
    decision: (route) => this.#decisions.get(route),
    state: (route) => this.#states.get(route),
    aimdLimit: (model, variant) => this.#aimd.limit(model, variant),
  };

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#params = engineParams(deps.config.engine);
    this.gate = new AdmissionGate({
      runtime: deps.runtime,
      clock: deps.clock,
      current: (route) => this.#decisions.get(route),
      alarm: (route) => this.alarm(route),
    });
    const routes = () => deps.router.routes.values();
    this.#inputs = new EngineInputs({
      runtime: deps.runtime,
      routes,
      clock: deps.clock,
      params: this.#params,
      pricePerSlotMs: deps.pricePerSlotMs,
      defaultOverheadMs: deps.defaultOverheadMs,
      gatewayUtilisation: deps.gatewayUtilisation,
      otherWorkMs: deps.otherWorkMs,
      shadowShare: deps.shadowShare,
      admissionOverhead: (route, ms) => this.gate.setOverhead(route, ms),
    });
    this.#aimd = new AimdBaseline({ runtime: deps.runtime, routes, margin: this.#params.margin });
    deps.runtime.onBatch((o) => {
      // Batches before start() (the request path's warm-up) are no load and no evidence for AIMD.
      if (!this.#running) return;
      this.#inputs.addBusy(o.computeMs);
      this.#aimd.onBatch(o.model, o.variant, o.rows, o.serviceMs);
    });
    const m = deps.metrics;
    m.onCollect(m.arrivalRate, () => {
      for (const d of this.#decisions.values()) m.arrivalRate.labels(d.route).set(round(d.inputs.rateFast));
    });
    m.onCollect(m.sloLoadRatio, () => {
      for (const d of this.#decisions.values()) {
        const rate = Math.max(d.inputs.rateFast, d.inputs.rateSlow);
        const cap = d.inputs.capacityRps;
        if (Number.isFinite(cap) && cap > 0) m.sloLoadRatio.labels(d.route).set(round(rate / cap));
      }
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

  /** Drops a removed route's decision and engine state, so nothing reads them again. */
  forgetRoute(route: string): void {
    this.#decisions.delete(route);
    this.#states.delete(route);
  }

  get underPressure(): boolean {
    return this.gate.underPressure;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#inputs.startMeasuring();
    this.applyFixedKnobs();
    this.tick();
  }

  /** Batch knobs of the fixed-policy routes' variants (at start and after an admin change). */
  applyFixedKnobs(): void {
    this.#aimd.applyFixedKnobs();
  }

  /** Utilisations measured over the last tick (gateway event loop, replicas). */
  get utilisation(): { readonly gateway: number; readonly replicas: number } {
    return this.#inputs.utilisation;
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

  /** One control step: snapshot -> decide -> publish. */
  tick(): EngineResult | undefined {
    const { runtime, clock } = this.#deps;
    this.#alarmPending = false;
    this.#lastTickMs = clock.now();
    let result: EngineResult | undefined;
    // A tick that throws must not stop the loop nor take the process down: the decisions in force stay.
    try {
      if (runtime.ready) result = this.#step();
    } catch (err) {
      this.#deps.metrics.engineTickFailures.inc();
      this.#deps.logger.error({ err }, 'engine tick failed; the decisions in force stay');
    }
    this.#schedule(this.#deps.config.engine.tickMs);
    return result;
  }

  #step(): EngineResult {
    const snap = this.#inputs.snapshot(this.#view);
    this.lastSnapshot = snap;
    // The rate each route's decision plans for (the engine's max(instant, fast)): what a surge is measured against.
    for (const r of snap.routes) this.gate.plan(r.name, Math.max(r.rate.instant, r.rate.fast));
    const t0 = performance.now();
    const result = decide(snap);
    this.lastDecideMs = performance.now() - t0;
    this.#apply(result, snap.nowMs);
    return result;
  }

  /** The decision with its reason naming the rollouts of the variants it uses, if any. */
  #withRolloutNote(d: Decision): Decision {
    const note = this.#deps.rolloutNote;
    if (note === undefined) return d;
    const notes = d.variants.filter((s) => s.share > 0).flatMap((s) => note(d.model, s.variant) ?? []);
    return notes.length === 0 ? d : { ...d, reason: `${d.reason}; ${notes.join('; ')}` };
  }

  /** Moves the backlog a route built on variants it now uses less to the cheapest variant of its new mix. */
  #migrate(route: string, model: string, prev: Decision, next: Decision): void {
    const target = next.variants.find((s) => s.share > 0)?.variant;
    if (target === undefined) return;
    for (const s of prev.variants) {
      const after = share(next, s.variant);
      if (s.variant === target || s.share <= 0 || after >= s.share - 1e-9) continue;
      this.#deps.runtime.migrate(model, s.variant, target, route, (s.share - after) / s.share);
    }
  }

  #apply(result: EngineResult, nowMs: number): void {
    for (const [route, d] of result.decisions) this.#publish(route, d, result.states.get(route), nowMs);
    this.gate.underPressure = result.underPressure;
    const { runtime } = this.#deps;
    for (const [key, k] of result.knobs) {
      const [model, variant] = key.split('/') as [string, string];
      const cur = runtime.knobs(model, variant);
      if (cur.maxBatch !== k.maxBatch || cur.maxQueueDelayMs !== k.maxQueueDelayMs || cur.arrivalRps !== k.arrivalRps)
        runtime.setKnobs(model, variant, k);
    }
  }

  /** One route's new decision: to the router and the gate, metrics, backlog migration, the history and the log. */
  #publish(route: string, decided: Decision, state: RouteEngineState | undefined, nowMs: number): void {
    const { metrics, runtime, router } = this.#deps;
    const d = this.#withRolloutNote(decided);
    const prev = this.#decisions.get(route);
    this.#decisions.set(route, d);
    this.#inputs.recordPrediction(route, nowMs, d);
    if (state !== undefined) this.#states.set(route, state);
    this.gate.publish(route, d, nowMs, runtime.readySlots);
    const r = router.routes.get(route);
    const model = r?.model.name ?? d.model;
    for (const v of r?.model.variants.keys() ?? [])
      metrics.variantShare.labels(route, variantKey(model, v)).set(d.variants.find((s) => s.variant === v)?.share ?? 0);
    metrics.p99Predicted.labels(route).set(Number.isFinite(d.predictedP99Ms) ? d.predictedP99Ms / 1000 : 0);
    // NaN (no recent answers) rather than a stale value when traffic stops.
    metrics.p99Observed
      .labels(route)
      .set(Number.isFinite(d.inputs.observedP99Ms) ? d.inputs.observedP99Ms / 1000 : Number.NaN);
    if (prev !== undefined && r !== undefined && r.config.policy.kind === 'adaptive')
      this.#migrate(route, model, prev, d);
    if (prev === undefined || changed(prev, d)) this.#recordChange(route, prev, d);
  }

  /** A change of a route's mix or admission: counted, kept in the history, logged with its reason. */
  #recordChange(route: string, prev: Decision | undefined, d: Decision): void {
    const { metrics, logger } = this.#deps;
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
