// How long a running batch may take before its replica counts as hung. A batch that can still meet its latest
// deadline is never given up (a retry could not answer sooner), nor one within a few of its variant's p99 times.
export interface BatchTimeoutKnobs {
  /** Multiple of the variant's p99 service time for the batch's rows. */
  readonly p99Factor: number;
  /** Added to the longer of the deadline and the profile term: room for timer and event-loop delay. */
  readonly marginMs: number;
  /** Shortest timeout (a variant without a profile has a p99 of 0). */
  readonly floorMs: number;
}

export interface BatchTimeoutInput {
  readonly nowMs: number;
  /** Latest deadline among the batch's requests. */
  readonly latestDeadlineAtMs: number;
  /** The variant's p99 service time for the batch's rows (0 when unknown). */
  readonly p99Ms: number;
}

/** max(floor, max(latest deadline - now, factor x p99) + margin), in ms from now. */
export function batchTimeoutMs(input: BatchTimeoutInput, knobs: BatchTimeoutKnobs): number {
  const left = Math.max(0, input.latestDeadlineAtMs - input.nowMs);
  const profile = knobs.p99Factor * Math.max(0, input.p99Ms);
  const ms = Math.max(left, profile) + knobs.marginMs;
  return Math.max(knobs.floorMs, Number.isFinite(ms) ? ms : knobs.floorMs);
}
