// Service time per variant and batch size: the start-up sweep's points, corrected online by the ratio of what
// real batches take to what the sweep predicted (slowdowns from contention or a noisy neighbour show up here).

export interface ProfilePoint {
  readonly rows: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
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

const WINDOW = 128;
const MIN_ONLINE_SAMPLES = 16;

class Ring {
  readonly #buf = new Float64Array(WINDOW);
  #n = 0;
  #i = 0;
  #sortedCache: Float64Array | undefined;

  push(v: number): void {
    this.#buf[this.#i] = v;
    this.#i = (this.#i + 1) % WINDOW;
    if (this.#n < WINDOW) this.#n++;
    this.#sortedCache = undefined;
  }

  get size(): number {
    return this.#n;
  }

  quantile(q: number): number {
    if (this.#n === 0) return Number.NaN;
    if (this.#sortedCache === undefined) this.#sortedCache = this.#buf.slice(0, this.#n).sort();
    const s = this.#sortedCache;
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
  }
}

class VariantProfile {
  points: ProfilePoint[] = [];
  readonly ratios = new Ring();
  /** Cached correction factors, recomputed at most once per new observation batch. */
  k50 = 1;
  k99 = 1;
  dirty = false;

  base(rows: number, q: Quantile): number {
    const pts = this.points;
    if (pts.length === 0) return Number.NaN;
    const val = (p: ProfilePoint) => (q === 'p50' ? p.p50Ms : p.p99Ms);
    const first = pts[0] as ProfilePoint;
    if (rows <= first.rows || pts.length === 1) return pts.length === 1 ? (val(first) * Math.max(rows, 1)) / first.rows : val(first);
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

  refresh(): void {
    if (!this.dirty) return;
    this.dirty = false;
    if (this.ratios.size < MIN_ONLINE_SAMPLES) {
      this.k50 = 1;
      this.k99 = 1;
      return;
    }
    // Corrections only ever slow estimates down a little below 1 (a warm cache), and never by more than 4x.
    this.k50 = clamp(this.ratios.quantile(0.5), 0.5, 4);
    this.k99 = clamp(this.ratios.quantile(0.99), this.k50, 8);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export class LatencyProfiles {
  readonly #profiles = new Map<string, VariantProfile>();
  readonly #names = new Map<string, { model: string; variant: string }>();
  /** Used before anything was measured: one millisecond per row. */
  readonly defaultMsPerRow: number;

  constructor(options: { defaultMsPerRow?: number } = {}) {
    this.defaultMsPerRow = options.defaultMsPerRow ?? 1;
  }

  #get(model: string, variant: string): VariantProfile {
    const k = `${model}/${variant}`;
    let p = this.#profiles.get(k);
    if (p === undefined) {
      p = new VariantProfile();
      this.#profiles.set(k, p);
      this.#names.set(k, { model, variant });
    }
    return p;
  }

  /** Installs the sweep's points for a variant (sorted by rows). */
  setPoints(model: string, variant: string, points: readonly ProfilePoint[]): void {
    const p = this.#get(model, variant);
    p.points = [...points].sort((a, b) => a.rows - b.rows);
  }

  hasPoints(model: string, variant: string): boolean {
    return this.#get(model, variant).points.length > 0;
  }

  /** Estimated service time of a batch of `rows` rows, corrected by recent observations. */
  serviceMs(model: string, variant: string, rows: number, q: Quantile = 'p99'): number {
    const p = this.#get(model, variant);
    p.refresh();
    const b = p.base(rows, q);
    if (Number.isNaN(b)) return this.defaultMsPerRow * Math.max(1, rows) * (q === 'p99' ? 2 : 1);
    if (q === 'p50') return b * p.k50;
    return Math.max(b * p.k50, p.base(rows, 'p50') * p.k99);
  }

  /** Feeds one real batch's service time (dispatch to result) into the online correction. */
  observe(model: string, variant: string, rows: number, serviceMs: number): void {
    const p = this.#get(model, variant);
    const predicted = p.base(rows, 'p50');
    if (Number.isNaN(predicted) || predicted <= 0) {
      // No sweep for this variant: the observations become its points, one per power-of-two bucket.
      const bucket = 2 ** Math.ceil(Math.log2(Math.max(1, rows)));
      const existing = p.points.find((x) => x.rows === bucket);
      const perRow = serviceMs / Math.max(1, rows);
      const est = perRow * bucket;
      if (existing === undefined) p.points = [...p.points, { rows: bucket, p50Ms: est, p99Ms: est * 1.5, samples: 1 }].sort((a, b) => a.rows - b.rows);
      return;
    }
    p.ratios.push(serviceMs / predicted);
    p.dirty = true;
  }

  snapshot(): VariantProfileSnapshot[] {
    const out: VariantProfileSnapshot[] = [];
    for (const [k, p] of this.#profiles) {
      p.refresh();
      const names = this.#names.get(k) as { model: string; variant: string };
      out.push({ ...names, points: p.points, correction: { p50: p.k50, p99: p.k99, samples: p.ratios.size } });
    }
    return out;
  }
}
