// The request path's policy step for an admitted request: find the route, pick the variant from the route's current
// decision (never waiting on the engine) or the pinned version, look in the response cache, and submit to the runtime
// with the deadline and priority the admission gate set (admission-gate.ts). Outcomes go to the SLO recorder.
import type { CancelSignal } from '../core/cancel.js';
import type { Clock } from '../core/clock.js';
import type { RouteConfig } from '../core/config.js';
import type { Decision } from '../core/decision.js';
import { SlogateError } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Tensor } from '../core/types.js';
import type { ModelInfo } from '../runtime/model-repository.js';
import type { RuntimePort } from '../runtime/port.js';
import { cacheKey, ResponseCache } from '../runtime/response-cache.js';
import type { SubmitResult } from '../runtime/types.js';
import type { Admitted } from './admission.js';
import { bestEffortDeadline } from './best-effort.js';
import { RouteStats } from './route-stats.js';
import { variantForSize } from './size-fit.js';
import { VariantPicker } from './variant-picker.js';

export interface RouteState {
  readonly name: string;
  config: Readonly<RouteConfig>;
  readonly model: ModelInfo;
  /** Variants this route may use, most accurate first. */
  allowed: readonly string[];
  readonly picker: VariantPicker;
  readonly stats: RouteStats;
  /** Decision the picker was last set from. */
  pickedFrom: Decision | undefined;
  /** The route's response cache, when its config asks for one. */
  cache: ResponseCache | undefined;
}

/** Where the router reads a route's latest decision (the engine, or a fixed choice). */
export interface DecisionSource {
  current(route: string): Decision | undefined;
  /** The engine sees the system under pressure: no best-effort service then. */
  readonly underPressure?: boolean;
}

/** What the runtime answered, and whether the request was served best-effort (past a deadline it could never meet). */
export interface RoutedResult extends SubmitResult {
  readonly bestEffort?: boolean;
  /** Arrival to routing (ms): the body's reading and parsing, which the gateway overhead after routing leaves out. */
  readonly routedMs?: number;
}

export interface InferCall {
  readonly route: string;
  /** A variant pinned by the URL (/versions/{v}); bypasses the decision. */
  readonly pinnedVariant?: string | undefined;
  readonly inputs: readonly Tensor[];
  readonly rows: number;
  readonly outputs?: readonly string[] | undefined;
  readonly arrivalMs: number;
  /** The caller's reading of the clock as it hands the call over (the router reads it when absent). */
  readonly nowMs?: number | undefined;
  /** What the admission gate let in: the deadline and priority it goes with. */
  readonly admitted: Admitted;
  readonly signal?: CancelSignal | undefined;
}

export interface RouterDeps {
  readonly runtime: Pick<RuntimePort, 'model' | 'submit' | 'serviceMs' | 'backlogMs'>;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly routes: Readonly<Record<string, RouteConfig>>;
  /** Monotonic clock -> wall clock offset (ms) for the per-second history. */
  readonly wallOffsetMs?: number;
}

export class Router {
  readonly #deps: RouterDeps;
  readonly #routes = new Map<string, RouteState>();
  #decisions: DecisionSource | undefined;

  constructor(deps: RouterDeps) {
    this.#deps = deps;
    for (const [name, rc] of Object.entries(deps.routes)) this.#routes.set(name, this.#makeState(name, rc));
  }

