// A replica runs batches: a local worker thread (piscina with exactly one thread, which piscina replaces when it
// dies) or, in remote-replica.ts, another slogate runtime node. Replica faults are told apart from request faults
// so the pool retries only what another replica could answer.
import { EventEmitter } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Clock } from '../core/clock.js';
import { SlogateError } from '../core/errors.js';
import type { InlineRunner } from './inline-runner.js';
import { type BackoffOptions, Respawner } from './respawn.js';
import type {
  DescribeResult,
  RevisionResult,
  RevisionTask,
  RunTask,
  WireTensor,
  WorkerInit,
  WorkerResult,
  WorkerVariant,
} from './worker/messages.js';
import { WorkerChannel } from './worker-channel.js';
import { postedInputs } from './worker-inputs.js';

/** suspect: answers its health check but let a batch pass its timeout; it gets no batches until a probe passes. */
export type ReplicaState = 'pending' | 'ready' | 'suspect' | 'down' | 'closed';

export interface BatchTask {
  readonly model: string;
  readonly variant: string;
  readonly inputs: WireTensor[];
  readonly outputs?: string[] | undefined;
  readonly rows: number;
  /** The input buffers belong to this task alone and may be moved to the worker (never true for data a retry needs). */
  readonly transfer: boolean;
  /** The earliest deadline of the batch's requests: a remote node is sent it and refuses at once what cannot make it. */
  readonly deadlineAtMs?: number | undefined;
  /** Run this loaded revision rather than the variant's active one (gates only). */
  readonly revision?: string | undefined;
  /** The batch's predicted compute time (its profile's p50 less the hop), when the variant has a profile. */
  readonly expectedMs?: number | undefined;
}

export interface BatchOutcome {
  readonly outputs: WireTensor[];
  /** Time the model itself ran (inside the worker, or as reported by the remote node). */
  readonly inferMs: number;
  /** How long the replica itself was busy with the batch (excludes the hop to it and back). */
  readonly workerMs: number;
  readonly replicaId: string;
  /** It ran on the main thread (inline-runner.ts), not on the replica's worker. */
  readonly inline?: true;
}

/** The replica failed (crashed, unreachable), not the request: another replica may answer. */
export class ReplicaFault extends Error {
  constructor(
    readonly replicaId: string,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicaFault';
  }
}

export interface ReplicaEvents {
  state: [state: ReplicaState, reason: string];
  restart: [reason: string];
}

export interface Replica {
  readonly id: string;
  readonly kind: 'local' | 'remote';
  /** Batches it runs at once. */
  readonly slots: number;
  readonly state: ReplicaState;
  /** Batches running on it now. */
  readonly outstanding: number;
  /** Execution provider in use ('cpu', 'cuda', or 'remote'). */
  readonly provider: string;
  readonly events: EventEmitter<ReplicaEvents>;
  /** Loads the models; resolves with their description once ready. */
  start(): Promise<DescribeResult>;
  /** Runs one batch; rejects with ReplicaFault (retry elsewhere) or SlogateError (the request's fault). */
  run(task: BatchTask): Promise<BatchOutcome>;
  /**
   * Runs the batch before returning when it would run inline on the main thread (inline-runner.ts); undefined
   * leaves it to run(). Throws the request's SlogateError. Absent: nothing runs inline.
   */
  runNow?(task: BatchTask): BatchOutcome | undefined;
  /**
   * A batch on it passed its timeout (the pool has already failed that attempt): take it out of service until it
   * proves healthy again. Absent: the replica cannot hang (a simulation).
   */
  timedOut?(reason: string): void;
  /** Since when its oldest abandoned, still-running execution has been stuck (undefined when none is). */
  readonly stuckSinceMs?: number | undefined;
  /** Loads, activates or unloads a model revision; absent where the replica cannot take revisions. */
  revision?(task: RevisionTask): Promise<RevisionResult>;
  close(): Promise<void>;
}

const WORKER_URL = new URL('./worker/ort-worker.js', import.meta.url);

/**
 * Threads a local replica may hold at once, counting abandoned ones still running (each holds a core and the models):
 * a request that hangs every worker it reaches cannot make the process spawn threads without end.
 */
