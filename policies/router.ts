// The request path's policy step: find the route, pick the variant from the route's current decision (never
// waiting on the engine), set the deadline and priority, ask admission, submit to the runtime, and account the
// outcome against the route's SLO (metrics and the route's own statistics, which the engine reads).
import type { CancelSignal } from '../core/cancel.js';
import type { Clock } from '../core/clock.js';
import type { RouteConfig } from '../core/config.js';
import type { Decision } from '../core/decision.js';
import { ERROR_CATALOG, isErrorCode, SlogateError } from '../core/errors.js';
import type { Metrics, SloOutcome } from '../core/metrics.js';
import type { Tensor } from '../core/types.js';
import type { SubmitResult } from '../runtime/batcher.js';
import type { ModelInfo } from '../runtime/model-repository.js';
import { cacheKey, ResponseCache } from '../runtime/response-cache.js';
import type { Runtime } from '../runtime/runtime.js';
import { RouteStats } from './route-stats.js';
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

export interface AdmissionRequest {
  readonly nowMs: number;
  readonly deadlineAtMs: number;
  readonly priority: number;
  /** Only the priority rule (sheddable under pressure): the rest of admission already ran for this request. */
  readonly priorityOnly?: boolean;
}

/** Where the router reads a route's latest decision (the engine, or a fixed choice). */
export interface DecisionSource {
  current(route: string): Decision | undefined;
  /** A refusal for one request of the route, or undefined to admit it. */
  admit?(route: RouteState, request: AdmissionRequest): SlogateError | undefined;
  /** An answer to the route came back later than its p99 target. */
  alarm?(route: string): void;
}

export interface InferCall {
  readonly route: string;
  /** A variant pinned by the URL (/versions/{v}); bypasses the decision and admission. */
  readonly pinnedVariant?: string | undefined;
  readonly inputs: readonly Tensor[];
  readonly rows: number;
  readonly outputs?: readonly string[] | undefined;
  readonly arrivalMs: number;
  /** Triton's `timeout` parameter, converted to ms: tightens the deadline. */
  readonly timeoutMs?: number | undefined;
  /** Request `priority` parameter: overrides the route's priority. */
  readonly priority?: number | undefined;
  readonly signal?: CancelSignal | undefined;
  /** The gateway already counted the arrival and ran admission (before parsing the body): skip both here. */
  readonly admitted?: boolean | undefined;
  /**
   * The start-up warm-up's synthetic request: no deadline to speak of (30 s), and it neither reads nor fills the
   * response cache (nor counts in its metric).
   */
  readonly uncounted?: boolean | undefined;
}

