// Per-request metric updates as plain additions to a cell kept per label set, merged into their prom-client metric
// when it is read (its collect hook runs on every scrape and get()): the request path then does no label hashing,
// label validation or allocation, which prom-client does on every labels() and observe() call.
import { createRequire } from 'node:module';
import type { Counter, Histogram } from 'prom-client';

/** prom-client's own label hash: the key of its per-label-set values (lib/util.js, not re-exported by its index). */
const { hashObject } = createRequire(import.meta.url)('prom-client/lib/util.js') as {
  hashObject(labels: Record<string, string>, labelNames?: readonly string[]): string;
};

type Labels<L extends string> = Readonly<Record<L, string>>;

/** A label set's key: its values in their order (callers pass the labels in one order per metric). */
function keyOf(labels: Readonly<Record<string, string>>): string {
  let key = '';
  for (const name in labels) key += `${labels[name]}\u0000`;
  return key;
}

export class CounterCell {
  n = 0;
  constructor(readonly labels: Record<string, string>) {}

  inc(by = 1): void {
    this.n += by;
  }
}

/** A counter's pending increments, by label set. */
export class CounterCells<L extends string> {
  readonly #counter: Counter<L>;
  readonly #cells = new Map<string, CounterCell>();

  constructor(counter: Counter<L>) {
    this.#counter = counter;
  }

  /** The cell of one label set: look it up once and keep it. */
  cell(labels: Labels<L>): CounterCell {
    const key = keyOf(labels);
    let c = this.#cells.get(key);
    if (c === undefined) {
      c = new CounterCell({ ...labels });
      this.#cells.set(key, c);
    }
    return c;
  }

  /** Adds what the cells hold to the counter (its collect hook). */
  flush(): void {
    for (const c of this.#cells.values()) {
      if (c.n === 0) continue;
      this.#counter.inc(c.labels as Partial<Record<L, string>>, c.n);
      c.n = 0;
    }
  }

  /** Forgets what the cells hold (with the counter's reset). */
  discard(): void {
    for (const c of this.#cells.values()) c.n = 0;
  }
}

export class HistogramCell {
  /** Observations per bucket, non-cumulative; the last slot holds those above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

/** prom-client's value of one label set (Histogram internals, read and written only here). */
interface HistogramValue {
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}
interface HistogramInternals {
  hashMap: Record<string, HistogramValue | undefined>;
  upperBounds: readonly number[];
  sortedLabelNames: readonly string[];
}

/** A histogram's pending observations, by label set. */
export class HistogramCells<L extends string> {
  readonly #histogram: Histogram<L>;
  readonly #cells = new Map<string, HistogramCell>();

  constructor(histogram: Histogram<L>) {
    this.#histogram = histogram;
  }

  cell(labels: Labels<L>): HistogramCell {
    const key = keyOf(labels);
    let c = this.#cells.get(key);
    if (c === undefined) {
      c = new HistogramCell({ ...labels }, (this.#histogram as unknown as HistogramInternals).upperBounds);
      this.#cells.set(key, c);
    }
    return c;
  }

  /** Adds the cells' observations to the histogram, as observe() would have one by one (its collect hook). */
  flush(): void {
    const h = this.#histogram as unknown as HistogramInternals;
    for (const c of this.#cells.values()) {
      if (c.count === 0) continue;
      const hash = hashObject(c.labels, h.sortedLabelNames);
      if (h.hashMap[hash] === undefined) this.#histogram.zero(c.labels as Partial<Record<L, string>>);
      const v = h.hashMap[hash] as HistogramValue;
      h.upperBounds.forEach((bound, i) => {
        v.bucketValues[bound] = (v.bucketValues[bound] ?? 0) + (c.counts[i] as number);
      });
      v.sum += c.sum;
      v.count += c.count;
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }

  discard(): void {
    for (const c of this.#cells.values()) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}
