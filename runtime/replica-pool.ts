// Picks a replica for each batch (least outstanding work, with an error penalty that decays on success, like
// undici's BalancedPool) and retries a batch once on another replica when its replica fails. Membership changes
// while serving: a replica added takes batches at once; one drained takes none and is closed once its running
// batches have finished, so no batch is cut.
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
  /** A batch passed its timeout on a replica. */
  timeout: [replicaId: string, timeoutMs: number];
  /** A batch is being retried after its replica failed. */
  retry: [failedReplicaId: string, reason: string];
  /** A replica joined, started draining, or left the pool. */
  member: [replicaId: string, change: 'added' | 'draining' | 'removed'];
}

/** Limits of one pool.run(): a timeout per attempt, and what the caller keeps for the retry. */
export interface RunOptions {
  /** How long an attempt starting now may run (ms); no limit when absent. */
  timeoutMs?(): number;
  /**
   * Called before the retry, after an attempt failed on its replica: false when nothing is left worth retrying
   * (the caller has answered its requests), and the batch then fails with the first attempt's error.
   */
  beforeRetry?(fault: ReplicaFault): boolean;
}

/** An attempt that passed its timeout: its replica was told, and the batch may be retried elsewhere. */
export class BatchTimeoutFault extends ReplicaFault {
  constructor(
    replicaId: string,
    readonly timeoutMs: number,
  ) {
    super(replicaId, `replica ${replicaId} did not finish the batch within its ${Math.round(timeoutMs)} ms timeout`);
    this.name = 'BatchTimeoutFault';
  }
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

/** A replica that knows from its node's load reports how many of its slots are left to this gateway. */
interface LoadAware {
  readonly availableSlots: number;
}

/** The slots a replica offers this gateway now: what its load reports leave, else its configured slots. */
function slotsOf(r: Replica): number {
  return 'availableSlots' in r ? (r as Replica & LoadAware).availableSlots : r.slots;
}

export class ReplicaPool extends EventEmitter<PoolEvents> {
  #replicas: Replica[];
  readonly #health = new Map<Replica, Health>();
  /** Replicas taking no new batches, each with who waits for its drain to end. */
  readonly #draining = new Map<Replica, (() => void)[]>();
  readonly #detach = new Map<Replica, () => void>();
  readonly #clock: Clock;
  readonly #retryWaitMs: number;
  #waiters: Waiter[] = [];

  constructor(replicas: readonly Replica[], options: { clock: Clock; retryWaitMs?: number }) {
    super();
    this.#replicas = [...replicas];
    this.#clock = options.clock;
    this.#retryWaitMs = options.retryWaitMs ?? 10_000;
    for (const r of this.#replicas) this.#attach(r);
  }

  #attach(r: Replica): void {
    this.#health.set(r, { errorScore: 0, restarts: 0, batches: 0, lastChange: 'starting' });
    const onState = (state: ReplicaState, reason: string): void => {
      (this.#health.get(r) as Health).lastChange = reason;
      this.emit('state', r.id, state, reason);
      if (state === 'ready') this.#onSlotFree();
    };
    const onRestart = (reason: string): void => {
      (this.#health.get(r) as Health).restarts++;
      this.emit('restart', r.id, reason);
    };
    r.events.on('state', onState);
    r.events.on('restart', onRestart);
    this.#detach.set(r, () => {
      r.events.off('state', onState);
      r.events.off('restart', onRestart);
    });
  }

