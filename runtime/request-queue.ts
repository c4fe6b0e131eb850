// A bounded earliest-deadline-first queue: an indexed binary heap, so removing a cancelled request is O(log n).
// Order: earlier deadline first; on a tie, higher priority first; then arrival order.

export interface QueueItem {
  readonly deadlineAtMs: number;
  readonly priority: number;
  readonly seq: number;
  readonly rows: number;
  /** Heap slot; -1 when not queued. Owned by the queue. */
  heapIndex: number;
}

function before(a: QueueItem, b: QueueItem): boolean {
  if (a.deadlineAtMs !== b.deadlineAtMs) return a.deadlineAtMs < b.deadlineAtMs;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.seq < b.seq;
}

export class EdfQueue<T extends QueueItem> {
  readonly #heap: T[] = [];
  #rows = 0;

  /** Requests queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** Rows queued (a request may carry several). */
  get rows(): number {
    return this.#rows;
  }

  peek(): T | undefined {
    return this.#heap[0];
  }

  push(item: T): void {
    item.heapIndex = this.#heap.length;
    this.#heap.push(item);
    this.#rows += item.rows;
    this.#up(item.heapIndex);
  }

  shift(): T | undefined {
    const top = this.#heap[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Removes an item wherever it is; false when it was not queued. */
  remove(item: T): boolean {
    const i = item.heapIndex;
    if (i < 0 || this.#heap[i] !== item) return false;
    const last = this.#heap.pop() as T;
    this.#rows -= item.rows;
    item.heapIndex = -1;
    if (last !== item) {
      this.#heap[i] = last;
      last.heapIndex = i;
      this.#down(i);
      this.#up(last.heapIndex);
    }
    return true;
  }

  /** Items in no particular order (for inspection and draining). */
  values(): readonly T[] {
    return this.#heap;
  }

  #up(i: number): void {
    const h = this.#heap;
    const item = h[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as T;
      if (!before(item, parent)) break;
      h[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    h[i] = item;
    item.heapIndex = i;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const item = h[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r] as T, h[l] as T) ? r : l;
      const child = h[c] as T;
      if (!before(child, item)) break;
      h[i] = child;
      child.heapIndex = i;
      i = c;
    }
    h[i] = item;
    item.heapIndex = i;
  }
}
