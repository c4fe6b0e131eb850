// Each variant's runtime metric cells, found once and kept: a label key built per request or batch costs a string
// and its hash on the request path.
import type { CounterCell, HistogramCell } from '../core/metric-cells.js';
import type { Metrics } from '../core/metrics.js';
import { PairMap } from '../core/pair-map.js';
import { variantKey } from '../core/types.js';

export interface VariantCells {
  readonly queue: HistogramCell;
  readonly infer: HistogramCell;
  readonly batch: HistogramCell;
  readonly inline: CounterCell;
}

export class VariantMetrics {
  readonly #metrics: Metrics;
  readonly #cells = new PairMap<VariantCells>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  of(model: string, variant: string): VariantCells {
    return this.#cells.get(model, variant) ?? this.#add(model, variant);
  }

  #add(model: string, variant: string): VariantCells {
    const labels = { variant: variantKey(model, variant) };
    const m = this.#metrics;
    const cells = {
      queue: m.queueDurationCells.cell(labels),
      infer: m.inferenceDurationCells.cell(labels),
      batch: m.batchSizeCells.cell(labels),
      inline: m.inlineBatchCells.cell(labels),
    };
    this.#cells.set(model, variant, cells);
    return cells;
  }
}
