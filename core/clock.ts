// Time is injected: everything about deadlines, batching and rates takes a Clock, so tests drive time by hand.
// performance comes from its module: the global one is a lazy accessor, run on every read.
import { performance } from 'node:perf_hooks';

declare const timerHandle: unique symbol;
/** What setTimer answers, for clearTimer: opaque, since each clock keeps timers of its own kind. */
export type TimerHandle = { readonly [timerHandle]: true };

export interface Clock {
  /** Monotonic milliseconds (fractional). Only differences are meaningful. */
  now(): number;
  /** Runs `fn` after `delayMs`; the timer never keeps the process alive. */
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /**
   * Runs `fn` once the I/O callbacks of the current event-loop turn have run (setImmediate). Absent on a clock that
   * only moves by hand: its callers act at once instead.
   */
  afterTurn?(fn: () => void): void;
}

/** The real clock: performance.now() and unref'd timers (the handle is Node's own timer, nothing kept beside it). */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }

  afterTurn(fn: () => void): void {
    setImmediate(fn);
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return t as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

/** A clock that only moves when told to; timers fire in due order during advance(). */
export class ManualClock implements Clock {
  #nowMs: number;
  #next = 1;
  readonly #timers = new Map<number, { atMs: number; seq: number; fn: () => void }>();

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { atMs: this.#nowMs + Math.max(0, delayMs), seq: id, fn });
    return { id } as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete((handle as unknown as { id: number }).id);
  }

  /** Number of timers not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** When the earliest pending timer is due, or undefined when none is. */
  nextTimerAt(): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers.values()) if (next === undefined || t.atMs < next) next = t.atMs;
    return next;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in time order (ties in creation order). */
  advance(ms: number): void {
    const target = this.#nowMs + ms;
    for (;;) {
      let dueId = -1;
      let due: { atMs: number; seq: number; fn: () => void } | undefined;
      for (const [id, t] of this.#timers) {
        if (t.atMs <= target && (due === undefined || t.atMs < due.atMs || (t.atMs === due.atMs && t.seq < due.seq))) {
          due = t;
          dueId = id;
        }
      }
      if (due === undefined) break;
      this.#timers.delete(dueId);
      this.#nowMs = Math.max(this.#nowMs, due.atMs);
      due.fn();
    }
    this.#nowMs = target;
  }

  /** Jumps to an absolute time (must not go backwards). */
  advanceTo(atMs: number): void {
    if (atMs < this.#nowMs) throw new RangeError(`ManualClock cannot go back from ${this.#nowMs} to ${atMs}`);
    this.advance(atMs - this.#nowMs);
  }
}
