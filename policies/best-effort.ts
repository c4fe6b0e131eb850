// Best-effort service for a request that could never make its deadline, even alone on an idle replica (a batch too
// big for the SLO): without a client `timeout` it is served when there is capacity, counted as a miss and flagged,
// rather than refused with a 503 that no retry can cure; under load it is shed like any sheddable request. A client
// that set `timeout` asked for its deadline to be strict, and keeps it.
import { SlogateError } from '../core/errors.js';

export interface BestEffortQuery {
  readonly nowMs: number;
  readonly deadlineAtMs: number;
  /** The request's service time on its variant alone, at p50 (ms). */
  readonly idleMs: number;
  /** The same at p99 plus the gateway overhead: room the best-effort deadline leaves for it (ms). */
  readonly idleP99Ms: () => number;
  /** The client set `timeout`: its deadline is strict. */
  readonly clientTimeout: boolean;
  /** Queued work ahead (ms) and the route's p99 target: the queue is too long for extra work past this. */
  readonly backlogMs: () => number;
  readonly p99Ms: number;
  /** The engine sees the system under pressure (some route shed or held at its cheapest). */
  readonly underPressure: boolean;
}

/** undefined: serve as usual (it can make it, or its deadline is strict); a deadline: serve best-effort by it. */
export function bestEffortDeadline(q: BestEffortQuery): number | undefined {
  if (q.nowMs + q.idleMs <= q.deadlineAtMs || q.clientTimeout) return undefined;
  const backlogMs = q.backlogMs();
  if (q.underPressure || backlogMs > q.p99Ms)
    throw new SlogateError(
      'SLOGATE_ERR_SHED',
      `request needs ~${q.idleMs.toFixed(1)} ms even alone, over its deadline (${Math.max(0, q.deadlineAtMs - q.nowMs).toFixed(1)} ms left): served best-effort only when the server is not loaded`,
      { retryAfterMs: 1000 },
    );
  // Late by design: behind the on-time work that is queued now (EDF), and bounded so a clogged queue still drops it.
  return q.nowMs + backlogMs + 2 * q.idleP99Ms() + q.p99Ms;
}
