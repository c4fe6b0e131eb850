// Picks a replica for each batch (least outstanding work, with an error penalty that decays on success, like
// undici's BalancedPool) and retries a batch once on another replica when its replica fails.
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../core/clock.js';
import { SlogateError } from '../core/errors.js';
import type { BatchOutcome, BatchTask, Replica, ReplicaState } from './replica.js';
import { ReplicaFault } from './replica.js';

export interface ReplicaStats {
  readonly id: string;
  readonly kind: 'local' | 'remote';
  readonly state: ReplicaState;
  readonly provider: string;
  readonly slots: number;
  readonly outstanding: number;
  readonly errorScore: number;
  readonly restarts: number;
  readonly batches: number;
  readonly lastChange: string;
}

export interface PoolEvents {
  /** A slot became free: the scheduler may dispatch. */
  'slot-free': [];
  state: [replicaId: string, state: ReplicaState, reason: string];
  restart: [replicaId: string, reason: string];
  /** A batch is being retried after its replica failed. */
  retry: [failedReplicaId: string, reason: string];
}

interface Waiter {
  exclude: Replica | undefined;
  resolve: (r: Replica | undefined) => void;
  timer: TimerHandle;
}

interface Health {
  errorScore: number;
  restarts: number;
  batches: number;
  lastChange: string;
}

export class ReplicaPool extends EventEmitter<PoolEvents> {
  readonly #replicas: Replica[];
  readonly #health = new Map<Replica, Health>();
  readonly #clock: Clock;
  readonly #retryWaitMs: number;
  #waiters: Waiter[] = [];

  constructor(replicas: readonly Replica[], options: { clock: Clock; retryWaitMs?: number }) {
    super();
    this.#replicas = [...replicas];
    this.#clock = options.clock;
    this.#retryWaitMs = options.retryWaitMs ?? 10_000;
    for (const r of this.#replicas) {
      this.#health.set(r, { errorScore: 0, restarts: 0, batches: 0, lastChange: 'starting' });
      r.events.on('state', (state, reason) => {
        (this.#health.get(r) as Health).lastChange = reason;
        this.emit('state', r.id, state, reason);
        if (state === 'ready') this.#onSlotFree();
      });
      r.events.on('restart', (reason) => {
        (this.#health.get(r) as Health).restarts++;
        this.emit('restart', r.id, reason);
      });
    }
  }

  get replicas(): readonly Replica[] {
    return this.#replicas;
  }

  /** Slots free for new batches (ready replicas only; retries waiting for a slot come first). */
  get freeSlots(): number {
    let free = 0;
    for (const r of this.#replicas) if (r.state === 'ready') free += Math.max(0, r.slots - r.outstanding);
    return Math.max(0, free - this.#waiters.length);
  }

  /** Slots of ready replicas, busy or not. */
  get readySlots(): number {
    let n = 0;
    for (const r of this.#replicas) if (r.state === 'ready') n += r.slots;
    return n;
  }

  get outstanding(): number {
    let n = 0;
    for (const r of this.#replicas) n += r.outstanding;
    return n;
  }

  /** The best ready replica with a free slot: least loaded, penalised by recent errors. */
  pick(exclude?: Replica): Replica | undefined {
    let best: Replica | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    for (const r of this.#replicas) {
      if (r === exclude || r.state !== 'ready' || r.outstanding >= r.slots) continue;
      const score = r.outstanding / r.slots + (this.#health.get(r) as Health).errorScore;
      if (score < bestScore) {
        best = r;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * Runs a batch. `build` makes the task for each attempt (a retry needs its inputs intact, so the first attempt
   * may move buffers only if build() can make them again). A replica fault is retried once on another replica,
   * or on the same one once it has been replaced when it is the only one.
   */
  async run(build: () => BatchTask): Promise<BatchOutcome> {
    const first = this.pick();
    if (first === undefined)
      throw new SlogateError('SLOGATE_ERR_REPLICA_UNAVAILABLE', 'no replica is ready', { retryAfterMs: 1000 });
    try {
      return await this.#runOn(first, build());
    } catch (err) {
      if (!(err instanceof ReplicaFault)) throw err;
      const others = this.#replicas.some((r) => r !== first && r.state !== 'closed');
      const second = await this.#waitForReplica(others ? first : undefined);
      if (second === undefined) {
        throw new SlogateError(
          'SLOGATE_ERR_REPLICA_UNAVAILABLE',
          `${err.message}; no replica became available for the retry`,
          { retryAfterMs: 1000 },
        );
      }
      this.emit('retry', first.id, err.message);
      try {
        return await this.#runOn(second, build());
      } catch (err2) {
        if (err2 instanceof ReplicaFault)
          throw new SlogateError('SLOGATE_ERR_REPLICA_UNAVAILABLE', `batch failed on two replicas: ${err2.message}`, {
            retryAfterMs: 1000,
          });
        throw err2;
      }
    }
  }

  /** Runs a task on that replica, queued behind its running batch if it is busy (a deploy gate's run). */
  runOn(r: Replica, task: BatchTask): Promise<BatchOutcome> {
    return this.#runOn(r, task);
  }

  async #runOn(r: Replica, task: BatchTask): Promise<BatchOutcome> {
    const h = this.#health.get(r) as Health;
    try {
      const out = await r.run(task);
      h.errorScore *= 0.5;
      if (h.errorScore < 0.01) h.errorScore = 0;
      h.batches++;
      return out;
    } catch (err) {
      if (err instanceof ReplicaFault) h.errorScore = Math.min(10, h.errorScore + 1);
      throw err;
    } finally {
      this.#onSlotFree();
    }
  }

  /** A replica for a retry: another one, or the failed one itself when every other is closed or down. */
  #pickForRetry(exclude: Replica | undefined): Replica | undefined {
    const other = this.pick(exclude);
    if (other !== undefined || exclude === undefined) return other;
    return exclude.state === 'ready' && this.#onlyLive(exclude) ? this.pick() : undefined;
  }

  #waitForReplica(exclude: Replica | undefined): Promise<Replica | undefined> {
    const now = this.#pickForRetry(exclude);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        exclude,
        resolve,
        timer: this.#clock.setTimer(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(undefined);
        }, this.#retryWaitMs),
      };
      this.#waiters.push(waiter);
    });
  }

  #onSlotFree(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0] as Waiter;
      const r = this.#pickForRetry(w.exclude);
      if (r === undefined) break;
      this.#waiters.shift();
      this.#clock.clearTimer(w.timer);
      w.resolve(r);
      return; // the retry takes this slot; the next free slot wakes the next waiter
    }
    this.emit('slot-free');
  }

  /** True when every other replica is closed or down (then the excluded one may take its own retry). */
  #onlyLive(r: Replica): boolean {
    return this.#replicas.every((x) => x === r || x.state === 'closed' || x.state === 'down');
  }

  stats(): ReplicaStats[] {
    return this.#replicas.map((r) => {
      const h = this.#health.get(r) as Health;
      return {
        id: r.id,
        kind: r.kind,
        state: r.state,
        provider: r.provider,
        slots: r.slots,
        outstanding: r.outstanding,
        errorScore: Math.round(h.errorScore * 1000) / 1000,
        restarts: h.restarts,
        batches: h.batches,
        lastChange: h.lastChange,
      };
    });
  }

  async close(): Promise<void> {
    for (const w of this.#waiters) {
      this.#clock.clearTimer(w.timer);
      w.resolve(undefined);
    }
    this.#waiters = [];
    await Promise.all(this.#replicas.map((r) => r.close()));
  }
}
