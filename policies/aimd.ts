// Clipper's AIMD batching, as a baseline policy: per variant, grow the batch limit by one after every batch that
// finished within the latency budget, cut it by 10% after one that did not. Variant fixed; no admission control.
import type { BatchObservation } from '../runtime/scheduler.js';

export interface AimdState {
  readonly maxBatch: number;
}

export interface AimdParams {
  /** Service-time budget for one batch (ms): the SLO share a batch may take. */
  readonly budgetMs: number;
  readonly ceiling: number;
  readonly increase?: number;
  readonly decreaseFactor?: number;
}

/** Next batch limit after one observed batch (pure). */
export function aimdStep(
  state: AimdState,
  obs: Pick<BatchObservation, 'serviceMs' | 'rows'>,
  p: AimdParams,
): AimdState {
  if (obs.serviceMs <= p.budgetMs) {
    // Grow only when the batch was (nearly) full: a small batch says nothing about a bigger one.
    if (obs.rows >= state.maxBatch) return { maxBatch: Math.min(p.ceiling, state.maxBatch + (p.increase ?? 1)) };
    return state;
  }
  return { maxBatch: Math.max(1, Math.floor(state.maxBatch * (p.decreaseFactor ?? 0.9))) };
}
