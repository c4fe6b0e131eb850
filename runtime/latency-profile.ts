// Service time per variant and batch size: the start-up sweep's points, corrected online by the ratio of what
// real batches take to what the sweep predicted (slowdowns from contention or a noisy neighbour show up here).
// Online evidence ages out: a variant that stops being used (because a stall made it look slow) returns to its sweep
// after MAX_AGE_MS instead of carrying one bad second forever.
import { PairMap } from '../core/pair-map.js';
import { selectKth } from '../core/select.js';

export interface ProfilePoint {
  readonly rows: number;
  p50Ms: number;
  p99Ms: number;
  readonly samples: number;
}

export interface VariantProfileSnapshot {
  readonly model: string;
  readonly variant: string;
  readonly points: readonly ProfilePoint[];
  /** Online correction: observed / profiled service time, median and p99 over the recent window. */
  readonly correction: { readonly p50: number; readonly p99: number; readonly samples: number };
}

export type Quantile = 'p50' | 'p99';

/** Recent batches kept per variant: a p99 over 512 is its 6th largest, so one or two stalls do not make the tail. */
const WINDOW = 512;
/** Observations older than this no longer count (ms). */
export const MAX_AGE_MS = 10_000;
const MIN_ONLINE_SAMPLES = 16;
/** Fresh samples from which the online tail (k99) counts. */
const MIN_TAIL_SAMPLES = 100;
/** Quantiles are recomputed after this many new observations, or when the oldest may have aged out. */
const REFRESH_EVERY = 16;
const REFRESH_MS = 1000;
/** Fresh online samples after which the observed tail replaces the sweep's p99. */
const TRUST_ONLINE_P99 = MIN_TAIL_SAMPLES;

/** The last WINDOW observations with their times; quantiles over those younger than MAX_AGE_MS. */
class Ring {
  readonly #buf = new Float64Array(WINDOW);
  readonly #at = new Float64Array(WINDOW);
  #n = 0;
  #i = 0;
  /** The fresh observations as of the last prepare(), in no particular order (selection reorders them). */
  readonly #fresh = new Float64Array(WINDOW);
  #size = 0;

