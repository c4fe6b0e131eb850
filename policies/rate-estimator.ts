// Arrival-rate estimation per route: the rate of the last tick, exponentially weighted rates over a fast (~1 s) and
// a slow (~5 s) horizon, the peak tick rate of the last seconds, and the burstiness of arrivals (index of dispersion of
// counts in 50 ms bins: 1 for Poisson). State lives here;
// time is passed in, never read.

export interface RateSnapshot {
  /** Requests/s since the previous snapshot (one engine tick): reacts at once to a step, noisy. */
  readonly instant: number;
  /** Requests/s over the fast horizon. */
  readonly fast: number;
  /** Requests/s over the slow horizon. */
  readonly slow: number;
  /** Highest per-tick rate over the last peak window (~5 s): what upgrades must still hold. */
  readonly peak: number;
  /** The same over the last RECENT_PEAK_MS: tells a surge that has passed from load that is still there. */
  readonly recentPeak?: number;
  /** Index of dispersion of arrival counts (1 for Poisson, larger when bursty). */
  readonly burstiness: number;
  /**
   * The same over the last RECENT_BURSTINESS_BINS bins only (about a second), with no memory before them: fresh
   * evidence once a surge has gone, while `burstiness` still holds it for seconds. `burstiness` until
   * that many bins are seen.
   */
  readonly recentBurstiness?: number;
}

const BIN_MS = 50;
/** Shortest span an instant rate is measured over (see snapshot). */
export const MIN_INSTANT_MS = 100;
const HORIZON_BINS = 200;
/** Window of the recent peak (ms). */
export const RECENT_PEAK_MS = 2000;
const VAR_BINS = 40;
/** Bins the recent burstiness is measured over (50 ms each: a second). */
export const RECENT_BURSTINESS_BINS = 20;

export class RateEstimator {
  readonly #fastTauMs: number;
  readonly #slowTauMs: number;
  #fast = 0;
  #slow = 0;
  #instant = 0;
  readonly #peakWindowMs: number;
  #recent: { atMs: number; rate: number }[] = [];
  #lastMs: number | undefined;
  #pending = 0;
  // Burstiness as the index of dispersion of counts in 50 ms bins (variance / mean; 1 for Poisson). Counting in bins
  // rather than timing gaps keeps the event loop's clumping of arrivals (many parsed in one tick) from reading as bursts.
  #bin = Number.NaN;
  #binCount = 0;
  #countMean = 0;
  #countMean2 = 0;
  #prevCount = 0;
  #bins = 0;
  // The last RECENT_BURSTINESS_BINS + 1 closed bins' counts (a ring), for the recent burstiness.
  readonly #lastCounts = new Float64Array(RECENT_BURSTINESS_BINS + 1);

  constructor(options: { fastTauMs?: number; slowTauMs?: number; peakWindowMs?: number } = {}) {
    this.#fastTauMs = options.fastTauMs ?? 1000;
    this.#slowTauMs = options.slowTauMs ?? 5000;
    this.#peakWindowMs = options.peakWindowMs ?? 5000;
  }

