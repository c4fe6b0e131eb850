// Per-request variant choice by size: the decision's mix serves every request that can still make its deadline on
// the variant the mix picked; one that cannot (a large batch, a long queue) goes to the most accurate eligible
// variant that can at its own size, not to the fastest: a big request on a fast model loses accuracy for nothing.

export interface SizeFitQuery {
  readonly rows: number;
  readonly nowMs: number;
  readonly deadlineAtMs: number;
  /** Gateway overhead expected on top of queueing and service (ms). */
  readonly overheadMs: number;
  /** Queued work ahead (ms): all of it, or only what runs before a deadline (EDF). */
  readonly backlogMs: (beforeMs?: number) => number;
  /** p99 service time of `rows` rows on a variant (ms). */
  readonly serviceMs: (variant: string, rows: number) => number;
}

/**
 * The variant a request of `q.rows` rows goes to: `picked` when it finishes by the deadline there, else the first of
 * `eligible()` (most accurate first) that does. When the gateway overhead alone makes every one late (a stall), the
 * overhead, the same whichever variant serves, is no reason to pick a less accurate one: the first that fits without
 * it. Else (the queue ahead is too long) the fastest of them at this size, which adds least to that queue.
 */
export function variantForSize(picked: string, eligible: () => readonly string[], q: SizeFitQuery): string {
  const finishMs = (variant: string, backlogMs: number, overheadMs = q.overheadMs) =>
    q.nowMs + backlogMs + q.serviceMs(variant, q.rows) + overheadMs;
  // The common case costs two service lookups and the cached total backlog.
  if (finishMs(picked, 0) <= q.deadlineAtMs && finishMs(picked, q.backlogMs()) <= q.deadlineAtMs) return picked;
  const ahead = q.backlogMs(q.deadlineAtMs);
  if (finishMs(picked, ahead) <= q.deadlineAtMs) return picked;
  const variants = eligible();
  for (const v of variants) if (finishMs(v, ahead) <= q.deadlineAtMs) return v;
  if (finishMs(picked, ahead, 0) <= q.deadlineAtMs) return picked;
  for (const v of variants) if (finishMs(v, ahead, 0) <= q.deadlineAtMs) return v;
  let fastest = picked;
  let fastestMs = q.serviceMs(picked, q.rows);
  for (const v of variants) {
    const ms = q.serviceMs(v, q.rows);
    if (ms < fastestMs) {
      fastest = v;
      fastestMs = ms;
    }
  }
  return fastest;
}
