// An optional per-route response cache: identical inputs to the same variant revision (file sha256) answered from
// an LRU with a TTL, without running the model. Keys hash the tensor bytes; values are private copies of outputs.
// Bounded by entries and by bytes; expired entries are swept a few at a time on every access (no timer to leak when
// an admin change replaces the cache).
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Tensor } from '../core/types.js';
import { binaryData } from './tensor.js';

/** Key of one request: variant revision, requested outputs, and every input's name, type, shape and bytes. */
export function cacheKey(
  variantSha256: string,
  inputs: readonly Tensor[],
  outputs: readonly string[] | undefined,
): string {
  const h = createHash('sha256');
  h.update(variantSha256);
  h.update(outputs === undefined ? '*' : outputs.join('\u0000'));
  for (const t of inputs) {
    h.update(`\u0001${t.name}\u0002${t.datatype}\u0002${t.shape.join(',')}\u0002`);
    h.update(binaryData(t.datatype, t.data));
  }
  return h.digest('base64');
}

/** Estimated heap cost of one entry besides its tensor bytes: the key, the Map slot, the entry and outputs arrays. */
export const ENTRY_OVERHEAD_BYTES = 256;
/** Estimated heap cost of one output tensor besides its data: the object, its shape and its typed-array header. */
export const TENSOR_OVERHEAD_BYTES = 160;
/** Entries examined for expiry on every get and set: the whole cache is swept once per size/2 accesses. */
const SWEEP_STEP = 2;

function copyTensor(t: Tensor): Tensor {
  const data = Array.isArray(t.data) ? t.data.map((b) => b.slice()) : (t.data as Float32Array).slice();
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], data };
}

/** What an entry holding these outputs costs, as the byte bound counts it. */
export function entryBytes(key: string, outputs: readonly Tensor[]): number {
  let bytes = ENTRY_OVERHEAD_BYTES + key.length * 2;
  for (const t of outputs) {
    bytes += TENSOR_OVERHEAD_BYTES + t.shape.length * 8;
    if (Array.isArray(t.data)) for (const b of t.data) bytes += b.byteLength + TENSOR_OVERHEAD_BYTES;
    else bytes += (t.data as Float32Array).byteLength;
  }
  return bytes;
}

interface Entry {
  readonly outputs: readonly Tensor[];
  readonly expiresAtMs: number;
  readonly bytes: number;
}

export interface ResponseCacheLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly ttlMs: number;
}

export class ResponseCache {
  readonly #entries = new Map<string, Entry>();
  readonly #limits: ResponseCacheLimits;
  readonly #clock: Clock;
  #bytes = 0;
  /** Where the amortised sweep goes on; a Map iterator stays valid across deletions and insertions. */
  #sweep: Iterator<[string, Entry]> | undefined;
  hits = 0;
  misses = 0;
  /** Entries removed because they expired (swept or found stale). */
  expired = 0;
  /** Entries removed (or refused) to stay within maxEntries and maxBytes. */
  evicted = 0;

  constructor(limits: ResponseCacheLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Bytes held, as estimated by entryBytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The cached outputs (fresh copies), or undefined. A hit moves the entry to the most recently used end. */
  get(key: string): Tensor[] | undefined {
    const now = this.#clock.now();
    this.#sweepSome(now);
    const e = this.#entries.get(key);
    if (e === undefined || e.expiresAtMs <= now) {
      if (e !== undefined) this.#remove(key, e, 'expired');
      this.misses++;
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    this.hits++;
    return e.outputs.map(copyTensor);
  }

  set(key: string, outputs: readonly Tensor[]): void {
    const now = this.#clock.now();
    this.#sweepSome(now);
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(key, old, undefined);
    const bytes = entryBytes(key, outputs);
    if (bytes > this.#limits.maxBytes) {
      this.evicted++;
      return;
    }
    this.#entries.set(key, { outputs: outputs.map(copyTensor), expiresAtMs: now + this.#limits.ttlMs, bytes });
    this.#bytes += bytes;
    while (this.#entries.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#remove(oldestKey, oldest, 'evicted');
    }
  }

  #remove(key: string, e: Entry, why: 'expired' | 'evicted' | undefined): void {
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
    if (why !== undefined) this[why]++;
  }

  /** Looks at the next few entries in turn and drops the expired ones, so stale answers do not hold memory. */
  #sweepSome(now: number): void {
    for (let i = 0; i < SWEEP_STEP; i++) {
      if (this.#sweep === undefined) {
        if (this.#entries.size === 0) return;
        this.#sweep = this.#entries.entries();
      }
      const next = this.#sweep.next();
      if (next.done === true) {
        this.#sweep = undefined;
        continue;
      }
      const [key, e] = next.value;
      if (e.expiresAtMs <= now && this.#entries.get(key) === e) this.#remove(key, e, 'expired');
    }
  }
}
