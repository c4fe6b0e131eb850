// A direct line to one worker for its batches: a MessagePort of its own, beside piscina's. Piscina keeps the worker's
// lifecycle (start, replacement, describe and revision tasks); batches skip its per-task bookkeeping and the extra
// wake-up of its atomics, which cost more than a small model's batch.
import type { MessagePort } from 'node:worker_threads';
import type { ChannelReply, ChannelRequest, RunTask, WorkerResult } from './worker/messages.js';

interface Waiter {
  readonly resolve: (r: WorkerResult) => void;
  readonly reject: (e: Error) => void;
}

export class WorkerChannel {
  readonly #port: MessagePort;
  readonly #pending = new Map<number, Waiter>();
  #next = 0;
  #failure: Error | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(port: MessagePort) {
    this.#port = port;
    port.on('message', (m: ChannelReply) => this.#reply(m));
    port.on('close', () => this.fail(new Error('the worker channel closed')));
    // Only a batch under way keeps the process alive (as piscina does for its tasks).
    port.unref();
  }

  /** True once the worker is gone (fail() or its end of the port closed). */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  get pending(): number {
    return this.#pending.size;
  }

  run(task: RunTask, transferList: readonly ArrayBuffer[]): Promise<WorkerResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise<WorkerResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#port.ref();
      try {
        this.#port.postMessage({ id, task } satisfies ChannelRequest, transferList as ArrayBuffer[]);
      } catch (err) {
        this.#settle(id)?.reject(err as Error);
      }
    });
  }

  /** The worker is gone: every batch still waiting on it fails, and so does every later one. */
  fail(err: Error): void {
    this.#failure ??= err;
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(err);
  }

  /** Resolves once no batch is under way. */
  idle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    this.fail(new Error('the worker channel closed'));
    this.#port.close();
  }

  #reply(m: ChannelReply): void {
    this.#settle(m.id)?.resolve(m.result);
  }

  #settle(id: number): Waiter | undefined {
    const w = this.#pending.get(id);
    if (w === undefined) return undefined;
    this.#pending.delete(id);
    if (this.#pending.size === 0) {
      this.#port.unref();
      const ws = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of ws) resolve();
    }
    return w;
  }
}
