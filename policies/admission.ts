// Admission control on the request path: cheap checks against cached numbers (like @fastify/under-pressure), in
// order: a route the engine sheds entirely, sheddable traffic under pressure, the route's admission rate (token
// bucket), and a request whose predicted completion misses its deadline even on the fastest allowed variant.
import type { Decision } from '../core/decision.js';
import { SlogateError } from '../core/errors.js';

export class TokenBucket {
  #tokens: number;
  #lastMs: number;

  constructor(
    public ratePerS: number,
    public burst: number,
    nowMs: number,
  ) {
    this.#tokens = burst;
    this.#lastMs = nowMs;
  }

  /** Takes one token if available. */
  take(nowMs: number): boolean {
    if (this.has(nowMs)) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  /** Whether a token is available now (refills, takes nothing). */
  has(nowMs: number): boolean {
    const dt = Math.max(0, nowMs - this.#lastMs);
    this.#lastMs = nowMs;
    this.#tokens = Math.min(this.burst, this.#tokens + (dt * this.ratePerS) / 1000);
    return this.#tokens >= 1;
  }

  /** Milliseconds until one token is available. */
  waitMs(): number {
    return this.#tokens >= 1 || this.ratePerS <= 0
      ? this.ratePerS <= 0
        ? 1000
        : 0
      : ((1 - this.#tokens) * 1000) / this.ratePerS;
  }
}

export interface AdmissionInput {
  readonly nowMs: number;
  readonly deadlineAtMs: number;
  readonly priority: number;
  /** Work queued ahead of this request, spread over the replicas (ms). */
  readonly backlogMs: number;
  /** p99 service time of the fastest allowed variant at batch 1, plus gateway overhead (ms). */
  readonly fastestMs: number;
  /** The system is over its planned utilisation (some route is being shed or downgraded to its cheapest). */
  readonly underPressure: boolean;
  /** Only look at the token bucket (before the body is parsed): the token is taken once the body parsed. */
  readonly peekToken?: boolean | undefined;
}

/** Decides whether one request of an adaptive route enters; returns the refusal, or undefined to admit. */
export function admit(d: Decision, bucket: TokenBucket | undefined, a: AdmissionInput): SlogateError | undefined {
  if (d.admissionRps === 0) return shed(`route '${d.route}' is shed entirely: ${d.reason}`, 1000);
  const sheddable = priorityRule(a.priority, a.underPressure);
  if (sheddable !== undefined) return sheddable;
  const overRate = tokenRule(d, bucket, a.nowMs, a.peekToken === true);
  if (overRate !== undefined) return overRate;
  // A route nothing can serve admits a probe (its token bucket) past the deadline check, to keep measuring.
  if (!Number.isFinite(d.predictedP99Ms)) return undefined;
  const finish = a.nowMs + a.backlogMs + a.fastestMs;
  if (finish > a.deadlineAtMs) {
    return shed(
      `predicted completion in ${(finish - a.nowMs).toFixed(1)} ms misses the deadline (${(a.deadlineAtMs - a.nowMs).toFixed(1)} ms) even on the fastest variant`,
      Math.max(100, a.backlogMs),
    );
  }
  return undefined;
}

/** The route's admission rate: refused when its token bucket is empty; `peek` looks without taking the token. */
export function tokenRule(
  d: Decision,
  bucket: TokenBucket | undefined,
  nowMs: number,
  peek: boolean,
): SlogateError | undefined {
  if (bucket === undefined || (peek ? bucket.has(nowMs) : bucket.take(nowMs))) return undefined;
  return shed(
    `route '${d.route}' is over its admission rate of ${d.admissionRps.toFixed(1)} req/s: ${d.reason}`,
    Math.max(100, bucket.waitMs()),
  );
}

/** Sheddable traffic (negative priority) is refused while the system is under pressure. */
export function priorityRule(priority: number, underPressure: boolean): SlogateError | undefined {
  return priority < 0 && underPressure
    ? shed(`sheddable request (priority ${priority}) refused under pressure`, 1000)
    : undefined;
}

function shed(message: string, retryAfterMs: number): SlogateError {
  return new SlogateError('SLOGATE_ERR_SHED', message, { retryAfterMs });
}

/** An admitted request: what travels with it to the router and the runtime. */
export interface Admitted {
  readonly admitted: true;
  readonly deadlineAtMs: number;
  readonly priority: number;
  /** Whether it may read and fill the route's response cache (synthetic traffic must run the real path). */
  readonly useCache: boolean;
  /** The client set `timeout`: its deadline is strict (never served best-effort past it). */
  readonly clientTimeout?: boolean | undefined;
}
