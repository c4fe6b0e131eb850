// The admission gate: the one place that says whether a request enters, and with which deadline and priority. The
// gateway asks before reading the body (a refusal then costs almost nothing) and again after parsing it (its own
// priority and timeout). The hot path compares numbers the control loop keeps fresh (decisions, token buckets, the
// planned rate, recent gateway overhead, the pressure flag) with the runtime's backlog estimate; see admission.ts for
// the rules and their order.
import type { Clock } from '../core/clock.js';
import type { RouteConfig } from '../core/config.js';
import type { Decision } from '../core/decision.js';
import type { SlogateError } from '../core/errors.js';
import type { RuntimePort } from '../runtime/port.js';
import { type Admitted, admit, priorityRule, TokenBucket, tokenRule } from './admission.js';
import type { RouteState } from './router.js';

/**
 * What the request path knows when it asks:
 * - `before-body`: the URL (route, pinned version) and the arrival. Every rule runs with the route's own priority and
 *   its SLO deadline, the token bucket only looked at; the arrival counts only if refused.
 * - `after-body`: after a `before-body` check, the body's `priority` (clamped to the route's band) and `timeout`. They
 *   set the request's deadline and priority; counts the arrival and takes the token; the priority and token rules can
 *   still refuse (the rest already ran).
 * - `whole`: everything at once (the simulator). Counts the arrival; every rule runs with the request's own values.
 */
export type GateStage = 'before-body' | 'after-body' | 'whole';

export interface GateQuery {
  readonly route: RouteState;
  readonly arrivalMs: number;
  readonly stage: GateStage;
  /** A version pinned by the URL: the route's admission applies unless the route exempts pinned requests. */
  readonly pinned: boolean;
  /** The request's `priority` parameter (the route's priority when absent). */
  readonly priority?: number | undefined;
  /** The request's `timeout` parameter in ms: tightens the deadline. */
  readonly timeoutMs?: number | undefined;
  /** The caller's reading of the clock for this check (the gate reads it when absent). */
  readonly nowMs?: number | undefined;
}

export interface Refused {
  readonly admitted: false;
  readonly refusal: SlogateError;
}

export type Admission = Admitted | Refused;

export interface Gate {
  check(q: GateQuery): Admission;
}

/** A request's deadline: arrival + the route's p99 target, sooner with its own timeout. Computed here only. */
export function deadlineOf(route: RouteState, arrivalMs: number, timeoutMs: number | undefined): number {
  const d = arrivalMs + route.config.slo.p99Ms;
  return timeoutMs === undefined ? d : Math.min(d, arrivalMs + timeoutMs);
}

/** A client's `priority` clamped to the route's band (by default it may only lower the route's own priority). */
export function clientPriority(rc: Readonly<RouteConfig>, requested: number): number {
  const min = rc.priorityBand?.min ?? -1000;
  const max = rc.priorityBand?.max ?? rc.priority;
  return Math.max(min, Math.min(max, requested));
}

/**
 * A surge: since the last tick (at least SURGE_MIN_MS ago) at least SURGE_MIN_ARRIVALS arrivals came, at more than
 * SURGE_RATE_FACTOR x the rate the decision planned for. The control loop then decides at once instead of at the next
 * tick: a step that lands just after a tick would otherwise build a tick's worth of backlog on a variant too slow.
 */
const SURGE_MIN_MS = 40;
const SURGE_MIN_ARRIVALS = 24;
const SURGE_RATE_FACTOR = 1.5;

export interface AdmissionGateDeps {
  readonly runtime: Pick<RuntimePort, 'backlogMs' | 'serviceMs'>;
  readonly clock: Clock;
  /** The route's decision in force (the control loop's). */
  readonly current: (route: string) => Decision | undefined;
  /** Asks the control loop to decide now (a surge, or a backlog too long for new requests). */
  readonly alarm: (route: string) => void;
}

export class AdmissionGate implements Gate {
  readonly #deps: AdmissionGateDeps;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #plannedRps = new Map<string, number>();
  /** Gateway overhead per route for the deadline check: p90 of the last 1-2 s, refreshed every tick. */
  readonly #overheadMs = new Map<string, number>();
  /** Some route is being shed or held at its cheapest: sheddable traffic is refused. */
  underPressure = false;

  constructor(deps: AdmissionGateDeps) {
    this.#deps = deps;
  }

  check(q: GateQuery): Admission {
    const r = q.route;
    const priority = q.priority === undefined ? r.config.priority : clientPriority(r.config, q.priority);
    const deadlineAtMs = deadlineOf(r, q.arrivalMs, q.timeoutMs);
    const exempt = q.pinned && r.config.pinnedAdmission === 'exempt';
    const nowMs = q.nowMs ?? this.#deps.clock.now();
    const refusal = exempt ? undefined : this.#refusal(r, q.stage, deadlineAtMs, priority, nowMs);
    // Arrivals are requests that parsed, plus those refused before their body (demand the engine must still see):
    // a malformed body admitted before parsing never counts.
    if (q.stage !== 'before-body' || refusal !== undefined) {
      r.stats.arrive(q.arrivalMs);
      this.#checkSurge(r, nowMs);
    }
    return refusal === undefined
      ? { admitted: true, deadlineAtMs, priority, useCache: true, clientTimeout: q.timeoutMs !== undefined }
      : { admitted: false, refusal };
  }

