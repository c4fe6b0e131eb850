// A replica runs batches: a local worker thread (piscina with exactly one thread, which piscina replaces when it
// dies) or, in remote-replica.ts, another slogate runtime node. Replica faults are told apart from request faults
// so the pool retries only what another replica could answer.
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import { SlogateError } from '../core/errors.js';
import type { DescribeResult, RunTask, WireTensor, WorkerInit, WorkerResult } from './worker/messages.js';

export type ReplicaState = 'pending' | 'ready' | 'down' | 'closed';

export interface BatchTask {
  readonly model: string;
  readonly variant: string;
  readonly inputs: WireTensor[];
  readonly outputs?: string[] | undefined;
  readonly rows: number;
  /** The input buffers belong to this task alone and may be moved to the worker (never true for data a retry needs). */
  readonly transfer: boolean;
}

export interface BatchOutcome {
  readonly outputs: WireTensor[];
  /** Time the model itself ran (inside the worker, or as reported by the remote node). */
  readonly inferMs: number;
  /** How long the replica itself was busy with the batch (excludes the hop to it and back). */
  readonly workerMs: number;
  readonly replicaId: string;
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
  close(): Promise<void>;
}

const WORKER_URL = new URL('./worker/ort-worker.js', import.meta.url);

export class LocalReplica implements Replica {
  readonly kind = 'local' as const;
  readonly slots = 1;
  readonly events = new EventEmitter<ReplicaEvents>();
  readonly #init: WorkerInit;
  #pool: Piscina | undefined;
  #state: ReplicaState = 'pending';
  #outstanding = 0;
  #provider = 'cpu';
  #closing = false;

  constructor(init: WorkerInit) {
    this.#init = init;
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

  /** The live worker thread (tests kill it to check self-healing). */
  get worker(): { terminate(): Promise<number> } | undefined {
    return this.#pool?.threads[0];
  }

  async start(): Promise<DescribeResult> {
    const pool = new Piscina({
      filename: WORKER_URL.href,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      workerData: this.#init,
      name: 'default',
    });
    this.#pool = pool;
    pool.on('error', () => {
      // Errors are delivered to the task that was running; an idle crash shows up as workerDestroy.
    });
    pool.on('workerDestroy', () => {
      if (this.#closing) return;
      this.#setState('pending', 'worker exited; piscina is starting a replacement');
      this.events.emit('restart', 'worker exited');
      // Not from inside piscina's own teardown (it is still removing the dead worker): on the next turn.
      setImmediate(() => void this.#confirmReady());
    });
    const desc = await this.#describe();
    this.#setState('ready', 'models loaded');
    return desc;
  }

  async #describe(): Promise<DescribeResult> {
    const pool = this.#pool as Piscina;
    const r = (await pool.run({ kind: 'describe' })) as WorkerResult;
    if (!r.ok) throw SlogateError.fromData(r.error);
    if (r.kind !== 'describe') throw new Error('unexpected worker reply to describe');
    this.#provider = r.provider;
    return r;
  }

  /** Waits for the replacement worker to load the models (retrying a few times), then rejoins the pool. */
  async #confirmReady(attempt = 1): Promise<void> {
    if (this.#closing) return;
    try {
      await this.#describe();
      if (!this.#closing) this.#setState('ready', 'replacement worker loaded');
    } catch (err) {
      if (this.#closing) return;
      if (attempt >= 5) {
        this.#setState('down', `replacement worker failed: ${(err as Error).message}`);
        return;
      }
      setTimeout(() => void this.#confirmReady(attempt + 1), 200 * attempt).unref();
    }
  }

  #setState(state: ReplicaState, reason: string): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.events.emit('state', state, reason);
  }

  async run(task: BatchTask): Promise<BatchOutcome> {
    const pool = this.#pool;
    if (pool === undefined || this.#state !== 'ready')
      throw new ReplicaFault(this.id, `replica ${this.id} is ${this.#state}`);
    const msg: RunTask = { kind: 'run', model: task.model, variant: task.variant, inputs: task.inputs };
    if (task.outputs !== undefined) msg.outputs = task.outputs;
    const transferList: ArrayBuffer[] = [];
    for (const t of task.transfer ? task.inputs : []) {
      if (!Array.isArray(t.data)) {
        const d = t.data as Float32Array;
        if (
          d.byteOffset === 0 &&
          d.byteLength === d.buffer.byteLength &&
          d.buffer instanceof ArrayBuffer &&
          !transferList.includes(d.buffer)
        )
          transferList.push(d.buffer);
      }
    }
    this.#outstanding++;
    let r: WorkerResult;
    try {
      r = (await pool.run(msg, { transferList })) as WorkerResult;
    } catch (err) {
      throw new ReplicaFault(this.id, `replica ${this.id} failed while running a batch: ${(err as Error).message}`);
    } finally {
      this.#outstanding--;
    }
    if (!r.ok) throw SlogateError.fromData(r.error);
    if (r.kind !== 'run') throw new Error('unexpected worker reply to run');
    return { outputs: r.outputs, inferMs: r.inferMs, workerMs: r.workerMs, replicaId: this.id };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#state = 'closed';
    await this.#pool?.close({ force: false });
  }
}
