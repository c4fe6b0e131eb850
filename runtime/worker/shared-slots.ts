// Batches in shared memory: a SharedArrayBuffer per worker holds a few slots, each carrying one batch's inputs to the
// worker and its outputs back, so a batch crosses without a structured clone or a message per direction. The layout
// and the encoding live here, shared by both threads; the wake-ups are in worker-channel.ts and shared-inbox.ts.
import type { NumericArray, TensorStorage, V2Datatype } from '../../core/types.js';
import type { RunTask, WireTensor, WorkerResult } from './messages.js';

/** Control words: the doorbell (event loop -> worker), the reply bell (worker -> event loop), then a state per slot. */
export const DOORBELL = 0;
export const REPLY_BELL = 1;
const STATE_BASE = 2;

/** A slot's state word. Only its owner of the moment writes it: the event loop in FREE and DONE, the worker between. */
export const FREE = 0;
/** Written by the event loop: the batch waits for the worker. */
export const REQUEST = 1;
/** Taken by the worker: running. */
export const TAKEN = 2;
/** Written by the worker: the answer waits in the slot. */
export const DONE = 3;
/** The worker answered on the port instead (the answer did not fit the slot); the event loop frees the slot. */
export const ON_PORT = 4;

/** Each slot: [id: i32][metadata bytes: i32][payload bytes: i32][pad: i32], the JSON metadata, then the payload. */
const SLOT_HEADER_BYTES = 16;
const ALIGN = 8;

export interface SlotLayout {
  readonly slots: number;
  readonly slotBytes: number;
}

export const DEFAULT_LAYOUT: SlotLayout = { slots: 4, slotBytes: 512 * 1024 };

function controlBytes(slots: number): number {
  return align((STATE_BASE + slots) * 4);
}

export function align(n: number): number {
  return (n + ALIGN - 1) & ~(ALIGN - 1);
}

export function createSlotMemory(layout: SlotLayout = DEFAULT_LAYOUT): SharedArrayBuffer {
  return new SharedArrayBuffer(controlBytes(layout.slots) + layout.slots * layout.slotBytes);
}

/** Both threads' views of one slot memory. */
export class SlotMemory {
  readonly control: Int32Array;
  readonly slots: number;
  readonly slotBytes: number;
  readonly #bytes: Buffer;
  readonly #words: Int32Array;
  readonly #base: number;

  constructor(sab: SharedArrayBuffer, layout: SlotLayout = DEFAULT_LAYOUT) {
    this.slots = layout.slots;
    this.slotBytes = layout.slotBytes;
    this.#base = controlBytes(layout.slots);
    this.control = new Int32Array(sab, 0, STATE_BASE + layout.slots);
    this.#bytes = Buffer.from(sab);
    this.#words = new Int32Array(sab);
  }

  stateIndex(slot: number): number {
    return STATE_BASE + slot;
  }

  state(slot: number): number {
    return Atomics.load(this.control, STATE_BASE + slot);
  }

  setState(slot: number, state: number): void {
    Atomics.store(this.control, STATE_BASE + slot, state);
  }

  /** Moves a slot from one state to another; false when it was not in `from`. */
  claim(slot: number, from: number, to: number): boolean {
    return Atomics.compareExchange(this.control, STATE_BASE + slot, from, to) === from;
  }

  /** Rings a bell: bumps its word and wakes whoever waits on it. */
  ring(bell: number): void {
    Atomics.add(this.control, bell, 1);
    Atomics.notify(this.control, bell);
  }

