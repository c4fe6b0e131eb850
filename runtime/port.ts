// The runtime as policies see it: the few numbers and actions they use, so the control loop, admission and the router
// depend on this port rather than on the scheduler, the replica pool or the profiles themselves. `Runtime` implements
// it; a test or a simulation can too.
import type { BatchKnobs } from './batch-policy.js';
import type { Quantile, ServiceTable } from './latency-profile.js';
import type { ModelInfo } from './model-repository.js';
import type { BatchObservation, VariantQueueStats } from './scheduler.js';
import type { SubmitRequest, SubmitResult } from './types.js';

export interface RuntimePort {
  /** Replicas started and profiles loaded: requests can be submitted. */
  readonly ready: boolean;
  /** Every model with its variants (accuracy, hash) and signature. */
  readonly models: ReadonlyMap<string, ModelInfo>;
  /** One model; throws SLOGATE_ERR_MODEL_NOT_FOUND-style errors for an unknown name. */
  model(name: string): ModelInfo;
  /** Replica slots able to take a batch now. */
  readonly readySlots: number;
  /**
   * Estimated time to work off what is queued (ms, spread over the ready replicas); with `beforeMs`, only requests
   * whose deadline is not later (EDF runs those first).
   */
  backlogMs(beforeMs?: number): number;
  /** Corrected service-time estimate of one batch (ms); `nowMs`: the caller's reading of the clock, if it has one. */
  serviceMs(model: string, variant: string, rows: number, q: Quantile, nowMs?: number): number;
  /** Corrected service times for 1..maxRows rows (the engine's planning table). */
  serviceTable(model: string, variant: string, maxRows: number): ServiceTable;
  queueStats(): VariantQueueStats[];
  knobs(model: string, variant: string): BatchKnobs;
  setKnobs(model: string, variant: string, knobs: BatchKnobs): void;
  /** Moves up to `fraction` of a tag's queued requests to another variant's queue; returns how many moved. */
  migrate(model: string, from: string, to: string, tag: string, fraction: number): number;
  /** Calls `listener` after every executed batch. */
  onBatch(listener: (o: BatchObservation) => void): void;
  submit(req: SubmitRequest): Promise<SubmitResult>;
}
