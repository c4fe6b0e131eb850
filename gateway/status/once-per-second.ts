// A value recomputed at most once per period whatever the number of readers: the status page's data costs a scan of
// minutes of per-second history, so every viewer past the first in a second reads the same copy.

export class OncePerPeriod<T> {
  readonly #periodMs: number;
  #atMs = Number.NEGATIVE_INFINITY;
  #value: T | undefined;

  constructor(periodMs = 1000) {
    this.#periodMs = periodMs;
  }

  /** The value computed at most `periodMs` ago, or a fresh one from `compute`. */
  get(nowMs: number, compute: () => T): T {
    if (this.#value === undefined || nowMs - this.#atMs >= this.#periodMs || nowMs < this.#atMs) {
      this.#value = compute();
      this.#atMs = nowMs;
    }
    return this.#value;
  }
}
