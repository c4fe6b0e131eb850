// What the engine and the status page know about a route: arrival rates, a latency histogram per second (log
// buckets, ~5% resolution) for windowed p99, SLO outcomes, and a per-second history of the last minutes.
import { RateEstimator, type RateSnapshot } from './rate-estimator.js';

const BUCKETS = 360;
const MIN_MS = 0.01;
const GROWTH = Math.log(1.05);
/** How long a computed overhead-after-routing quantile is reused (ms). */
const AFTER_ROUTE_REFRESH_MS = 250;

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / GROWTH));
}

/** Upper edge of a bucket: quantiles are reported conservatively. */
function bucketUpperMs(b: number): number {
  return MIN_MS * Math.exp((b + 1) * GROWTH);
}

export type Outcome = 'met' | 'missed' | 'shed' | 'dropped';

export interface SecondStats {
  /** Unix time of the second's start (ms). */
  readonly t: number;
  readonly arrivals: number;
  readonly met: number;
  readonly missed: number;
  readonly shed: number;
  readonly dropped: number;
  /** p99 of answered requests in this second (ms), NaN when none. */
  readonly p99Ms: number;
  /** Answered requests per variant. */
  readonly variants: Readonly<Record<string, number>>;
}

interface Second {
  index: number;
  wallMs: number;
  arrivals: number;
  met: number;
  missed: number;
  shed: number;
  dropped: number;
  hist: Uint32Array;
  answered: number;
  /** Gateway overhead per answered request (same buckets). */
  overhead: Uint32Array;
  overheadN: number;
  /** The part of it after the request was routed (the hop back, encoding): allocated on first use. */
  afterRoute: Uint32Array | undefined;
  afterRouteN: number;
  variants: Map<string, number>;
}

function newSecond(index: number, wallMs: number): Second {
  return {
    index,
    wallMs,
    arrivals: 0,
    met: 0,
    missed: 0,
    shed: 0,
    dropped: 0,
    hist: new Uint32Array(BUCKETS),
    answered: 0,
    overhead: new Uint32Array(BUCKETS),
    overheadN: 0,
    afterRoute: undefined,
    afterRouteN: 0,
    variants: new Map(),
  };
}

function quantileOf(hist: Uint32Array, total: number, q: number): number {
  if (total === 0) return Number.NaN;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < BUCKETS; b++) {
    seen += hist[b] as number;
    if (seen >= rank) return bucketUpperMs(b);
  }
  return bucketUpperMs(BUCKETS - 1);
}

export interface RouteTotals {
  readonly arrivals: number;
  readonly met: number;
  readonly missed: number;
  readonly shed: number;
  readonly dropped: number;
}

export class RouteStats {
  readonly rate = new RateEstimator();
  readonly #historySeconds: number;
  readonly #seconds: Second[] = [];
  #totals = { arrivals: 0, met: 0, missed: 0, shed: 0, dropped: 0 };
  /** Monotonic-to-wall offset, so history carries real timestamps while everything else uses the injected clock. */
  readonly #wallOffsetMs: number;
  /** The last overheadAfterRouteHighMs() answer and when it was computed. */
  #afterRoute = { atMs: Number.NEGATIVE_INFINITY, ms: Number.NaN };

  constructor(options: { historySeconds?: number; wallOffsetMs?: number } = {}) {
    this.#historySeconds = options.historySeconds ?? 300;
    this.#wallOffsetMs = options.wallOffsetMs ?? 0;
  }

