// The request and result types of the runtime's submit(), shared by the scheduler, the policies and the gateway.
import type { CancelSignal } from '../core/cancel.js';
import type { TraceContext } from '../core/tracing.js';
import type { Tensor } from '../core/types.js';

export interface SubmitRequest {
  readonly model: string;
  readonly variant: string;
  /** One tensor per model input, already in the model's datatypes. */
  readonly inputs: readonly Tensor[];
  /** Rows along the batch dimension (1 for models that cannot batch). */
  readonly rows: number;
  /** Output names wanted, in the order wanted (all outputs when absent). */
  readonly outputs?: readonly string[] | undefined;
  readonly arrivalMs: number;
  readonly deadlineAtMs: number;
  readonly priority: number;
  readonly signal?: CancelSignal | undefined;
  /** Who sent it (the route): lets the policy move a route's queued requests to another variant. */
  readonly tag?: string | undefined;
  /** The client named this variant: the request is never moved to another one. */
  readonly pinned?: boolean | undefined;
  /**
   * A faster variant of the same model that may answer instead when this one can no longer make the deadline:
   * the request is moved rather than dropped (a slightly less accurate answer on time beats a 503).
   */
  readonly fallbackVariant?: string | undefined;
  /** The request's trace context, opaque to the runtime (the tracing hooks' current() when absent). */
  readonly trace?: TraceContext | undefined;
}

export interface SubmitResult {
  readonly outputs: Tensor[];
  readonly model: string;
  readonly variant: string;
  /** Waiting in the queue (enqueue to dispatch). */
  readonly queueMs: number;
  /** Dispatch to result as the main thread saw it (includes any event-loop delay before the result was read). */
  readonly serviceMs: number;
  /** The replica's share: its busy time plus the hop to it and back (what profiles model). */
  readonly computeMs: number;
  /** The model's own run time. */
  readonly inferMs: number;
  readonly batchRows: number;
  readonly replicaId: string;
  /** Which revision of the variant answered, while it has a candidate (a rollout's canary share). */
  readonly revision?: 'active' | 'candidate' | undefined;
}