  #makeState(name: string, rc: Readonly<RouteConfig>): RouteState {
    const model = this.#deps.runtime.model(rc.model);
    // Every outcome series exists from the start (at 0), so rates and burn-rate alerts work before the first miss.
    for (const outcome of ['met', 'missed', 'shed', 'dropped'] as const)
      this.#deps.metrics.sloRequests.labels(name, outcome).inc(0);
    return {
      name,
      config: rc,
      model,
      allowed: allowedVariants(model, rc),
      picker: new VariantPicker(),
      stats: new RouteStats({ wallOffsetMs: this.#deps.wallOffsetMs ?? 0 }),
      pickedFrom: undefined,
      cache: this.#makeCache(rc),
    };
  }

  #makeCache(rc: Readonly<RouteConfig>): ResponseCache | undefined {
    return rc.cache === undefined ? undefined : new ResponseCache(rc.cache, this.#deps.clock);
  }

  setDecisionSource(source: DecisionSource): void {
    this.#decisions = source;
  }

  get routes(): ReadonlyMap<string, RouteState> {
    return this.#routes;
  }

  route(name: string): RouteState {
    const r = this.#routes.get(name);
    if (r === undefined) throw new SlogateError('SLOGATE_ERR_ROUTE_NOT_FOUND', `unknown model '${name}'`);
    return r;
  }

  /** Replaces a route's policy (hot update, or a new route); the engine picks it up at its next tick. */
  updateRoute(name: string, rc: Readonly<RouteConfig>): RouteState {
    const existing = this.#routes.get(name);
    if (existing !== undefined && existing.config.model === rc.model) {
      const cacheChanged = JSON.stringify(existing.config.cache) !== JSON.stringify(rc.cache);
      existing.config = rc;
      existing.allowed = allowedVariants(existing.model, rc);
      if (cacheChanged) existing.cache = this.#makeCache(rc);
      return existing;
    }
    const state = this.#makeState(name, rc);
    this.#routes.set(name, state);
    return state;
  }

  /** Removes a route: new requests to it get 404; requests already admitted finish. */
  removeRoute(name: string): boolean {
    return this.#routes.delete(name);
  }

  /** The variant a request to this route goes to now. */
  chooseVariant(r: RouteState): string {
    const d = this.#decisions?.current(r.name);
    if (d !== undefined && d !== r.pickedFrom) {
      r.picker.set(d.variants);
      r.pickedFrom = d;
    }
    const picked = r.picker.pick();
    // A decision made before a variant was removed may still name it until the engine decides again.
    return picked !== undefined && r.allowed.includes(picked) ? picked : fallbackVariant(r);
  }

  /** An adaptive route's request that cannot make its deadline on the mix's variant goes to the best one that can. */
  #fitToSize(r: RouteState, picked: string, rows: number, deadlineAtMs: number, nowMs: number): string {
    if (r.config.policy.kind !== 'adaptive') return picked;
    const rt = this.#deps.runtime;
    const model = r.model.name;
    const minAccuracy = r.config.slo.minAccuracy ?? Number.NEGATIVE_INFINITY;
    return variantForSize(picked, () => eligibleVariants(r, minAccuracy), {
      rows,
      nowMs,
      deadlineAtMs,
      overheadMs: overheadAfterRouteMs(r, nowMs),
      backlogMs: (beforeMs) => rt.backlogMs(beforeMs),
      serviceMs: (variant, n) => rt.serviceMs(model, variant, n, 'p99', nowMs),
    });
  }

