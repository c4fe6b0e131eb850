// The worker's side of the shared slots (shared-slots.ts): it waits on the doorbell without blocking its event loop
// (Atomics.waitAsync: session.run completes on the event loop, and piscina's revision tasks arrive there too), takes
// every batch waiting in a slot, runs it and answers in the slot, or on the port when the answer does not fit.
import type { MessagePort } from 'node:worker_threads';
import type { ChannelReply, RunTask, WorkerResult } from './messages.js';
import {
  DONE,
  DOORBELL,
  ON_PORT,
  REPLY_BELL,
  REQUEST,
  readRequest,
  type SlotMemory,
  TAKEN,
  writeReply,
} from './shared-slots.js';
import { waitAsync } from './wait-async.js';

export function openInbox(mem: SlotMemory, port: MessagePort, run: (task: RunTask) => Promise<WorkerResult>): void {
  const scratch: Uint8Array[] = Array.from({ length: mem.slots }, () => new Uint8Array(0));
  const take = (slot: number): void => {
    let id: number;
    let task: RunTask;
    try {
      const r = readRequest(mem, slot, scratch[slot] as Uint8Array);
      scratch[slot] = r.scratch;
      id = r.id;
      task = r.task;
    } catch (err) {
      // A slot this worker cannot read: nothing to answer it with; the batch's timeout applies.
      process.emitWarning(`slogate worker: unreadable batch slot ${slot}: ${(err as Error).message}`);
      return;
    }
    void run(task).then((result) => answer(slot, id, result));
  };
  const answer = (slot: number, id: number, result: WorkerResult): void => {
    if (writeReply(mem, slot, id, result)) {
      mem.setState(slot, DONE);
    } else {
      port.postMessage({ id, result } satisfies ChannelReply);
      mem.setState(slot, ON_PORT);
    }
    mem.ring(REPLY_BELL);
  };
  const drain = (): void => {
    for (;;) {
      const seen = Atomics.load(mem.control, DOORBELL);
      for (let s = 0; s < mem.slots; s++) if (mem.claim(s, REQUEST, TAKEN)) take(s);
      const w = waitAsync(mem.control, DOORBELL, seen);
      if (w.async) {
        void w.value.then(drain);
        return;
      }
    }
  };
  drain();
}
