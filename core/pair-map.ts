/**
 * Values under a pair of string keys, such as a model and one of its variants. The request path looks these up per
 * request or batch: nested maps find them from the two strings as they are, where one `model/variant` key would be
 * a new string, and its hash, on every lookup.
 */
export class PairMap<V> {
  readonly #outer = new Map<string, Map<string, V>>();

  get(a: string, b: string): V | undefined {
    return this.#outer.get(a)?.get(b);
  }

  set(a: string, b: string, value: V): void {
    let inner = this.#outer.get(a);
    if (inner === undefined) {
      inner = new Map();
      this.#outer.set(a, inner);
    }
    inner.set(b, value);
  }

  delete(a: string, b: string): boolean {
    const inner = this.#outer.get(a);
    if (inner === undefined || !inner.delete(b)) return false;
    if (inner.size === 0) this.#outer.delete(a);
    return true;
  }

  /** Every value, grouped by the first key, each group in insertion order. */
  *values(): IterableIterator<V> {
    for (const inner of this.#outer.values()) yield* inner.values();
  }
}