  push(v: number, atMs: number): void {
    if (Number.isNaN(v)) return;
    this.#buf[this.#i] = v;
    this.#at[this.#i] = atMs;
    this.#i = (this.#i + 1) % WINDOW;
    if (this.#n < WINDOW) this.#n++;
  }

  /** Collects the observations made at or after fromMs for quantile(); returns how many there are. */
  prepare(fromMs: number): number {
    let k = 0;
    for (let j = 0; j < this.#n; j++) if ((this.#at[j] as number) >= fromMs) this.#fresh[k++] = this.#buf[j] as number;
    this.#size = k;
    return k;
  }

  /** Fresh observations as of the last prepare(). */
  get size(): number {
    return this.#size;
  }

  /** Quantile of the fresh observations as of the last prepare(); NaN when there are none. */
  quantile(q: number): number {
    const n = this.#size;
    if (n === 0) return Number.NaN;
    return selectKth(this.#fresh, n, Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1)));
  }
}

class VariantProfile {
  readonly model: string;
  readonly variant: string;
  /** The start-up sweep (empty when none ran). */
  sweep: ProfilePoint[] = [];
  /** Without a sweep: recent service times per power-of-two batch bucket, scaled to the bucket size. */
  readonly buckets = new Map<number, Ring>();
  /** With a sweep: observed / profiled ratios. */
  readonly ratios = new Ring();
  #online: ProfilePoint[] = [];
  k50 = 1;
  k99 = 1;
  /** Set by setPoints: recompute on the next call whatever the counters say. */
  dirty = false;
  /** Observations since the last refresh: quantiles are recomputed every REFRESH_EVERY, not on every call. */
  pending = 0;
  /** When the last refresh ran (-inf: never). */
  refreshedAtMs = Number.NEGATIVE_INFINITY;

  constructor(model: string, variant: string) {
    this.model = model;
    this.variant = variant;
  }

  get points(): ProfilePoint[] {
    return this.sweep.length > 0 ? this.sweep : this.#online;
  }

  base(rows: number, q: Quantile): number {
    return interpolate(this.points, rows, q);
  }

  refresh(nowMs: number): void {
    // Due: new points, enough new observations (or any while nothing is known yet), or evidence that may have aged out.
    const aging = this.ratios.size > 0 && nowMs - this.refreshedAtMs >= REFRESH_MS;
    const due = this.dirty || this.pending >= REFRESH_EVERY || (this.pending > 0 && this.points.length === 0) || aging;
    if (!due) return;
    this.dirty = false;
    this.pending = 0;
    this.refreshedAtMs = nowMs;
    if (this.sweep.length === 0) {
      // Without a sweep the observations are all there is: they stay until newer ones replace them.
      this.#online = [...this.buckets.entries()]
        .filter(([, ring]) => ring.prepare(Number.NEGATIVE_INFINITY) > 0)
        .map(([rows, ring]) => ({ rows, p50Ms: ring.quantile(0.5), p99Ms: ring.quantile(0.99), samples: ring.size }))
        .sort((a, b) => a.rows - b.rows);
      return;
    }
    const fresh = this.ratios.prepare(nowMs - MAX_AGE_MS);
    if (fresh < MIN_ONLINE_SAMPLES) {
      this.k50 = 1;
      this.k99 = 1;
      return;
    }
    // A warm cache may run a little faster than the sweep; contention can make it much slower (bounded at 4x / 8x).
    // The tail needs a hundred samples before its 99th percentile is more than the largest one: with fewer, the
    // sweep's tail shape is scaled by the median correction, so a few slow first batches cannot rule a variant out.
    this.k50 = clamp(this.ratios.quantile(0.5), 0.5, 4);
    this.k99 = fresh >= MIN_TAIL_SAMPLES ? clamp(this.ratios.quantile(0.99), this.k50, 8) : this.k50;
  }
}

/**
 * Service time at `rows` from profile points: linear between measured batch sizes, the first point below them
 * (scaled by rows when it is the only point), the last segment's slope beyond them; NaN without points.
 */
export function interpolate(pts: readonly ProfilePoint[], rows: number, q: Quantile): number {
  if (pts.length === 0) return Number.NaN;
  const val = (p: ProfilePoint) => (q === 'p50' ? p.p50Ms : p.p99Ms);
  const first = pts[0] as ProfilePoint;
  if (pts.length === 1) return (val(first) * Math.max(rows, 1)) / first.rows;
  if (rows <= first.rows) return val(first);
  for (let i = 1; i < pts.length; i++) {
    const b = pts[i] as ProfilePoint;
    if (rows <= b.rows) {
      const a = pts[i - 1] as ProfilePoint;
      return val(a) + ((val(b) - val(a)) * (rows - a.rows)) / (b.rows - a.rows);
    }
  }
  const a = pts[pts.length - 2] as ProfilePoint;
  const b = pts[pts.length - 1] as ProfilePoint;
  const slope = Math.max(0, (val(b) - val(a)) / (b.rows - a.rows));
  return val(b) + slope * (rows - b.rows);
}

/** Corrected service times for every batch size 0..maxRows (index = rows; index 0 unused). */
export interface ServiceTable {
  readonly p50: Float64Array;
  readonly p99: Float64Array;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export class LatencyProfiles {
  /** By model and variant: every estimate looks one up. */
  readonly #profiles = new PairMap<VariantProfile>();
  /**
   * Typical cost of the hop to a replica and back (ms) with an idle main thread, measured by the start-up sweep:
   * added to a replica's reported busy time to get the service time profiles model.
   */
  hopMs = 0.1;
  /**
   * Used before anything was measured. Zero by default: nothing is dropped or shrunk on a guess; the first real
   * batches become the profile (see observe()).
   */
  readonly defaultMsPerRow: number;

  /** Monotonic ms (the runtime's clock: simulated in the simulator, hand-driven in tests). */
  readonly #now: () => number;

  constructor(options: { defaultMsPerRow?: number; now?: () => number } = {}) {
    this.defaultMsPerRow = options.defaultMsPerRow ?? 0;
    this.#now = options.now ?? (() => performance.now());
  }

  #get(model: string, variant: string): VariantProfile {
    return this.#profiles.get(model, variant) ?? this.#add(model, variant);
  }

  #add(model: string, variant: string): VariantProfile {
    const p = new VariantProfile(model, variant);
    this.#profiles.set(model, variant, p);
    return p;
  }

  /** Installs the sweep's points for a variant (sorted by rows). */
  setPoints(model: string, variant: string, points: readonly ProfilePoint[]): void {
    const p = this.#get(model, variant);
    p.sweep = [...points].sort((a, b) => a.rows - b.rows);
    p.dirty = true;
  }

  /** Another revision now serves the variant: its points replace the old ones, whose observed correction is forgotten. */
  replacePoints(model: string, variant: string, points: readonly ProfilePoint[]): void {
    this.#profiles.delete(model, variant);
    this.setPoints(model, variant, points);
  }

  hasPoints(model: string, variant: string, nowMs?: number): boolean {
    const p = this.#get(model, variant);
    p.refresh(nowMs ?? this.#now());
    return p.points.length > 0;
  }

  /**
   * Estimated service time of a batch of `rows` rows, corrected by recent observations. `nowMs`: the caller's reading
   * of the clock, when it has one (the request path asks for several estimates per request).
   */
  serviceMs(model: string, variant: string, rows: number, q: Quantile = 'p99', nowMs?: number): number {
    const p = this.#get(model, variant);
    p.refresh(nowMs ?? this.#now());
    const b = p.base(rows, q);
    if (Number.isNaN(b)) return this.defaultMsPerRow * Math.max(1, rows) * (q === 'p99' ? 2 : 1);
    if (q === 'p50') return b * p.k50;
    // With a full window of real batches, their tail is the better evidence: a sweep's p99 comes from few samples
    // and can hold one-off stalls. Before that, the larger of the two.
    if (p.ratios.size >= TRUST_ONLINE_P99) return p.base(rows, 'p50') * p.k99;
    return Math.max(b * p.k50, p.base(rows, 'p50') * p.k99);
  }

  /** Feeds one real batch's service time (dispatch to result) into the online correction. */
  observe(model: string, variant: string, rows: number, serviceMs: number): void {
    const p = this.#get(model, variant);
    p.pending++;
    if (p.sweep.length === 0) {
      // No sweep: observations, scaled to their power-of-two bucket, become the profile. The first batch of a
      // bucket is skipped: a new shape's first run pays for allocation and planning.
      const bucket = 2 ** Math.ceil(Math.log2(Math.max(1, rows)));
      const ring = p.buckets.get(bucket);
      if (ring === undefined) {
        p.buckets.set(bucket, new Ring());
        return;
      }
      ring.push((serviceMs * bucket) / Math.max(1, rows), this.#now());
      return;
    }
    const predicted = p.base(rows, 'p50');
    if (predicted > 0) p.ratios.push(serviceMs / predicted, this.#now());
  }

  /** Service times for rows 1..maxRows as the scheduler would estimate them now (for the engine's snapshot). */
  table(model: string, variant: string, maxRows: number): ServiceTable {
    const p50 = new Float64Array(maxRows + 1);
    const p99 = new Float64Array(maxRows + 1);
    for (let r = 1; r <= maxRows; r++) {
      p50[r] = this.serviceMs(model, variant, r, 'p50');
      p99[r] = this.serviceMs(model, variant, r, 'p99');
    }
    return { p50, p99 };
  }

  snapshot(): VariantProfileSnapshot[] {
    const out: VariantProfileSnapshot[] = [];
    for (const p of this.#profiles.values()) {
      p.refresh(this.#now());
      const correction = { p50: p.k50, p99: p.k99, samples: p.ratios.size };
      out.push({ model: p.model, variant: p.variant, points: p.points, correction });
    }
    return out;
  }
}