export interface RouterDeps {
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly routes: Readonly<Record<string, RouteConfig>>;
  /** Price of one replica slot per millisecond (pricing units), for slogate_cost_total. */
  readonly pricePerSlotMs?: number;
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
    const model = this.#deps.runtime.repository.model(rc.model);
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
    return rc.cache === undefined
      ? undefined
      : new ResponseCache(rc.cache.maxEntries, rc.cache.ttlMs, this.#deps.clock);
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

  /** The variant a request to this route goes to now. */
  chooseVariant(r: RouteState): string {
    const d = this.#decisions?.current(r.name);
    if (d !== undefined && d !== r.pickedFrom) {
      r.picker.set(d.variants);
      r.pickedFrom = d;
    }
    return r.picker.pick() ?? fallbackVariant(r);
  }

  /**
   * Counts an arrival and asks admission, before the body is even parsed (a refused request then costs almost
   * nothing). Pinned versions bypass admission. Returns the refusal, or undefined to go on.
   */
  admit(
    r: RouteState,
    arrivalMs: number,
    pinned: boolean,
    priority = r.config.priority,
    timeoutMs?: number,
  ): SlogateError | undefined {
    r.stats.arrive(arrivalMs);
    if (pinned) return undefined;
    return this.#decisions?.admit?.(r, {
      nowMs: this.#deps.clock.now(),
      deadlineAtMs: this.#deadline(r, arrivalMs, timeoutMs),
      priority,
    });
  }

  #deadline(r: RouteState, arrivalMs: number, timeoutMs: number | undefined): number {
    const d = arrivalMs + r.config.slo.p99Ms;
    return timeoutMs === undefined ? d : Math.min(d, arrivalMs + timeoutMs);
  }

  infer(call: InferCall): Promise<SubmitResult> {
    const r = this.route(call.route);
    // The warm-up's requests wait for their answer whatever it takes: a drop would leave cold the path they are there
    // to run.
    const deadlineAtMs =
      call.uncounted === true ? call.arrivalMs + WARMUP_DEADLINE_MS : this.#deadline(r, call.arrivalMs, call.timeoutMs);
    const priority = call.priority ?? r.config.priority;
    if (call.admitted !== true) {
      const refusal = this.admit(r, call.arrivalMs, call.pinnedVariant !== undefined, priority, call.timeoutMs);
      if (refusal !== undefined) throw refusal;
    } else if (call.priority !== undefined && call.priority < 0 && call.pinnedVariant === undefined) {
      // The body made this request sheddable: ask admission again with its own priority.
      const refusal = this.#decisions?.admit?.(r, {
        nowMs: this.#deps.clock.now(),
        deadlineAtMs,
        priority,
        priorityOnly: true,
      });
      if (refusal !== undefined) throw refusal;
    }
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
      variant = this.chooseVariant(r);
      fallbackVariant = r.pickedFrom?.fallbackVariant;
    }
    const cache = call.uncounted === true ? undefined : r.cache;
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
      fallbackVariant,
    });
    if (cache === undefined || key === undefined) return submitted;
    const k = key;
    // Stored under the variant asked for: an answer rescued onto another variant is not cached.
    return submitted.then((res) => {
      if (res.variant === variant) cache.set(k, res.outputs);
      return res;
    });
  }

  /**
   * Accounts one finished request against its route's SLO. Every request counted in slogate_requests_total gets
   * exactly one outcome (met, missed, shed, dropped); malformed requests (the client's own 4xx) are counted apart.
   */
  record(
    route: string,
    variant: string | undefined,
    statusCode: number,
    totalMs: number,
    errorCode?: string,
    result?: SubmitResult,
  ): void {
    const r = this.#routes.get(route);
    if (r === undefined) return;
    const m = this.#deps.metrics;
    if (errorCode !== undefined && isClientMistake(errorCode)) {
      m.invalidRequests.labels(route).inc();
      return;
    }
    const now = this.#deps.clock.now();
    const v = variant === undefined ? 'none' : `${r.model.name}/${variant}`;
    m.requests.labels(route, v, `${Math.floor(statusCode / 100)}xx`).inc();
    if (statusCode === 200) {
      const met = totalMs <= r.config.slo.p99Ms;
      m.requestDuration.labels(route, v).observe(totalMs / 1000);
      m.sloRequests.labels(route, met ? 'met' : 'missed').inc();
      r.stats.finish(now, met ? 'met' : 'missed', totalMs, variant);
      if (result !== undefined) {
        // The gateway's own share: parsing, event-loop delay, encoding (everything but queueing and the replica's work).
        r.stats.overhead(now, Math.max(0, totalMs - result.queueMs - result.computeMs));
        const price = this.#deps.pricePerSlotMs ?? 0;
        if (price > 0) m.cost.labels(route, v).inc((result.serviceMs / Math.max(1, result.batchRows)) * price);
      }
      if (!met) this.#decisions?.alarm?.(route);
      return;
    }
    const outcome = errorCode === undefined ? 'missed' : (OUTCOME_BY_CODE[errorCode] ?? 'missed');
    m.sloRequests.labels(route, outcome).inc();
    r.stats.finish(now, outcome);
    if (outcome === 'shed' || outcome === 'dropped') m.shed.labels(route, errorCode as string).inc();
  }
}

const WARMUP_DEADLINE_MS = 30_000;

const OUTCOME_BY_CODE: Readonly<Record<string, SloOutcome>> = {
  SLOGATE_ERR_SHED: 'shed',
  SLOGATE_ERR_NOT_READY: 'shed',
  SLOGATE_ERR_SHUTTING_DOWN: 'shed',
  SLOGATE_ERR_OVERLOADED: 'shed',
  SLOGATE_ERR_DEADLINE_UNREACHABLE: 'dropped',
  SLOGATE_ERR_QUEUE_FULL: 'dropped',
  SLOGATE_ERR_CANCELLED: 'dropped',
};

/** 4xx errors that are the client's own mistake (malformed input), not load: they are no SLO event. */
export function isClientMistake(code: string): boolean {
  return (
    isErrorCode(code) &&
    ERROR_CATALOG[code].status >= 400 &&
    ERROR_CATALOG[code].status < 500 &&
    code !== 'SLOGATE_ERR_SHED' &&
    code !== 'SLOGATE_ERR_CANCELLED'
  );
}

/** Variants a route may use, most accurate first (unknown accuracy last), honouring the route's variant list. */
export function allowedVariants(model: ModelInfo, rc: Readonly<RouteConfig>): string[] {
  const names = rc.variants ?? [...model.variants.keys()];
  return [...names].sort((a, b) => (model.variants.get(b)?.accuracy ?? -1) - (model.variants.get(a)?.accuracy ?? -1));
}

/** Before the engine's first decision for a route: a fixed policy's own variant, else the most accurate allowed. */
function fallbackVariant(r: RouteState): string {
  const p = r.config.policy;
  if (typeof p === 'object') return 'static' in p ? p.static.variant : p.aimd.variant;
  return r.allowed[0] as string;
}

export type PolicyKind = 'adaptive' | 'static' | 'aimd';

export function policyKind(rc: Readonly<RouteConfig>): PolicyKind {
  const p = rc.policy;
  if (p === 'adaptive') return 'adaptive';
  return 'static' in p ? 'static' : 'aimd';
}
