// A direct line to one worker for its batches: a MessagePort of its own, beside piscina's. Piscina keeps the worker's
// lifecycle (start, replacement, describe and revision tasks); batches skip its per-task bookkeeping and the extra
// wake-up of its atomics, which cost more than a small model's batch. With slot memory, a batch that fits a free slot
// crosses in shared memory instead (worker/shared-slots.ts): no structured clone, no fresh buffer per batch.
import type { MessagePort } from 'node:worker_threads';
import type { TensorStorage } from '../core/types.js';
import type { ChannelReply, ChannelRequest, RunTask, WorkerResult } from './worker/messages.js';
import {
  DONE,
  DOORBELL,
  FREE,
  ON_PORT,
  REPLY_BELL,
  REQUEST,
  readReply,
  type SlotMemory,
  storageBytes,
  writeRequest,
} from './worker/shared-slots.js';
import { waitAsync } from './worker/wait-async.js';

/** A batch for the channel, in the forms each way of handing it over needs. */
export interface ChannelBatch {
  /** The batch with its inputs stacked, as the port carries it (built only when the port is taken). */
  readonly stacked: () => { readonly task: RunTask; readonly transferList: readonly ArrayBuffer[] };
  /**
   * The same batch for a slot, rows not stacked yet: `task` gives the inputs' names, types and shapes (their data is
   * not read), `parts[i]` input i's storage in row order. Absent: the slot takes the stacked inputs.
   */
  readonly unstacked?: { readonly task: RunTask; readonly parts: readonly (readonly TensorStorage[])[] } | undefined;
}

function unstack(task: RunTask): { task: RunTask; parts: TensorStorage[][] } {
  return { task, parts: task.inputs.map((t) => [t.data]) };
}

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
  readonly #mem: SlotMemory | undefined;
  /** The batch id in each slot the event loop has handed over (undefined: the slot is free). */
  readonly #slotIds: (number | undefined)[];
  #busySlots = 0;
  #listening = false;

  constructor(port: MessagePort, mem?: SlotMemory) {
    this.#port = port;
    this.#mem = mem;
    this.#slotIds = new Array<number | undefined>(mem?.slots ?? 0).fill(undefined);
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

  run(batch: ChannelBatch): Promise<WorkerResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise<WorkerResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#port.ref();
      try {
        if (this.#toSlot(id, batch)) this.handedOver.slots++;
        else {
          const { task, transferList } = batch.stacked();
          this.#port.postMessage({ id, task } satisfies ChannelRequest, transferList as ArrayBuffer[]);
          this.handedOver.port++;
        }
      } catch (err) {
        this.#settle(id)?.reject(err as Error);
      }
    });
  }

  /** Batches handed over so far: in a slot, and on the port. */
  readonly handedOver = { slots: 0, port: 0 };

  /** Slots holding a batch now (tests). */
  get busySlots(): number {
    return this.#busySlots;
  }

  /** Hands the batch over in a free slot; false when there is none or the batch does not fit one. */
  #toSlot(id: number, batch: ChannelBatch): boolean {
    const mem = this.#mem;
    if (mem === undefined || this.#busySlots === mem.slots) return false;
    const slot = this.#slotIds.indexOf(undefined);
    const { task, parts } = batch.unstacked ?? unstack(batch.stacked().task);
    const ranges: Uint8Array[][] = [];
    for (const ps of parts) {
      const rs: Uint8Array[] = [];
      for (const p of ps) {
        const b = storageBytes(p);
        if (b === undefined) return false;
        rs.push(b);
      }
      ranges.push(rs);
    }
    if (!writeRequest(mem, slot, id, task, ranges)) return false;
    this.#slotIds[slot] = id;
    this.#busySlots++;
    mem.setState(slot, REQUEST);
    mem.ring(DOORBELL);
    this.#listen();
    return true;
  }

  /** Waits on the reply bell while a slot is busy (a pending wait keeps nothing alive; the port's ref does). */
  #listen(): void {
    const mem = this.#mem;
    if (mem === undefined || this.#listening) return;
    this.#listening = true;
    const drain = (): void => {
      for (;;) {
        if (this.#busySlots === 0 || this.#failure !== undefined) {
          this.#listening = false;
          return;
        }
        const seen = Atomics.load(mem.control, REPLY_BELL);
        this.#collect(mem);
        if (this.#busySlots === 0) continue;
        const w = waitAsync(mem.control, REPLY_BELL, seen);
        if (w.async) {
          void w.value.then(drain);
          return;
        }
      }
    };
    drain();
  }

  /** Settles every batch whose answer waits in its slot, and frees the slots answered on the port. */
  #collect(mem: SlotMemory): void {
    for (let slot = 0; slot < this.#slotIds.length; slot++) {
      const id = this.#slotIds[slot];
      if (id === undefined) continue;
      const state = mem.state(slot);
      if (state !== DONE && state !== ON_PORT) continue;
      let reply: { id: number; result: WorkerResult } | Error | undefined;
      if (state === DONE)
        try {
          reply = readReply(mem, slot);
        } catch (err) {
          reply = err as Error;
        }
      this.#slotIds[slot] = undefined;
      this.#busySlots--;
      mem.setState(slot, FREE);
      if (reply instanceof Error) this.#settle(id)?.reject(reply);
      else if (reply !== undefined) this.#settle(id)?.resolve(reply.result);
    }
    this.#maybeIdle();
  }

  /** The worker is gone: every batch still waiting on it fails, and so does every later one. */
  fail(err: Error): void {
    this.#failure ??= err;
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(err);
    this.#maybeIdle();
  }

  /** Resolves once no batch is under way. */
  idle(): Promise<void> {
    if (this.#pending.size === 0 && (this.#busySlots === 0 || this.#failure !== undefined)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    this.fail(new Error('the worker channel closed'));
    this.#port.close();
    // Releases this side's wait on the reply bell: it sees the failure and stops.
    if (this.#mem !== undefined) Atomics.notify(this.#mem.control, REPLY_BELL);
  }

  #reply(m: ChannelReply): void {
    this.#settle(m.id)?.resolve(m.result);
  }

  #settle(id: number): Waiter | undefined {
    const w = this.#pending.get(id);
    if (w === undefined) return undefined;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#port.unref();
    this.#maybeIdle();
    return w;
  }

  /** Idle: no batch waits for an answer and no slot is held (an answer on the port frees its slot a little later). */
  #maybeIdle(): void {
    if (this.#pending.size > 0 || (this.#busySlots > 0 && this.#failure === undefined)) return;
    const ws = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of ws) resolve();
  }
}