  /** Records one arrival (cheap: the rates are folded in at the next snapshot). */
  arrive(nowMs: number): void {
    this.#pending++;
    const bin = Math.floor(nowMs / BIN_MS);
    if (bin === this.#bin) {
      this.#binCount++;
      return;
    }
    if (!Number.isNaN(this.#bin)) {
      this.#closeBin(this.#binCount);
      // Empty bins in between count as zeros (folded in at once, at most a horizon's worth).
      const empty = Math.min(HORIZON_BINS, bin - this.#bin - 1);
      if (empty > 0) this.#zeros(empty);
    }
    this.#bin = bin;
    this.#binCount = 1;
  }

  // Variance from differences of consecutive bins (Var(n_i - n_i-1) = 2 Var(n) for independent bins): a change of
  // rate, which the rate estimates already track, shows up in one difference only, and each difference is capped at
  // 16x the mean so that one such change cannot read as burstiness. Both averages span ~2 s.
  #closeBin(n: number): void {
    this.#lastCounts[this.#bins % this.#lastCounts.length] = n;
    if (this.#bins === 0) {
      this.#countMean = n;
      this.#prevCount = n;
      this.#bins = 1;
      return;
    }
    const a = this.#bins < VAR_BINS ? 1 / (this.#bins + 1) : 1 / VAR_BINS;
    this.#countMean += a * (n - this.#countMean);
    const d = n - this.#prevCount;
    const d2 = Math.min(d * d, 16 * Math.max(1, this.#countMean) * Math.max(1, this.#countMean));
    this.#countMean2 += a * (d2 / 2 - this.#countMean2);
    this.#prevCount = n;
    this.#bins++;
  }

  #zeros(k: number): void {
    for (let i = 0; i < Math.min(k, VAR_BINS); i++) this.#closeBin(0);
    this.#bins += Math.max(0, k - VAR_BINS);
  }

  /** Arrivals since the last snapshot (the last engine tick), and when that was (NaN before the first). */
  get pending(): number {
    return this.#pending;
  }

  get lastSnapshotMs(): number {
    return this.#lastMs ?? Number.NaN;
  }

  /** Folds arrivals since the last call into the rates and returns them. Call at a steady cadence (the engine tick). */
  snapshot(nowMs: number): RateSnapshot {
    if (this.#lastMs === undefined) {
      this.#lastMs = nowMs;
      this.#pending = 0;
      return { instant: 0, fast: 0, slow: 0, peak: 0, recentPeak: 0, burstiness: 1 };
    }
    const dt = nowMs - this.#lastMs;
    if (dt > 0) {
      // A tick an alarm brought early can span a few ms: its count alone would read a clump of arrivals (the sender's
      // or the event loop's) as a rate of thousands, and downgrade on it. Under MIN_INSTANT_MS the count is taken at
      // face value only when it is significant (4 standard deviations over the fast rate's expectation, with the
      // measured dispersion, never less than Poisson's); otherwise the fast rate fills the rest of the span.
      let inst = (this.#pending * 1000) / dt;
      if (dt < MIN_INSTANT_MS) {
        const expected = (this.#fast * dt) / 1000;
        if (this.#pending < expected + 4 * Math.sqrt(Math.max(1, expected * Math.max(1, this.burstiness))))
          inst = (this.#pending * 1000 + this.#fast * (MIN_INSTANT_MS - dt)) / MIN_INSTANT_MS;
      }
      this.#instant = inst;
      const af = 1 - Math.exp(-dt / this.#fastTauMs);
      const as = 1 - Math.exp(-dt / this.#slowTauMs);
      this.#fast += af * (inst - this.#fast);
      this.#slow += as * (inst - this.#slow);
      this.#pending = 0;
      this.#lastMs = nowMs;
    }
    // A tick's rate is noisy (a few dozen arrivals): the peak is taken over instants averaged with their neighbour.
    this.#recent.push({ atMs: nowMs, rate: this.#instant });
    while (this.#recent.length > 0 && (this.#recent[0] as { atMs: number }).atMs < nowMs - this.#peakWindowMs)
      this.#recent.shift();
    let peak = 0;
    let recentPeak = 0;
    for (let i = 0; i < this.#recent.length; i++) {
      const at = this.#recent[i] as { atMs: number; rate: number };
      const b = i > 0 ? (this.#recent[i - 1] as { rate: number }).rate : at.rate;
      peak = Math.max(peak, (at.rate + b) / 2);
      if (at.atMs >= nowMs - RECENT_PEAK_MS) recentPeak = Math.max(recentPeak, (at.rate + b) / 2);
    }
    const { burstiness, recentBurstiness } = this;
    return {
      instant: this.#instant,
      fast: this.#fast,
      slow: this.#slow,
      peak,
      recentPeak,
      burstiness,
      recentBurstiness,
    };
  }

  /** Burstiness over the last RECENT_BURSTINESS_BINS closed bins alone, by the same capped differences. */
  get recentBurstiness(): number {
    const n = RECENT_BURSTINESS_BINS;
    if (this.#bins < n + 1) return this.burstiness;
    const ring = this.#lastCounts;
    const at = (k: number) => ring[(this.#bins - 1 - k) % ring.length] as number;
    let sum = 0;
    for (let k = 0; k < n; k++) sum += at(k);
    const mean = sum / n;
    if (mean <= 0) return 1;
    const cap = 16 * Math.max(1, mean) * Math.max(1, mean);
    let half = 0;
    for (let k = 0; k < n; k++) {
      const d = at(k) - at(k + 1);
      half += Math.min(d * d, cap) / 2;
    }
    return Math.min(25, Math.max(0.2, half / n / mean));
  }

  get burstiness(): number {
    if (this.#bins < 20 || this.#countMean <= 0) return 1;
    return Math.min(25, Math.max(0.2, this.#countMean2 / this.#countMean));
  }
}