  /**
   * Writes a message (JSON metadata and raw tensor bytes) into a slot; false when it does not fit (the caller uses the
   * port). `parts` are the byte ranges of each tensor, in order, each tensor starting 8-byte aligned.
   */
  write(slot: number, id: number, meta: unknown, tensors: readonly (readonly Uint8Array[])[]): boolean {
    const start = this.#base + slot * this.slotBytes;
    const json = JSON.stringify(meta);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const metaRoom = json.length * 3;
    let payload = 0;
    for (const parts of tensors) {
      payload = align(payload);
      for (const p of parts) payload += p.byteLength;
    }
    const payloadAt = align(SLOT_HEADER_BYTES + metaRoom);
    if (payloadAt + payload > this.slotBytes) return false;
    const metaBytes = this.#bytes.write(json, start + SLOT_HEADER_BYTES, 'utf8');
    let at = start + payloadAt;
    for (const parts of tensors) {
      at = start + payloadAt + align(at - start - payloadAt);
      for (const p of parts) {
        this.#bytes.set(p, at);
        at += p.byteLength;
      }
    }
    const w = start >> 2;
    this.#words[w] = id;
    this.#words[w + 1] = metaBytes;
    this.#words[w + 2] = payloadAt;
    return true;
  }

  /** The id, metadata and payload (a view into shared memory: copy before the slot is reused) of a slot. */
  read(slot: number): { id: number; meta: unknown; payload: Uint8Array } {
    const start = this.#base + slot * this.slotBytes;
    const w = start >> 2;
    const id = this.#words[w] as number;
    const metaBytes = this.#words[w + 1] as number;
    const payloadAt = this.#words[w + 2] as number;
    const meta: unknown = JSON.parse(
      this.#bytes.toString('utf8', start + SLOT_HEADER_BYTES, start + SLOT_HEADER_BYTES + metaBytes),
    );
    const payload = this.#bytes.subarray(start + payloadAt, start + this.slotBytes);
    return { id, meta, payload };
  }
}

/** Where a tensor's bytes sit in a slot's payload. */
interface TensorMeta {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  at: number;
  bytes: number;
}

interface RequestMeta {
  model: string;
  variant: string;
  outputs?: string[];
  revision?: string;
  inputs: TensorMeta[];
}

type ReplyMeta =
  | { ok: true; inferMs: number; workerMs: number; outputs: TensorMeta[] }
  | Extract<WorkerResult, { ok: false }>;

/** Byte ranges of numeric storage; undefined for BYTES (arrays of strings travel on the port). */
export function storageBytes(data: TensorStorage): Uint8Array | undefined {
  if (Array.isArray(data)) return undefined;
  const d = data as NumericArray;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Lays out tensors' bytes as write() does; undefined when one is not numeric. */
function layout(tensors: readonly { name: string; datatype: V2Datatype; shape: readonly number[] }[], sizes: number[]) {
  const metas: TensorMeta[] = [];
  let at = 0;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i] as (typeof tensors)[number];
    at = align(at);
    metas.push({ name: t.name, datatype: t.datatype, shape: [...t.shape], at, bytes: sizes[i] as number });
    at += sizes[i] as number;
  }
  return metas;
}

/**
 * Writes a batch into a slot. `parts[i]` are the byte ranges of input i in row order (one range, or one per request
 * when the rows are not stacked yet). False when an input is BYTES or the batch does not fit.
 */
export function writeRequest(
  mem: SlotMemory,
  slot: number,
  id: number,
  task: RunTask,
  parts: readonly (readonly Uint8Array[])[],
): boolean {
  const sizes = parts.map((ps) => ps.reduce((n, p) => n + p.byteLength, 0));
  const meta: RequestMeta = { model: task.model, variant: task.variant, inputs: layout(task.inputs, sizes) };
  if (task.outputs !== undefined) meta.outputs = task.outputs;
  if (task.revision !== undefined) meta.revision = task.revision;
  return mem.write(slot, id, meta, parts);
}

