// Replacing a failed replica: the first attempt at once, then attempts spaced by a capped exponential backoff, for
// ever. A replacement that cannot load (a broken model file, a full disk) neither spins nor gives up for good.
import type { Clock, TimerHandle } from '../core/clock.js';

export interface BackoffOptions {
  /** Wait before the second attempt; doubled for each further one. */
  readonly initialMs: number;
  /** Longest wait between two attempts. */
  readonly maxMs: number;
}

/** Wait before attempt `attempt` (1-based): 0 for the first, then initialMs x 2^(attempt - 2), at most maxMs. */
export function backoffMs(attempt: number, o: BackoffOptions): number {
  if (attempt <= 1) return 0;
  return Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt - 2, 30));
}

export interface RespawnerOptions extends BackoffOptions {
  readonly clock: Clock;
  /** One replacement attempt: resolves once the replacement is ready, rejects when it failed. */
  readonly attempt: () => Promise<void>;
  /** A failed attempt (1-based) and the wait before the next one. */
  readonly onFailure: (err: unknown, attempt: number, nextInMs: number) => void;
}

/**
 * Runs replacement attempts until one succeeds or stop() is called; at most one attempt runs at a time. A replacement
 * that fails again within maxMs of its success (it loads, then crashes) continues the backoff instead of restarting it.
 */
export class Respawner {
  readonly #o: RespawnerOptions;
  #attempt = 0;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  #succeededAtMs: number | undefined;

  constructor(o: RespawnerOptions) {
    this.#o = o;
  }

  /** Attempts in the current series (since the last start after a stable run). */
  get attempts(): number {
    return this.#attempt;
  }

  /** True while an attempt runs or is scheduled. */
  get active(): boolean {
    return this.#running || this.#timer !== undefined;
  }

  /** Starts replacing (no-op while already at it): at once, unless the last replacement did not stay up for maxMs. */
  start(): void {
    if (this.#stopped || this.active) return;
    const since =
      this.#succeededAtMs === undefined ? Number.POSITIVE_INFINITY : this.#o.clock.now() - this.#succeededAtMs;
    if (since >= this.#o.maxMs) this.#attempt = 0;
    const waitMs = backoffMs(this.#attempt + 1, this.#o);
    if (waitMs === 0) void this.#next();
    else this.#timer = this.#o.clock.setTimer(() => void this.#next(), waitMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  async #next(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#attempt++;
    this.#running = true;
    try {
      await this.#o.attempt();
      this.#running = false;
      this.#succeededAtMs = this.#o.clock.now();
    } catch (err) {
      this.#running = false;
      if (this.#stopped) return;
      const waitMs = backoffMs(this.#attempt + 1, this.#o);
      this.#o.onFailure(err, this.#attempt, waitMs);
      this.#timer = this.#o.clock.setTimer(() => void this.#next(), waitMs);
    }
  }
}
