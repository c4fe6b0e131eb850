// A replica for unit tests of the scheduling logic: it records each batch and finishes it only when the test
// says so. (The real replicas are exercised by the integration and e2e tests.)
import { EventEmitter } from 'node:events';
import { SlogateError } from '../../../core/errors.js';
import type { BatchOutcome, BatchTask, Replica, ReplicaEvents, ReplicaState } from '../../../runtime/replica.js';
import { ReplicaFault } from '../../../runtime/replica.js';
import type { DescribeResult } from '../../../runtime/worker/messages.js';

export interface RunningBatch {
  readonly task: BatchTask;
  /** Echoes each input row's first element as a [rows, 1] FP32 output named `out`; `inline`: as a main-thread run. */
  finish(inferMs?: number, inline?: boolean): void;
  fault(message?: string): void;
  failRequest(message?: string): void;
}

export class FakeReplica implements Replica {
  readonly kind = 'local' as const;
  readonly events = new EventEmitter<ReplicaEvents>();
  readonly provider = 'fake';
  readonly running: RunningBatch[] = [];
  readonly history: BatchTask[] = [];
  /** Reasons given to timedOut(), in order. */
  readonly timeouts: string[] = [];
  /** What timedOut() makes of it (a local worker is replaced: pending; a remote node: suspect). */
  stateAfterTimeout: ReplicaState = 'pending';
  stuckSinceMs: number | undefined;
  /** What runNow does with a batch: run it as an inline run would (the echo, 0.05 ms), fail it, or leave it to run(). */
  inline: 'run' | 'fail' | 'leave' = 'leave';
  /** Every task runNow was offered, in order. */
  readonly offeredNow: BatchTask[] = [];
  #state: ReplicaState = 'ready';
  #outstanding = 0;

  constructor(
    readonly id: string,
    readonly slots = 1,
  ) {}

  get state(): ReplicaState {
    return this.#state;
  }
  get outstanding(): number {
    return this.#outstanding;
  }

  setState(s: ReplicaState): void {
    this.#state = s;
    this.events.emit('state', s, 'test');
  }

  async start(): Promise<DescribeResult> {
    return { ok: true, kind: 'describe', provider: 'fake', sessions: [] };
  }

  run(task: BatchTask): Promise<BatchOutcome> {
    if (this.#state !== 'ready') return Promise.reject(new ReplicaFault(this.id, 'not ready'));
    this.#outstanding++;
    this.history.push(task);
    return new Promise<BatchOutcome>((resolve, reject) => {
      const done = () => {
        this.#outstanding--;
        this.running.splice(this.running.indexOf(rb), 1);
      };
      const rb: RunningBatch = {
        task,
        finish: (inferMs = 1, inline = false) => {
          done();
          resolve(echo(task, this.id, inferMs, inline));
        },
        fault: (message = 'worker crashed') => {
          done();
          reject(new ReplicaFault(this.id, message));
        },
        failRequest: (message = 'bad input') => {
          done();
          reject(new SlogateError('SLOGATE_ERR_INFERENCE_FAILED', message));
        },
      };
      this.running.push(rb);
    });
  }

  runNow(task: BatchTask): BatchOutcome | undefined {
    this.offeredNow.push(task);
    if (this.inline === 'leave' || this.#state !== 'ready') return undefined;
    if (this.inline === 'fail') throw new SlogateError('SLOGATE_ERR_INFERENCE_FAILED', 'bad input');
    this.history.push(task);
    return echo(task, this.id, 0.05, true);
  }

  timedOut(reason: string): void {
    this.timeouts.push(reason);
    this.setState(this.stateAfterTimeout);
  }

  async close(): Promise<void> {
    this.#state = 'closed';
  }
}

/** Each input row's first element, as a [rows, 1] FP32 output named `out`. */
function echo(task: BatchTask, replicaId: string, inferMs: number, inline: boolean): BatchOutcome {
  const input = task.inputs[0];
  const rowElems = input === undefined ? 1 : input.shape.slice(1).reduce((a, b) => a * b, 1);
  const src = (input?.data ?? new Float32Array(task.rows)) as Float32Array;
  const out = new Float32Array(task.rows);
  for (let r = 0; r < task.rows; r++) out[r] = src[r * rowElems] as number;
  return {
    outputs: [{ name: 'out', datatype: 'FP32', shape: [task.rows, 1], data: out }],
    inferMs,
    workerMs: inferMs,
    replicaId,
    ...(inline ? { inline: true as const } : {}),
  };
}

/** Lets pending promise callbacks run (no timers involved). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
