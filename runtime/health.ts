// Readiness and liveness from the replicas' state. Ready: every served model has at least `minReadySlots` ready
// slots, so a ready answer means inference can run. Live: false once no slot has been ready for `livenessTimeoutMs`,
// or once a worker abandoned inside a batch has been stuck that long (only a restart gets its core back), so an
// orchestrator restarts a process whose replicas cannot come back on their own.
import type { Clock } from '../core/clock.js';

/** What health reads from the replica pool. */
export interface SlotSource {
  readonly readySlots: number;
  /** Since when the oldest abandoned, still-running execution has been stuck (undefined when none is). */
  readonly stuckSinceMs?: number | undefined;
  on(event: 'state', listener: (...args: never[]) => void): unknown;
}

export interface HealthOptions {
  readonly clock: Clock;
  readonly pool: SlotSource;
  readonly models: readonly string[];
  readonly minReadySlots: number;
  /** 0: liveness never fails. */
  readonly livenessTimeoutMs: number;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, when not. */
  readonly reason?: string;
  readonly models: readonly { readonly model: string; readonly readySlots: number }[];
}

export interface Liveness {
  readonly live: boolean;
  readonly reason?: string;
  /** How long no slot has been ready (0 while one is). */
  readonly noReadySlotMs: number;
}

export class RuntimeHealth {
  readonly #o: HealthOptions;
  #noSlotSinceMs: number | undefined;

  constructor(o: HealthOptions) {
    this.#o = o;
    this.#noSlotSinceMs = o.pool.readySlots > 0 ? undefined : o.clock.now();
    o.pool.on('state', () => this.#update());
  }

  #update(): void {
    if (this.#o.pool.readySlots > 0) this.#noSlotSinceMs = undefined;
    else this.#noSlotSinceMs ??= this.#o.clock.now();
  }

  /** Ready slots per served model: every replica loads every model, and one that cannot is not ready. */
  #slots(): { model: string; readySlots: number }[] {
    const n = this.#o.pool.readySlots;
    return this.#o.models.map((model) => ({ model, readySlots: n }));
  }

  readiness(): Readiness {
    const models = this.#slots();
    const short = models.filter((m) => m.readySlots < this.#o.minReadySlots);
    if (short.length === 0) return { ready: true, models };
    const list = short.map((m) => `${m.model} has ${m.readySlots}`).join(', ');
    return { ready: false, reason: `too few ready slots (minimum ${this.#o.minReadySlots}): ${list}`, models };
  }

  modelReady(model: string): boolean {
    return (this.#slots().find((m) => m.model === model)?.readySlots ?? 0) >= this.#o.minReadySlots;
  }

  liveness(): Liveness {
    this.#update();
    const since = this.#noSlotSinceMs;
    const noReadySlotMs = since === undefined ? 0 : this.#o.clock.now() - since;
    const limit = this.#o.livenessTimeoutMs;
    const stuck = this.#o.pool.stuckSinceMs;
    const stuckMs = stuck === undefined ? 0 : this.#o.clock.now() - stuck;
    if (limit > 0 && stuck !== undefined && stuckMs >= limit)
      return {
        live: false,
        reason: `a hung worker has been stuck in a batch for ${Math.round(stuckMs)} ms`,
        noReadySlotMs,
      };
    if (limit === 0 || noReadySlotMs < limit) return { live: true, noReadySlotMs };
    return { live: false, reason: `no replica slot has been ready for ${Math.round(noReadySlotMs)} ms`, noReadySlotMs };
  }
}