  #refusal(
    r: RouteState,
    stage: GateStage,
    deadlineAtMs: number,
    priority: number,
    nowMs: number,
  ): SlogateError | undefined {
    if (r.config.policy.kind !== 'adaptive') return undefined;
    const d = this.#deps.current(r.name);
    if (d === undefined) return undefined;
    // After the body: the client's priority, and the token the request takes now that it parsed.
    if (stage === 'after-body')
      return priorityRule(priority, this.underPressure) ?? tokenRule(d, this.#buckets.get(r.name), nowMs, false);
    const fastest = this.#fastestMs(r, d, nowMs);
    const rt = this.#deps.runtime;
    let backlog = rt.backlogMs();
    // EDF runs earlier deadlines first: only when the whole backlog looks too long, count what is really ahead.
    if (nowMs + backlog + fastest > deadlineAtMs) backlog = rt.backlogMs(deadlineAtMs);
    const refusal = admit(d, this.#buckets.get(r.name), {
      nowMs,
      deadlineAtMs,
      priority,
      backlogMs: backlog,
      fastestMs: fastest,
      underPressure: this.underPressure,
      peekToken: stage === 'before-body',
    });
    // A backlog too long for new requests is news the engine should act on now, not at the next tick.
    if (refusal !== undefined && !Number.isFinite(d.admissionRps)) this.#deps.alarm(r.name);
    return refusal;
  }

  /** Alarms on a surge of arrivals since the last tick (a few comparisons per request). */
  #checkSurge(r: RouteState, nowMs: number): void {
    const n = r.stats.rate.pending;
    if (n < SURGE_MIN_ARRIVALS || r.config.policy.kind !== 'adaptive') return;
    const d = this.#deps.current(r.name);
    if (d === undefined) return;
    const since = nowMs - r.stats.rate.lastSnapshotMs;
    if (!(since >= SURGE_MIN_MS)) return;
    const planned = this.#plannedRps.get(r.name) ?? Math.max(d.inputs.rateFast, d.inputs.rateSlow);
    // Significant, not just fast: Poisson arrivals bring 1.5x the planned rate over 40 ms several times a second at a
    // few hundred req/s; 4 standard deviations over the expected count happen about once in ten thousand windows.
    const expected = (planned * since) / 1000;
    if ((n * 1000) / since > SURGE_RATE_FACTOR * planned && n >= expected + 4 * Math.sqrt(expected))
      this.#deps.alarm(r.name);
  }

  /** p99 of the fastest variant the decision may use, at batch 1, plus the recent gateway overhead. */
  #fastestMs(r: RouteState, d: Decision, nowMs: number): number {
    const rt = this.#deps.runtime;
    const model = r.model.name;
    let best = Number.POSITIVE_INFINITY;
    for (const s of d.variants) best = Math.min(best, rt.serviceMs(model, s.variant, 1, 'p99', nowMs));
    if (d.fallbackVariant !== undefined) best = Math.min(best, rt.serviceMs(model, d.fallbackVariant, 1, 'p99', nowMs));
    // The overhead measured at the last tick: merging histogram windows per request would cost the hot path. Capped
    // at half the target: past that the gateway itself is the problem, which the engine's gateway-saturation rule
    // answers for inference only; here, event-loop time that other requests took would shed inference.
    const overhead = Math.min(this.#overheadMs.get(r.name) ?? d.inputs.overheadMs, r.config.slo.p99Ms / 2);
    return (Number.isFinite(best) ? best : 0) + (Number.isFinite(overhead) ? overhead : 0);
  }

  /** The rate a route's decision plans for: what a surge is measured against (set before each decision). */
  plan(route: string, plannedRps: number): void {
    this.#plannedRps.set(route, plannedRps);
  }

  /** The route's recent gateway overhead (ms), for the deadline check. */
  setOverhead(route: string, overheadMs: number): void {
    this.#overheadMs.set(route, overheadMs);
  }

  /** A new decision for a route: its token bucket follows the admission rate (none while the rate is unlimited). */
  publish(route: string, d: Decision, nowMs: number, readySlots: number): void {
    if (!Number.isFinite(d.admissionRps)) {
      this.#buckets.delete(route);
      return;
    }
    const burst = Math.max(4, d.maxBatch * Math.max(1, readySlots));
    const b = this.#buckets.get(route);
    if (b === undefined) this.#buckets.set(route, new TokenBucket(d.admissionRps, burst, nowMs));
    else {
      b.ratePerS = d.admissionRps;
      b.burst = burst;
    }
  }
}