/** A view of `bytes` as `dt`'s typed array (bytes must be aligned to the element size). */
export function typedView(dt: V2Datatype, buffer: ArrayBufferLike, byteOffset: number, bytes: number): NumericArray {
  switch (dt) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(buffer, byteOffset, bytes);
    case 'INT8':
      return new Int8Array(buffer, byteOffset, bytes);
    case 'UINT16':
    case 'FP16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, bytes / 2);
    case 'INT16':
      return new Int16Array(buffer, byteOffset, bytes / 2);
    case 'UINT32':
      return new Uint32Array(buffer, byteOffset, bytes / 4);
    case 'INT32':
      return new Int32Array(buffer, byteOffset, bytes / 4);
    case 'UINT64':
      return new BigUint64Array(buffer, byteOffset, bytes / 8);
    case 'INT64':
      return new BigInt64Array(buffer, byteOffset, bytes / 8);
    case 'FP32':
      return new Float32Array(buffer, byteOffset, bytes / 4);
    case 'FP64':
      return new Float64Array(buffer, byteOffset, bytes / 8);
    case 'BYTES':
      throw new Error('BYTES has no typed view');
  }
}

/**
 * Copies a slot's tensors out of shared memory into `into` (grown when short; onnxruntime-node reads no shared memory,
 * and the slot is reused as soon as it is freed) and returns them with the metadata. `into` may be kept for reuse.
 */
function copyTensors(metas: readonly TensorMeta[], payload: Uint8Array, into: Uint8Array): WireTensor[] {
  let end = 0;
  for (const m of metas) end = Math.max(end, m.at + m.bytes);
  into.set(payload.subarray(0, end), 0);
  return metas.map((m) => ({
    name: m.name,
    datatype: m.datatype,
    shape: m.shape,
    data: typedView(m.datatype, into.buffer, into.byteOffset + m.at, m.bytes),
  }));
}

function payloadEnd(metas: readonly TensorMeta[]): number {
  let end = 0;
  for (const m of metas) end = Math.max(end, m.at + m.bytes);
  return end;
}

/** Worker side: the batch in a slot, its inputs copied into `scratch` (grown and returned when too small). */
export function readRequest(
  mem: SlotMemory,
  slot: number,
  scratch: Uint8Array,
): { id: number; task: RunTask; scratch: Uint8Array } {
  const { id, meta, payload } = mem.read(slot);
  const m = meta as RequestMeta;
  const need = payloadEnd(m.inputs);
  const room = scratch.byteLength >= need ? scratch : new Uint8Array(Math.max(need, scratch.byteLength * 2));
  const task: RunTask = {
    kind: 'run',
    model: m.model,
    variant: m.variant,
    inputs: copyTensors(m.inputs, payload, room),
  };
  if (m.outputs !== undefined) task.outputs = m.outputs;
  if (m.revision !== undefined) task.revision = m.revision;
  return { id, task, scratch: room };
}

/** Worker side: writes a run's answer into its slot; false when it does not fit (BYTES outputs, too large). */
export function writeReply(mem: SlotMemory, slot: number, id: number, result: WorkerResult): boolean {
  if (!result.ok) return mem.write(slot, id, result satisfies ReplyMeta, []);
  if (result.kind !== 'run') return false;
  const parts: Uint8Array[][] = [];
  for (const o of result.outputs) {
    const b = storageBytes(o.data);
    if (b === undefined) return false;
    parts.push([b]);
  }
  const meta: ReplyMeta = {
    ok: true,
    inferMs: result.inferMs,
    workerMs: result.workerMs,
    outputs: layout(
      result.outputs,
      parts.map((p) => (p[0] as Uint8Array).byteLength),
    ),
  };
  return mem.write(slot, id, meta, parts);
}

/** Event loop side: a slot's answer, its outputs copied out of shared memory (one allocation for all of them). */
export function readReply(mem: SlotMemory, slot: number): { id: number; result: WorkerResult } {
  const { id, meta, payload } = mem.read(slot);
  const m = meta as ReplyMeta;
  if (!m.ok) return { id, result: m };
  // Node's pool hands out 8-byte aligned slices: every typed view below stays aligned.
  const out = Buffer.allocUnsafe(payloadEnd(m.outputs));
  const outputs = copyTensors(m.outputs, payload, out);
  return { id, result: { ok: true, kind: 'run', outputs, inferMs: m.inferMs, workerMs: m.workerMs } };
}
