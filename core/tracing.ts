// The tracing hooks the runtime calls: when a request entered a queue, when its batch was dispatched and when the
// batch ran. Trace contexts and spans are opaque values here, so the runtime never imports OpenTelemetry;
// gateway/tracing.ts implements the hooks with it. Untraced (the default), the runtime holds no hooks and pays nothing.

/** A request's trace context (where it came from), carried on SubmitRequest and handed back to the hooks. */
export type TraceContext = unknown;

/** A span the hooks started (a request's wait in its queue, or a batch's execution); handed back to end it. */
export type TraceSpan = unknown;

export interface QueuedInfo {
  readonly model: string;
  /** The variant whose queue it entered (a later move to another variant's queue keeps the same wait span). */
  readonly variant: string;
  readonly rows: number;
  readonly priority: number;
  /** Who sent it (the route). */
  readonly tag?: string | undefined;
}

export interface BatchInfo {
  readonly model: string;
  readonly variant: string;
  /** Rows in the batch (its size along the batch dimension). */
  readonly rows: number;
  /** Requests stacked into it. */
  readonly requests: number;
}

export interface BatchRan {
  readonly replicaId?: string | undefined;
  /** Execution provider of the replica that ran it ('cpu', 'cuda', 'remote'). */
  readonly provider?: string | undefined;
  /** The model's own run time and the replica's share (ms). */
  readonly inferMs?: number | undefined;
  readonly computeMs?: number | undefined;
  /** Set when the batch failed. */
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}

export interface TracingHooks {
  /** The caller's active trace context: read when a request arrives without one on SubmitRequest. */
  current(): TraceContext | undefined;
  /** A request entered a queue: starts its wait span (undefined when the request is not traced). */
  queued(ctx: TraceContext | undefined, info: QueuedInfo): TraceSpan | undefined;
  /** A queued request left without running (deadline, cancelled, shutting down): ends its wait span. */
  dropped(wait: TraceSpan, code: string): void;
  /**
   * A batch was dispatched: starts the batch span (one per execution, linked to its requests), and ends the
   * requests' wait spans with a link to it. Returns the batch span (undefined when no request in it is traced).
   */
  dispatched(info: BatchInfo, waits: readonly (TraceSpan | undefined)[]): TraceSpan | undefined;
  /** The batch finished or failed: ends its span. */
  ran(batch: TraceSpan, outcome: BatchRan): void;
}
