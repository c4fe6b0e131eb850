// The batch policy answers one question for a variant's queue when a replica is free: send now (how many rows),
// or wait until when. Pure: state and knobs in, plan out (Triton's "send now or wait this long").

export interface BatchKnobs {
  /** Largest batch, in rows. */
  readonly maxBatch: number;
  /** How long the head may wait for a fuller batch while a replica is idle (0 = work-conserving, never wait). */
  readonly maxQueueDelayMs: number;
  /** Batch sizes worth waiting for; reaching one sends at once. */
  readonly preferredBatchSizes?: readonly number[] | undefined;
  /**
   * Expected arrivals to this queue (requests/s): the head waits only while at least one is expected before the wait
   * ends, so at a rate of 0 it never waits. Undefined: unknown, the wait applies as configured.
   */
  readonly arrivalRps?: number | undefined;
}

export interface QueueState {
  /** Rows queued in total. */
  readonly rows: number;
  /** Rows of the head (earliest-deadline) request. */
  readonly headRows: number;
  readonly headArrivalMs: number;
  readonly headDeadlineMs: number;
}

export type BatchPlan =
  | { readonly action: 'send'; readonly rows: number }
  | { readonly action: 'wait'; readonly untilMs: number };

/** Service time estimate for a batch of `rows` rows (a high quantile: plans must hold in the tail). */
export type ServiceEstimate = (rows: number) => number;

/**
 * Plans the next batch of a non-empty queue, given that a replica is free now.
 * - Full (rows >= maxBatch) or a preferred size reached: send.
 * - maxQueueDelayMs = 0: send what is there (work-conserving).
 * - Otherwise wait for more rows, but never past the head's arrival + maxQueueDelayMs, nor past the last moment
 *   the head can start and still finish the batch it would join before its deadline, and only while at least one
 *   arrival is expected before the wait ends (waiting for partners that cannot come only adds latency).
 * The rows sent are shrunk, never below the head alone, until the batch finishes by the head's deadline.
 * - A variant that batching does not pay for sends its head alone (oneByOne).
 */
export function planBatch(q: QueueState, knobs: BatchKnobs, nowMs: number, service: ServiceEstimate): BatchPlan {
  const maxBatch = Math.max(1, knobs.maxBatch);
  if (oneByOne(q, maxBatch, nowMs, service)) return { action: 'send', rows: q.headRows };
  const available = Math.max(q.headRows, Math.min(q.rows, maxBatch));
  const send = (): BatchPlan => ({ action: 'send', rows: fitToDeadline(q, available, nowMs, service) });
  if (q.rows >= maxBatch) return send();
  const preferred = knobs.preferredBatchSizes;
  if (preferred !== undefined && preferred.length > 0) {
    let largest = 0;
    for (const p of preferred) if (p <= maxBatch && p > largest) largest = p;
    if (preferred.includes(available) || (largest > 0 && available >= largest)) return send();
  }
  if (knobs.maxQueueDelayMs <= 0) return send();
  const nextRows = Math.min(maxBatch, q.rows + 1);
  const latestStart = q.headDeadlineMs - service(nextRows);
  const untilMs = Math.min(q.headArrivalMs + knobs.maxQueueDelayMs, latestStart);
  if (nowMs >= untilMs) return send();
  if (knobs.arrivalRps !== undefined && !((knobs.arrivalRps * (untilMs - nowMs)) / 1000 >= 1)) return send();
  return { action: 'wait', untilMs };
}

/**
 * Whether the head goes alone, neither batched nor waiting for partners. A batch answers all its rows at its end, so
 * it pays only when it beats running them one after another on mean completion: S(n) <= (n+1)/2 * S(1), which for a
 * cost of a + b*n per batch means a fixed cost a of at least the per-row cost b. A model whose rows cost about the same
 * batched or not fails it; its rows go one by one while the queue so served still meets the head's deadline. Past
 * that, the batch's throughput is what counts.
 */
export function oneByOne(q: QueueState, maxBatch: number, nowMs: number, service: ServiceEstimate): boolean {
  const n = Math.min(maxBatch, Math.max(2, q.rows));
  if (n < 2) return false;
  const one = service(1);
  return service(n) > ((n + 1) / 2) * one && nowMs + q.rows * one <= q.headDeadlineMs;
}

/** Largest row count in [headRows, rows] whose batch finishes by the head's deadline (headRows if none does). */
export function fitToDeadline(q: QueueState, rows: number, nowMs: number, service: ServiceEstimate): number {
  if (nowMs + service(rows) <= q.headDeadlineMs) return rows;
  let lo = q.headRows;
  let hi = rows;
  // Binary search on the monotone service time: lo fits (or is the floor), hi does not.
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (nowMs + service(mid) <= q.headDeadlineMs) lo = mid;
    else hi = mid;
  }
  return lo;
}