const MAX_THREADS = 2;

export interface LocalReplicaOptions {
  readonly clock: Clock;
  /** Spacing of the attempts to replace a worker that exited (the first is immediate). */
  readonly respawn: BackoffOptions;
  /** Runs the batches cheaper than the hand-off on the main thread; shared by the process's local replicas. */
  readonly inline?: InlineRunner | undefined;
}

export class LocalReplica implements Replica {
  readonly kind = 'local' as const;
  readonly slots = 1;
  readonly events = new EventEmitter<ReplicaEvents>();
  readonly #init: WorkerInit;
  /** The active revision of each variant: what a replacement worker loads. */
  #variants: WorkerVariant[];
  /** Files of the revisions loaded beside the active ones, by revision. */
  readonly #candidatePaths = new Map<string, string>();
  readonly #respawner: Respawner;
  #pool: Piscina | undefined;
  /** Each pool's direct line for batches (worker-channel.ts). */
  readonly #channels = new Map<Piscina, WorkerChannel>();
  #state: ReplicaState = 'pending';
  #outstanding = 0;
  #provider = 'cpu';
  #closing = false;
  /** Pools whose worker passed a batch timeout, with when: destroyed once their run returns. */
  readonly #abandoned = new Map<Piscina, number>();
  readonly #clock: Clock;
  readonly #inline: InlineRunner | undefined;