  /**
   * Adds a started replica: it takes batches (and waiting retries) at once. It goes first in the list, so it wins
   * ties (ties go to the first listed): a node that joins carries traffic even while the others are idle.
   */
  add(r: Replica): void {
    if (this.#health.has(r)) return;
    this.#replicas.unshift(r);
    this.#attach(r);
    this.emit('member', r.id, 'added');
    if (r.state === 'ready') this.#onSlotFree();
  }

  /**
   * Takes a replica out: no new batch goes to it, its running batches finish (a failure there is retried elsewhere
   * as usual), then it is closed and removed. Resolves once it is gone.
   */
  drain(r: Replica): Promise<void> {
    if (!this.#health.has(r)) return Promise.resolve();
    const waiting = this.#draining.get(r);
    if (waiting !== undefined) return new Promise((resolve) => waiting.push(resolve));
    const done = new Promise<void>((resolve) => this.#draining.set(r, [resolve]));
    this.emit('member', r.id, 'draining');
    this.#finishDrain(r);
    return done;
  }

  get draining(): number {
    return this.#draining.size;
  }

  /** Removes and closes a draining replica once nothing runs on it. */
  #finishDrain(r: Replica): void {
    const waiting = this.#draining.get(r);
    if (waiting === undefined || r.outstanding > 0) return;
    this.#draining.delete(r);
    this.#replicas = this.#replicas.filter((x) => x !== r);
    this.#detach.get(r)?.();
    this.#detach.delete(r);
    this.#health.delete(r);
    this.emit('member', r.id, 'removed');
    void r.close().finally(() => {
      for (const resolve of waiting) resolve();
    });
  }

  /** Ready and not draining: may take new batches. */
  #serving(r: Replica): boolean {
    return r.state === 'ready' && !this.#draining.has(r);
  }

  get replicas(): readonly Replica[] {
    return this.#replicas;
  }

  /** Slots free for new batches (ready replicas only; retries waiting for a slot come first). */
  get freeSlots(): number {
    let free = 0;
    for (const r of this.#replicas) if (this.#serving(r)) free += Math.max(0, slotsOf(r) - r.outstanding);
    return Math.max(0, free - this.#waiters.length);
  }

  /** Slots of ready replicas, busy or not. */
  get readySlots(): number {
    let n = 0;
    for (const r of this.#replicas) if (this.#serving(r)) n += r.slots;
    return n;
  }

  /** Slots of ready replicas left to this gateway: a remote node's slots less what other gateways' work holds. */
  get availableSlots(): number {
    let n = 0;
    for (const r of this.#replicas) if (this.#serving(r)) n += slotsOf(r);
    return n;
  }

  /** Since when the oldest execution abandoned by a replica has been stuck (undefined when none is). */
  get stuckSinceMs(): number | undefined {
    let oldest: number | undefined;
    for (const r of this.#replicas) {
      const since = r.stuckSinceMs;
      if (since !== undefined && (oldest === undefined || since < oldest)) oldest = since;
    }
    return oldest;
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
      const slots = slotsOf(r);
      if (r === exclude || !this.#serving(r) || r.outstanding >= slots) continue;
      const score = r.outstanding / slots + (this.#health.get(r) as Health).errorScore;
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
  async run(build: () => BatchTask, options: RunOptions = {}): Promise<BatchOutcome> {
    const first = this.pick();
    if (first === undefined)
      throw new SlogateError('SLOGATE_ERR_REPLICA_UNAVAILABLE', 'no replica is ready', { retryAfterMs: 1000 });
    try {
      return await this.#runOn(first, build(), options);
    } catch (err) {
      if (!(err instanceof ReplicaFault)) throw err;
      if (options.beforeRetry?.(err) === false) throw faultError(err, 'nothing left to retry');
      const others = this.#replicas.some((r) => r !== first && r.state !== 'closed' && !this.#draining.has(r));
      const second = await this.#waitForReplica(others ? first : undefined);
      if (second === undefined) throw faultError(err, 'no replica became available for the retry');
      this.emit('retry', first.id, err.message);
      try {
        return await this.#runOn(second, build(), options);
      } catch (err2) {
        if (err2 instanceof ReplicaFault) throw faultError(err2, 'the batch failed on two replicas');
        throw err2;
      }
    }
  }

  /**
   * Runs the batch before returning when the replica run() would pick runs it inline (inline-runner.ts): no hop, and
   * no timeout, which nothing on the main thread could act on before the run ends. Undefined leaves the batch to
   * run(); throws the request's SlogateError.
   */
  runNow(task: BatchTask): BatchOutcome | undefined {
    const r = this.pick();
    const out = r?.runNow?.(task);
    if (out !== undefined) this.#succeeded(r as Replica);
    return out;
  }

  /**
   * A target for work done while serving (deploy gates, profiling a variant added at run time): each batch goes to
   * the next ready replica that `accepts`, queued behind its running batch, instead of needing a free slot the
   * scheduler's batches keep taken.
   */
  whileServing(accepts: (r: Replica) => boolean = () => true): Pick<ReplicaPool, 'run' | 'readySlots'> {
    let next = 0;
    const ready = () => this.#replicas.filter((r) => this.#serving(r) && accepts(r));
    return {
      get readySlots() {
        return ready().reduce((n, r) => n + r.slots, 0);
      },
      run: async (build) => {
        const list = ready();
        const r = list[next++ % Math.max(1, list.length)];
        if (r === undefined)
          throw new SlogateError('SLOGATE_ERR_REPLICA_UNAVAILABLE', 'no replica is ready', { retryAfterMs: 1000 });
        return this.runOn(r, build());
      },
    };
  }

  /** Runs a task on that replica, queued behind its running batch if it is busy (a deploy gate's run). */
  runOn(r: Replica, task: BatchTask): Promise<BatchOutcome> {
    return this.#runOn(r, task, {});
  }

  async #runOn(r: Replica, task: BatchTask, options: RunOptions): Promise<BatchOutcome> {
    const h = this.#health.get(r) as Health;
    try {
      const out = await this.#limited(r, r.run(task), options.timeoutMs?.());
      this.#succeeded(r);
      return out;
    } catch (err) {
      if (err instanceof ReplicaFault) h.errorScore = Math.min(10, h.errorScore + 1);
      throw err;
    } finally {
      this.#finishDrain(r);
      this.#onSlotFree();
    }
  }

  /** A batch came back from `r`: its error score decays. */
  #succeeded(r: Replica): void {
    const h = this.#health.get(r) as Health;
    h.errorScore *= 0.5;
    if (h.errorScore < 0.01) h.errorScore = 0;
    h.batches++;
  }

  /** The attempt, or a BatchTimeoutFault once it has run `timeoutMs` (the replica is told, the attempt is let go). */
  #limited(r: Replica, attempt: Promise<BatchOutcome>, timeoutMs: number | undefined): Promise<BatchOutcome> {
    if (timeoutMs === undefined) return attempt;
    return new Promise<BatchOutcome>((resolve, reject) => {
      const timer = this.#clock.setTimer(() => {
        const fault = new BatchTimeoutFault(r.id, timeoutMs);
        reject(fault);
        this.emit('timeout', r.id, timeoutMs);
        r.timedOut?.(fault.message);
      }, timeoutMs);
      attempt.then(
        (out) => {
          this.#clock.clearTimer(timer);
          resolve(out);
        },
        (err: unknown) => {
          this.#clock.clearTimer(timer);
          reject(err);
        },
      );
    });
  }

  /** A replica for a retry: another one, or the failed one itself when every other is closed or down. */
  #pickForRetry(exclude: Replica | undefined): Replica | undefined {
    const other = this.pick(exclude);
    if (other !== undefined || exclude === undefined) return other;
    return this.#serving(exclude) && this.#onlyLive(exclude) ? this.pick() : undefined;
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
    return this.#replicas.every((x) => x === r || x.state === 'closed' || x.state === 'down' || this.#draining.has(x));
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
    for (const waiting of this.#draining.values()) for (const resolve of waiting) resolve();
    this.#draining.clear();
  }
}

/** The error a batch fails with after replica faults: a timeout, or no replica could answer. */
function faultError(fault: ReplicaFault, what: string): SlogateError {
  if (fault instanceof BatchTimeoutFault)
    return new SlogateError('SLOGATE_ERR_BATCH_TIMEOUT', `${fault.message}; ${what}`, { retryAfterMs: 1000 });
  return new SlogateError('SLOGATE_ERR_REPLICA_UNAVAILABLE', `${fault.message}; ${what}`, { retryAfterMs: 1000 });
}
