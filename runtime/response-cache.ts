// An optional per-route response cache: identical inputs to the same variant revision (file sha256) answered from
// an LRU with a TTL, without running the model. Keys hash the tensor bytes; values are private copies of outputs.
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
  const h = createHash('sha1');
  h.update(variantSha256);
  h.update(outputs === undefined ? '*' : outputs.join('\u0000'));
  for (const t of inputs) {
    h.update(`\u0001${t.name}\u0002${t.datatype}\u0002${t.shape.join(',')}\u0002`);
    h.update(binaryData(t.datatype, t.data));
  }
  return h.digest('base64');
}

function copyTensor(t: Tensor): Tensor {
  const data = Array.isArray(t.data) ? t.data.map((b) => b.slice()) : (t.data as Float32Array).slice();
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], data };
}

interface Entry {
  readonly outputs: readonly Tensor[];
  readonly expiresAtMs: number;
}

export class ResponseCache {
  readonly #entries = new Map<string, Entry>();
  hits = 0;
  misses = 0;

  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The cached outputs (fresh copies), or undefined. A hit moves the entry to the most recently used end. */
  get(key: string): Tensor[] | undefined {
    const e = this.#entries.get(key);
    if (e === undefined || e.expiresAtMs <= this.clock.now()) {
      if (e !== undefined) this.#entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    this.hits++;
    return e.outputs.map(copyTensor);
  }

  set(key: string, outputs: readonly Tensor[]): void {
    this.#entries.delete(key);
    this.#entries.set(key, { outputs: outputs.map(copyTensor), expiresAtMs: this.clock.now() + this.ttlMs });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }
}
