// A small HDR-style latency histogram: microsecond resolution, log-linear buckets (exact below 256 us, then 128
// sub-buckets per power of two, so a reported quantile is within 0.4% of a recorded value), fixed memory (30 KiB),
// O(1) record. Quantiles are nearest-rank: the smallest value with at least ceil(q * n) values at or below it.

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per octave
const LINEAR = 2 * SUB; // values below 256 us get their own bucket
const MAX_EXP = 35; // largest octave: [2^35, 2^36) us, about 19 hours
const BUCKETS = LINEAR + (MAX_EXP - 8 + 1) * SUB;
const MAX_US = 2 ** (MAX_EXP + 1) - 1;

/** Bucket index of a value in whole microseconds (clamped to [0, MAX_US]). */
export function bucketOf(us: number): number {
  const v = Math.min(MAX_US, Math.max(0, Math.floor(us)));
  if (v < LINEAR) return v;
  const e = Math.floor(Math.log2(v));
  // log2 can round up just below a power of two; the sub index must stay in [SUB, 2 * SUB).
  const exp = 2 ** (e - SUB_BITS) > v / SUB ? e - 1 : e;
  const sub = Math.floor(v / 2 ** (exp - SUB_BITS));
  return LINEAR + (exp - 8) * SUB + (sub - SUB);
}

/** [lowest, highest] microsecond value that lands in a bucket. */
export function bucketRange(index: number): [number, number] {
  if (index < LINEAR) return [index, index];
  const k = index - LINEAR;
  const exp = 8 + Math.floor(k / SUB);
  const sub = SUB + (k % SUB);
  const width = 2 ** (exp - SUB_BITS);
  return [sub * width, (sub + 1) * width - 1];
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #n = 0;
  #sumUs = 0;
  #minUs = Number.POSITIVE_INFINITY;
  #maxUs = Number.NEGATIVE_INFINITY;

  /** Records one latency in milliseconds (rounded to the microsecond). */
  record(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    const b = bucketOf(us);
    this.#counts[b] = (this.#counts[b] as number) + 1;
    this.#n++;
    this.#sumUs += us;
    if (us < this.#minUs) this.#minUs = us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  get count(): number {
    return this.#n;
  }

  get minMs(): number {
    return this.#n === 0 ? Number.NaN : this.#minUs / 1000;
  }

  get maxMs(): number {
    return this.#n === 0 ? Number.NaN : this.#maxUs / 1000;
  }

  get meanMs(): number {
    return this.#n === 0 ? Number.NaN : this.#sumUs / this.#n / 1000;
  }

  /** Nearest-rank quantile in ms (NaN when empty); q in [0, 1]. */
  quantileMs(q: number): number {
    if (this.#n === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) {
        const [lo, hi] = bucketRange(i);
        const mid = lo === hi ? lo : (lo + hi) / 2;
        return Math.min(this.#maxUs, Math.max(this.#minUs, mid)) / 1000;
      }
    }
    return this.#maxUs / 1000;
  }

  /** Fraction of recorded values at or below `ms` (bucket resolution). */
  fractionAtOrBelow(ms: number): number {
    if (this.#n === 0) return Number.NaN;
    const last = bucketOf(Math.round(ms * 1000));
    let seen = 0;
    for (let i = 0; i <= last; i++) seen += this.#counts[i] as number;
    return seen / this.#n;
  }

  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] = (this.#counts[i] as number) + (other.#counts[i] as number);
    this.#n += other.#n;
    this.#sumUs += other.#sumUs;
    this.#minUs = Math.min(this.#minUs, other.#minUs);
    this.#maxUs = Math.max(this.#maxUs, other.#maxUs);
  }

  reset(): void {
    this.#counts.fill(0);
    this.#n = 0;
    this.#sumUs = 0;
    this.#minUs = Number.POSITIVE_INFINITY;
    this.#maxUs = Number.NEGATIVE_INFINITY;
  }

  /** The quantiles bench reports, in ms. */
  summary(): LatencySummary {
    return {
      count: this.#n,
      meanMs: round3(this.meanMs),
      p50Ms: round3(this.quantileMs(0.5)),
      p90Ms: round3(this.quantileMs(0.9)),
      p99Ms: round3(this.quantileMs(0.99)),
      p999Ms: round3(this.quantileMs(0.999)),
      maxMs: round3(this.maxMs),
    };
  }
}

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number | null;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
}

/** Rounds to the microsecond; NaN becomes null (JSON has no NaN). */
export function round3(x: number): number | null {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null;
}
