// Each variant's runtime metric cells, found once and kept: a label key built per request or batch costs a string
// and its hash on the request path.
import type { CounterCell, HistogramCell } from '../core/metric-cells.js';
import type { Metrics } from '../core/metrics.js';
import { variantKey } from '../core/types.js';

export interface VariantCells {
  readonly queue: HistogramCell;
  readonly infer: HistogramCell;
  readonly batch: HistogramCell;
  readonly inline: CounterCell;
}

export class VariantMetrics {
  readonly #metrics: Metrics;
  readonly #byModel = new Map<string, Map<string, VariantCells>>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  of(model: string, variant: string): VariantCells {
    let byVariant = this.#byModel.get(model);
    if (byVariant === undefined) {
      byVariant = new Map();
      this.#byModel.set(model, byVariant);
    }
    let cells = byVariant.get(variant);
    if (cells === undefined) {
      const labels = { variant: variantKey(model, variant) };
      const m = this.#metrics;
      cells = {
        queue: m.queueDurationCells.cell(labels),
        infer: m.inferenceDurationCells.cell(labels),
        batch: m.batchSizeCells.cell(labels),
        inline: m.inlineBatchCells.cell(labels),
      };
      byVariant.set(variant, cells);
    }
    return cells;
  }
}