  constructor(init: WorkerInit, options: LocalReplicaOptions) {
    this.#init = init;
    this.#clock = options.clock;
    this.#inline = options.inline;
    this.#variants = [...init.variants];
    this.#respawner = new Respawner({
      ...options.respawn,
      clock: options.clock,
      attempt: () => this.#replace(),
      onFailure: (err, attempt, nextInMs) =>
        this.#setState(
          'down',
          `replacement worker failed to load (attempt ${attempt}): ${(err as Error).message}; next attempt in ${nextInMs} ms`,
        ),
    });
  }

  get id(): string {
    return this.#init.replicaId;
  }
  get state(): ReplicaState {
    return this.#state;
  }
  get outstanding(): number {
    return this.#outstanding;
  }
  get provider(): string {
    return this.#provider;
  }
  get stuckSinceMs(): number | undefined {
    let oldest: number | undefined;
    for (const since of this.#abandoned.values()) if (oldest === undefined || since < oldest) oldest = since;
    return oldest;
  }
  /** Worker threads abandoned inside a batch and still running it. */
  get stuckWorkers(): number {
    return this.#abandoned.size;
  }

  /** The live worker thread (tests kill it to check self-healing). */
  get worker(): { terminate(): Promise<number> } | undefined {
    return this.#pool?.threads[0];
  }

  async start(): Promise<DescribeResult> {
    const desc = await this.#spawn();
    this.#setState('ready', 'models loaded');
    return desc;
  }

  /**
   * A fresh one-thread pool whose worker has loaded every variant. A worker that fails to load rejects here (piscina
   * would otherwise restart it at once, for ever, and may leave the task waiting), and its pool is destroyed.
   */
  async #spawn(): Promise<DescribeResult> {
    const pool = new Piscina({
      filename: WORKER_URL.href,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      // The worker's event loop stays free between piscina's tasks: batches arrive on the channel's port.
      atomics: 'disabled',
      workerData: { ...this.#init, variants: this.#variants } satisfies WorkerInit,
      name: 'default',
    });
    this.#pool = pool;
    let loadFailed: (err: Error) => void = () => {};
    const failure = new Promise<never>((_, reject) => {
      loadFailed = reject;
    });
    failure.catch(() => {});
    // Once loaded, errors reach the task that was running, and an exit shows up as workerDestroy.
    pool.on('error', (err: Error) => loadFailed(err));
    pool.on('workerDestroy', () => {
      this.#dropChannel(pool, new Error('the worker exited'));
      if (this.#closing || this.#pool !== pool) return;
      if (this.#state === 'ready') this.#onWorkerExit(pool);
      else loadFailed(new Error('the worker exited while loading'));
    });
    try {
      const desc = await Promise.race([this.#describe(pool), failure]);
      await Promise.race([this.#openChannel(pool), failure]);
      return desc;
    } catch (err) {
      this.#dropChannel(pool, err as Error);
      if (this.#pool === pool) this.#pool = undefined;
      await pool.destroy().catch(() => {});
      throw err;
    }
  }

  async #describe(pool: Piscina): Promise<DescribeResult> {
    const r = (await pool.run({ kind: 'describe' })) as WorkerResult;
    if (!r.ok) throw SlogateError.fromData(r.error);
    if (r.kind !== 'describe') throw new Error('unexpected worker reply to describe');
    this.#provider = r.provider;
    return r;
  }

  async #openChannel(pool: Piscina): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    const channel = new WorkerChannel(port1);
    this.#channels.set(pool, channel);
    const r = (await pool.run({ kind: 'channel', port: port2 }, { transferList: [port2] })) as WorkerResult;
    if (!r.ok) throw SlogateError.fromData(r.error);
  }

  /** Fails what still waits on a pool's channel (its worker is gone) and forgets the channel. */
  #dropChannel(pool: Piscina, err: Error): void {
    const channel = this.#channels.get(pool);
    if (channel === undefined) return;
    this.#channels.delete(pool);
    channel.fail(err);
    channel.close();
  }

  /** The worker died while serving: its running batch already failed over; replace it in a fresh pool. */
  #onWorkerExit(pool: Piscina): void {
    this.#pool = undefined;
    this.#setState('pending', 'worker exited; starting a replacement');
    this.events.emit('restart', 'worker exited');
    // Not from inside piscina's own teardown (it is still removing the dead worker): on the next turn.
    setImmediate(() => {
      void pool.destroy().catch(() => {});
      this.#respawner.start();
    });
  }

  /** One replacement attempt (the respawner spaces them out). */
  async #replace(): Promise<void> {
    if (this.#closing) return;
    await this.#spawn();
    if (!this.#closing) this.#setState('ready', 'replacement worker loaded');
  }

  #setState(state: ReplicaState, reason: string): void {
    // A repeated failure is news too (its attempt and error): 'down' is announced again.
    if ((this.#state === state && state !== 'down') || this.#state === 'closed') return;
    this.#state = state;
    this.events.emit('state', state, reason);
  }

  async run(task: BatchTask): Promise<BatchOutcome> {
    const pool = this.#pool;
    if (pool === undefined || this.#state !== 'ready')
      throw new ReplicaFault(this.id, `replica ${this.id} is ${this.#state}`);
    if (this.#runsInline(task)) return this.#runInline(task);
    const { inputs, transferList } = postedInputs(task.inputs, task.transfer);
    const msg: RunTask = { kind: 'run', model: task.model, variant: task.variant, inputs };
    if (task.outputs !== undefined) msg.outputs = task.outputs;
    if (task.revision !== undefined) msg.revision = task.revision;
    const channel = this.#channels.get(pool);
    this.#outstanding++;
    let r: WorkerResult;
    try {
      r =
        channel === undefined
          ? ((await pool.run(msg, { transferList })) as WorkerResult)
          : await channel.run(msg, transferList);
    } catch (err) {
      // The channel can tell before piscina does that the worker is gone: out of service at once, so the retry
      // waits for the replacement rather than failing on the dead worker.
      if (channel?.failed === true && this.#pool === pool && this.#state === 'ready' && !this.#closing)
        this.#onWorkerExit(pool);
      throw new ReplicaFault(this.id, `replica ${this.id} failed while running a batch: ${(err as Error).message}`);
    } finally {
      this.#settled(pool);
    }
    if (!r.ok) throw SlogateError.fromData(r.error);
    if (r.kind !== 'run') throw new Error('unexpected worker reply to run');
    return { outputs: r.outputs, inferMs: r.inferMs, workerMs: r.workerMs, replicaId: this.id };
  }

  runNow(task: BatchTask): BatchOutcome | undefined {
    if (this.#pool === undefined || this.#state !== 'ready' || !this.#runsInline(task)) return undefined;
    this.#outstanding++;
    try {
      return (this.#inline as InlineRunner).runNow(task, this.id);
    } finally {
      this.#outstanding--;
    }
  }

  #runsInline(task: BatchTask): boolean {
    if (this.#inline === undefined) return false;
    const active = this.#variants.find((v) => v.model === task.model && v.variant === task.variant);
    return active !== undefined && this.#inline.accepts(task, active.path);
  }

  async #runInline(task: BatchTask): Promise<BatchOutcome> {
    this.#outstanding++;
    try {
      return await (this.#inline as InlineRunner).run(task, this.id);
    } finally {
      this.#outstanding--;
    }
  }

  /**
   * A run on `pool` returned: count it off (also when its worker died meanwhile), unless the pool was abandoned (its
   * run no longer counts): then destroy it, its worker idle now.
   */
  #settled(pool: Piscina): void {
    if (!this.#abandoned.delete(pool)) {
      this.#outstanding--;
      return;
    }
    this.#dropChannel(pool, new Error('the worker was abandoned'));
    void pool.destroy().catch(() => {});
    if (this.#pool === undefined && this.#state === 'down' && !this.#closing && !this.#respawner.active) {
      this.#setState('pending', 'an abandoned worker finished its batch; starting a replacement');
      this.#respawner.start();
    } else this.events.emit('state', this.#state, 'an abandoned worker finished its batch and was stopped');
  }

  /**
   * The running batch passed its timeout. Node cannot stop a thread inside onnxruntime's native run (and terminating
   * it then aborts the process once the run returns), so the worker is abandoned: a fresh one replaces it at once,
   * and the old one is destroyed when its run returns. With MAX_THREADS held, the replica is down until one returns.
   */
  timedOut(reason: string): void {
    const pool = this.#pool;
    if (pool === undefined || this.#state !== 'ready' || this.#closing || this.#outstanding === 0) return;
    this.#pool = undefined;
    this.#outstanding = 0;
    this.#abandoned.set(pool, this.#clock.now());
    this.events.emit('restart', 'worker hung');
    if (this.#abandoned.size >= MAX_THREADS) {
      this.#setState('down', `worker hung (${reason}) while an earlier one is still stuck; replaced once one returns`);
      return;
    }
    this.#setState('pending', `worker hung (${reason}); abandoned, starting a replacement`);
    this.#respawner.start();
  }

  /**
   * A revision task on the worker, queued behind running batches. An activation is remembered first, so a worker
   * replaced later loads the active revision even if this one dies before it answers.
   */
  async revision(task: RevisionTask): Promise<RevisionResult> {
    if (task.kind === 'activate') {
      const path = this.#candidatePaths.get(task.revision);
      const known = this.#variants.some((v) => v.model === task.model && v.variant === task.variant);
      this.#variants = this.#variants.map((v) =>
        v.model === task.model && v.variant === task.variant && path !== undefined
          ? { ...v, path, revision: task.revision }
          : v,
      );
      // A variant added while serving: a replacement worker loads it too.
      if (!known && path !== undefined)
        this.#variants.push({ model: task.model, variant: task.variant, path, revision: task.revision });
    }
    if (task.kind === 'remove')
      this.#variants = this.#variants.filter((v) => v.model !== task.model || v.variant !== task.variant);
    if (task.kind === 'load') this.#candidatePaths.set(task.revision, task.path);
    if (task.kind === 'unload') this.#candidatePaths.delete(task.revision);
    const pool = this.#pool;
    if (pool === undefined || this.#state !== 'ready')
      throw new ReplicaFault(this.id, `replica ${this.id} is ${this.#state}`);
    try {
      return (await pool.run(task)) as RevisionResult;
    } catch (err) {
      throw new ReplicaFault(this.id, `replica ${this.id} failed during ${task.kind}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#respawner.stop();
    this.#state = 'closed';
    const pool = this.#pool;
    if (pool === undefined) return;
    // Batches on the channel are not piscina's tasks: they finish before the worker is closed.
    await this.#channels.get(pool)?.idle();
    this.#dropChannel(pool, new Error('the replica closed'));
    await pool.close({ force: false });
  }
}