  #second(nowMs: number): Second {
    const index = Math.floor(nowMs / 1000);
    const last = this.#seconds[this.#seconds.length - 1];
    if (last !== undefined && last.index === index) return last;
    const s = newSecond(index, index * 1000 + this.#wallOffsetMs);
    this.#seconds.push(s);
    if (this.#seconds.length > this.#historySeconds) this.#seconds.shift();
    return s;
  }

  arrive(nowMs: number): void {
    this.rate.arrive(nowMs);
    this.#second(nowMs).arrivals++;
    this.#totals.arrivals++;
  }

  /** Records how a request ended; latency and variant only for answered requests. */
  finish(nowMs: number, outcome: Outcome, latencyMs?: number, variant?: string): void {
    const s = this.#second(nowMs);
    s[outcome]++;
    this.#totals[outcome]++;
    if (latencyMs !== undefined) {
      const b = bucketOf(latencyMs);
      s.hist[b] = (s.hist[b] as number) + 1;
      s.answered++;
      if (variant !== undefined) s.variants.set(variant, (s.variants.get(variant) ?? 0) + 1);
    }
  }

  /** Records the gateway's own time for one answered request: end to end minus queueing and the replica's work. */
  overhead(nowMs: number, ms: number): void {
    const s = this.#second(nowMs);
    const b = bucketOf(ms);
    s.overhead[b] = (s.overhead[b] as number) + 1;
    s.overheadN++;
  }

  /**
   * Records the gateway's time for one answered request after it was routed: end to end minus the time to routing
   * (reading and parsing the body, which a routed request has already spent), queueing and the replica's work.
   */
  overheadAfterRoute(nowMs: number, ms: number): void {
    const s = this.#second(nowMs);
    s.afterRoute ??= new Uint32Array(BUCKETS);
    const b = bucketOf(ms);
    s.afterRoute[b] = (s.afterRoute[b] as number) + 1;
    s.afterRouteN++;
  }

  /**
   * p90 of the overhead after routing over the last 5 s (NaN with fewer than 20 samples), recomputed at most every
   * AFTER_ROUTE_REFRESH_MS: the router reads it on every request.
   */
  overheadAfterRouteHighMs(nowMs: number): number {
    if (nowMs - this.#afterRoute.atMs < AFTER_ROUTE_REFRESH_MS) return this.#afterRoute.ms;
    const ms = this.#quantileFrom(Math.floor((nowMs - 5000) / 1000), 'afterRoute', 0.9, 20);
    this.#afterRoute = { atMs: nowMs, ms };
    return ms;
  }

  /**
   * A high quantile (p90) of the gateway overhead over the last windowMs, or `fallbackMs` with fewer than 20
   * samples. p90 rather than p99: planning should not chase every stall of the machine; observed p99 catches those.
   */
  overheadHighMs(nowMs: number, fallbackMs: number, windowMs = 5000): number {
    const v = this.#quantileFrom(Math.floor((nowMs - windowMs) / 1000), 'overhead', 0.9, 20);
    return Number.isNaN(v) ? fallbackMs : v;
  }

  /** A quantile over the seconds from index `from` on (the current, partial one included); NaN under minSamples. */
  #quantileFrom(from: number, which: 'hist' | 'overhead' | 'afterRoute', q: number, minSamples: number): number {
    const hist = new Uint32Array(BUCKETS);
    let total = 0;
    for (let i = this.#seconds.length - 1; i >= 0; i--) {
      const s = this.#seconds[i] as Second;
      if (s.index < from) break;
      const h = s[which];
      if (h === undefined) continue;
      for (let b = 0; b < BUCKETS; b++) hist[b] = (hist[b] as number) + (h[b] as number);
      total += which === 'hist' ? s.answered : which === 'overhead' ? s.overheadN : s.afterRouteN;
    }
    return total < minSamples ? Number.NaN : quantileOf(hist, total, q);
  }

  rates(nowMs: number): RateSnapshot {
    return this.rate.snapshot(nowMs);
  }

  /** p99 (ms) of answered requests over the last windowMs; NaN with fewer than minSamples answers. */
  observedP99(nowMs: number, windowMs = 5000, minSamples = 20): number {
    return this.#quantileFrom(Math.floor((nowMs - windowMs) / 1000), 'hist', 0.99, minSamples);
  }

  /**
   * p99 (ms) of the requests answered in the whole seconds that began at or after `fromMs` (the current, partial one
   * included); NaN with fewer than minSamples answers.
   */
  observedP99Since(fromMs: number, minSamples: number): number {
    return this.#quantileFrom(Math.ceil(fromMs / 1000), 'hist', 0.99, minSamples);
  }

  /** Outcome counts over the last windowMs. */
  recent(nowMs: number, windowMs: number): RouteTotals {
    const from = Math.floor((nowMs - windowMs) / 1000);
    const t = { arrivals: 0, met: 0, missed: 0, shed: 0, dropped: 0 };
    for (let i = this.#seconds.length - 1; i >= 0; i--) {
      const s = this.#seconds[i] as Second;
      if (s.index < from) break;
      t.arrivals += s.arrivals;
      t.met += s.met;
      t.missed += s.missed;
      t.shed += s.shed;
      t.dropped += s.dropped;
    }
    return t;
  }

  get totals(): RouteTotals {
    return { ...this.#totals };
  }

  /** Completed seconds (the current, partial one excluded), oldest first. */
  history(nowMs: number): SecondStats[] {
    const current = Math.floor(nowMs / 1000);
    return this.#seconds
      .filter((s) => s.index < current)
      .map((s) => ({
        t: s.wallMs,
        arrivals: s.arrivals,
        met: s.met,
        missed: s.missed,
        shed: s.shed,
        dropped: s.dropped,
        p99Ms: quantileOf(s.hist, s.answered, 0.99),
        variants: Object.fromEntries(s.variants),
      }));
  }
}
