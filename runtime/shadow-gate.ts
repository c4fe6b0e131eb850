// When a shadow copy may run. A shadow run holds a replica slot, and a live batch that arrives meanwhile waits for
// it: copies run only while the live arrivals expected during one are few, so near saturation they stop. At least
// one runs per floor interval whatever the load, so a rollout under sustained load still gathers its evidence.

/** Live arrivals over the last second, counted in ten buckets. */
const BUCKET_MS = 100;
const BUCKETS = 10;

export interface ShadowGateOptions {
  /** Largest expected number of live arrivals during one shadow run (rate x its service time). */
  readonly maxArrivals?: number;
  /** A shadow copy may run this long after the last one, whatever the load. */
  readonly floorMs?: number;
}

export class ShadowGate {
  readonly #maxArrivals: number;
  readonly #floorMs: number;
  readonly #counts = new Float64Array(BUCKETS);
  /** Index (time / BUCKET_MS) of the newest bucket. */
  #newest = Number.NEGATIVE_INFINITY;
  #lastRunMs = Number.NEGATIVE_INFINITY;

  constructor(o: ShadowGateOptions = {}) {
    this.#maxArrivals = o.maxArrivals ?? 0.1;
    this.#floorMs = o.floorMs ?? 250;
  }

  noteArrival(nowMs: number, requests = 1): void {
    this.#advance(nowMs);
    const i = slot(this.#newest);
    this.#counts[i] = (this.#counts[i] as number) + requests;
  }

  /** Live arrivals per ms over the last second. */
  ratePerMs(nowMs: number): number {
    this.#advance(nowMs);
    let n = 0;
    for (const c of this.#counts) n += c;
    return n / (BUCKETS * BUCKET_MS);
  }

  /** Whether a shadow run expected to take `shadowMs` may start now; a yes counts as that run. */
  admits(nowMs: number, shadowMs: number): boolean {
    const quiet = this.ratePerMs(nowMs) * shadowMs <= this.#maxArrivals;
    if (!quiet && nowMs - this.#lastRunMs < this.#floorMs) return false;
    this.#lastRunMs = nowMs;
    return true;
  }

  #advance(nowMs: number): void {
    const index = Math.floor(nowMs / BUCKET_MS);
    if (index <= this.#newest) return;
    const stale = Math.min(BUCKETS, index - this.#newest);
    for (let k = index - stale + 1; k <= index; k++) this.#counts[slot(k)] = 0;
    this.#newest = index;
  }
}

function slot(index: number): number {
  return ((index % BUCKETS) + BUCKETS) % BUCKETS;
}