  /** The deadline of a request served best-effort (one it could never meet alone), or undefined to serve it as usual. */
  #bestEffort(r: RouteState, variant: string, call: InferCall, nowMs: number): number | undefined {
    const rt = this.#deps.runtime;
    const model = r.model.name;
    return bestEffortDeadline({
      nowMs,
      deadlineAtMs: call.admitted.deadlineAtMs,
      // The model's own time: the gateway's overhead is a passing state of the host, not the request's.
      idleMs: rt.serviceMs(model, variant, call.rows, 'p50', nowMs),
      idleP99Ms: () => rt.serviceMs(model, variant, call.rows, 'p99', nowMs) + cappedOverheadMs(r),
      clientTimeout: call.admitted.clientTimeout === true,
      backlogMs: () => rt.backlogMs(),
      p99Ms: r.config.slo.p99Ms,
      underPressure: this.#decisions?.underPressure === true,
    });
  }

  /** Sends an admitted request to the variant its route's decision (or its pinned version) names. */
  infer(call: InferCall): Promise<RoutedResult> {
    const r = this.route(call.route);
    const nowMs = call.nowMs ?? this.#deps.clock.now();
    const routedMs = nowMs - call.arrivalMs;
    const { priority } = call.admitted;
    let { deadlineAtMs } = call.admitted;
    let variant: string;
    let fallbackVariant: string | undefined;
    if (call.pinnedVariant !== undefined) {
      if (!r.allowed.includes(call.pinnedVariant))
        throw new SlogateError(
          'SLOGATE_ERR_VARIANT_NOT_FOUND',
          `model '${r.name}' has no version '${call.pinnedVariant}'`,
        );
      variant = call.pinnedVariant;
    } else {
      variant = this.#fitToSize(r, this.chooseVariant(r), call.rows, deadlineAtMs, nowMs);
      fallbackVariant = r.pickedFrom?.fallbackVariant;
      if (fallbackVariant !== undefined && !r.allowed.includes(fallbackVariant)) fallbackVariant = undefined;
    }
    const bestEffortBy = this.#bestEffort(r, variant, call, nowMs);
    if (bestEffortBy !== undefined) {
      deadlineAtMs = bestEffortBy;
      fallbackVariant = undefined;
    }
    const cache = call.admitted.useCache ? r.cache : undefined;
    let key: string | undefined;
    if (cache !== undefined) {
      key = cacheKey(r.model.variants.get(variant)?.sha256 ?? variant, call.inputs, call.outputs);
      const hit = cache.get(key);
      this.#deps.metrics.cacheRequests.labels(r.name, hit === undefined ? 'miss' : 'hit').inc();
      if (hit !== undefined)
        return Promise.resolve({
          outputs: hit,
          model: r.model.name,
          variant,
          queueMs: 0,
          serviceMs: 0,
          computeMs: 0,
          inferMs: 0,
          batchRows: call.rows,
          replicaId: 'cache',
        });
    }
    const submitted = this.#deps.runtime.submit({
      model: r.model.name,
      variant,
      inputs: call.inputs,
      rows: call.rows,
      outputs: call.outputs,
      arrivalMs: call.arrivalMs,
      deadlineAtMs,
      priority,
      signal: call.signal,
      tag: r.name,
      pinned: call.pinnedVariant !== undefined,
      fallbackVariant,
    });
    const routed = (res: SubmitResult): RoutedResult => routedResult(res, routedMs, bestEffortBy !== undefined);
    if (cache === undefined || key === undefined) return submitted.then(routed);
    const k = key;
    // Stored under the variant asked for: an answer rescued onto another variant is not cached.
    return submitted.then((res) => {
      if (res.variant === variant) cache.set(k, res.outputs);
      return routed(res);
    });
  }
}

/**
 * The result as a literal of one shape, not a spread: V8 gave each spread copy a map of its own, and every read of it
 * downstream missed its inline caches.
 */
function routedResult(res: SubmitResult, routedMs: number, bestEffort: boolean): RoutedResult {
  return {
    outputs: res.outputs,
    model: res.model,
    variant: res.variant,
    queueMs: res.queueMs,
    serviceMs: res.serviceMs,
    computeMs: res.computeMs,
    inferMs: res.inferMs,
    batchRows: res.batchRows,
    replicaId: res.replicaId,
    revision: res.revision,
    bestEffort,
    routedMs,
  };
}

/** Variants a route may use, most accurate first (unknown accuracy last), honouring the route's variant list. */
export function allowedVariants(model: ModelInfo, rc: Readonly<RouteConfig>): string[] {
  const names = rc.variants ?? [...model.variants.keys()];
  return [...names].sort((a, b) => (model.variants.get(b)?.accuracy ?? -1) - (model.variants.get(a)?.accuracy ?? -1));
}

/** The route's recent gateway overhead, capped at half its p99 target: a spike is no reason to give accuracy up. */
function cappedOverheadMs(r: RouteState): number {
  const ms = r.pickedFrom?.inputs.overheadMs ?? 0;
  return Number.isFinite(ms) ? Math.min(ms, r.config.slo.p99Ms / 2) : 0;
}

/**
 * The gateway overhead a routed request still has ahead of it (the hop back, encoding: its body is already parsed), at
 * p90 over the last seconds, capped like cappedOverheadMs; the whole overhead until enough answers measured it.
 */
function overheadAfterRouteMs(r: RouteState, nowMs: number): number {
  const ms = r.stats.overheadAfterRouteHighMs(nowMs);
  return Number.isFinite(ms) ? Math.min(ms, r.config.slo.p99Ms / 2) : cappedOverheadMs(r);
}

/** The allowed variants that meet the route's accuracy floor (unknown accuracy never does), most accurate first. */
function eligibleVariants(r: RouteState, minAccuracy: number): string[] {
  return r.allowed.filter((v) => (r.model.variants.get(v)?.accuracy ?? 0) >= minAccuracy);
}

/** Before the engine's first decision for a route: a fixed policy's own variant, else the most accurate allowed. */
function fallbackVariant(r: RouteState): string {
  const p = r.config.policy;
  return p.kind === 'adaptive' ? (r.allowed[0] as string) : p.variant;
}
