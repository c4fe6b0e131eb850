// Routes whose policy fixes the variant and batch knobs (static, aimd): never moved, but reported with a prediction
// from the same model, and counted in the load the adaptive routes plan around (docs/engine.md, "Baselines").
import type { Decision } from '../../core/decision.js';
import { capacityRps, costPerMillion, type LoadContext, plan, type VariantModel } from '../latency-model.js';
import { decisionInputs, makeDecision } from './decision.js';
import { explain } from './explanations.js';
import type { EngineSnapshot, FixedPolicy, RouteInput } from './types.js';

export interface FixedRoute {
  readonly input: RouteInput;
  readonly policy: FixedPolicy;
  /** Undefined when the model has no such variant (nothing to predict). */
  readonly variant: VariantModel | undefined;
  readonly utilisation: number;
}

export function prepareFixedRoute(
  input: RouteInput,
  policy: FixedPolicy,
  models: ReadonlyMap<string, VariantModel>,
  slots: number,
): FixedRoute {
  const variant = models.get(policy.variant);
  const rateNowRps = Math.max(input.rate.instant, input.rate.fast);
  const utilisation = variant === undefined ? 0 : utilisationAt(variant, rateNowRps, slots, policy.maxBatch);
  return { input: input, policy, variant, utilisation };
}

/** Utilisation of a variant at a rate, at the batch that forms (within the policy's limit). */
function utilisationAt(v: VariantModel, rateRps: number, slots: number, maxBatch: number): number {
  const limit = Math.max(1, Math.min(v.maxBatch, maxBatch));
  let batch = 1;
  for (let i = 0; i < 12; i++) {
    const next = Math.min(limit, Math.max(1, Math.ceil((rateRps * (v.table.p50[batch] as number)) / 1000 / slots)));
    if (next === batch) break;
    batch = next;
  }
  return (rateRps * (v.table.p50[batch] as number)) / batch / 1000 / slots;
}

/** The fixed route's decision, with the model's prediction against everything else's load. */
export function fixedRouteDecision(route: FixedRoute, snapshot: EngineSnapshot, totalUtilisation: number): Decision {
  const input = route.input;
  const { policy, variant } = route;
  let predictedP99Ms = Number.NaN;
  let cost = Number.NaN;
  let capacity = 0;
  if (variant !== undefined) {
    const otherUtilisation = totalUtilisation - route.utilisation;
    const load: LoadContext = {
      slots: snapshot.slots,
      otherUtilisation,
      burstiness: input.rate.burstiness,
      overheadMs: input.overheadMs,
      correction: 1,
      maxUtilisation: 1,
      budgetMs: Number.POSITIVE_INFINITY,
    };
    const maxBatch = Math.min(variant.maxBatch, policy.maxBatch);
    const fixedPlan = plan({ ...variant, maxBatch }, Math.max(input.rate.instant, input.rate.fast), load);
    predictedP99Ms = fixedPlan.predictedP99Ms;
    cost = costPerMillion(variant, fixedPlan.batch);
    capacity = capacityRps(variant, maxBatch, { slots: snapshot.slots, otherUtilisation, maxUtilisation: 1 });
  }
  return makeDecision(input, snapshot, {
    variants: [{ variant: policy.variant, share: 1 }],
    maxBatch: policy.maxBatch,
    maxQueueDelayMs: policy.maxQueueDelayMs,
    admissionRps: Number.POSITIVE_INFINITY,
    predictedP99Ms,
    accuracy: variant?.accuracy ?? Number.NaN,
    costPerMillion: cost,
    reason: explain.fixed(),
    inputs: decisionInputs(input, snapshot, 1, 1, capacity),
    fallbackVariant: undefined,
  });
}
