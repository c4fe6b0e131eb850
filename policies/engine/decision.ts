// Decision objects as the controller, the admin API and the simulator read them: one literal with every field in a
// fixed order (no spreads, no later additions), so the shape stays stable and cheap.
import type { Decision, VariantShare } from '../../core/decision.js';
import type { EngineSnapshot, RouteInput } from './types.js';

/** What a route's decision says, beyond the route and the time. */
export interface DecisionBody {
  readonly variants: VariantShare[];
  readonly maxBatch: number;
  readonly maxQueueDelayMs: number;
  readonly admissionRps: number;
  readonly predictedP99Ms: number;
  readonly accuracy: number;
  readonly costPerMillion: number;
  readonly reason: string;
  readonly inputs: Decision['inputs'];
  readonly fallbackVariant: string | undefined;
}

export function makeDecision(input: RouteInput, snapshot: EngineSnapshot, body: DecisionBody): Decision {
  return {
    route: input.name,
    model: input.model,
    variants: body.variants,
    maxBatch: body.maxBatch,
    maxQueueDelayMs: body.maxQueueDelayMs,
    admissionRps: body.admissionRps,
    predictedP99Ms: body.predictedP99Ms,
    accuracy: body.accuracy,
    costPerMillion: body.costPerMillion,
    reason: body.reason,
    inputs: body.inputs,
    atMs: snapshot.nowMs,
    at: snapshot.at,
    fallbackVariant: body.fallbackVariant,
  };
}

/** The inputs a decision was made from (shown by the admin API). */
export function decisionInputs(
  input: RouteInput,
  snapshot: EngineSnapshot,
  correction: number,
  missRiskScale: number,
  capacityRps: number,
): Decision['inputs'] {
  return {
    rateFast: input.rate.fast,
    rateSlow: input.rate.slow,
    burstiness: input.rate.burstiness,
    queuedRows: input.queuedRows,
    observedP99Ms: input.observedP99Ms,
    observedSinceSwitchP99Ms: input.observedSinceSwitchP99Ms,
    capacityRps,
    replicas: snapshot.slots,
    overheadMs: input.overheadMs,
    correction,
    missRiskScale,
    gatewayUtilisation: snapshot.gatewayUtilisation,
    replicaUtilisation: snapshot.replicaUtilisation,
  };
}
