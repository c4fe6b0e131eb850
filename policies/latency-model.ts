// Predicts what serving a stream of requests on one variant does to latency: the batch that forms, utilisation,
// and the p99 of waiting + service + gateway overhead. Pure arithmetic over a profile table; calibrated by a
// correction factor the controller learns from observed p99.
import type { ServiceTable } from '../runtime/latency-profile.js';

export interface VariantModel {
  readonly name: string;
  /** Accuracy on the eval set, NaN when unknown. */
  readonly accuracy: number;
  /** Corrected service time per batch size (index = rows). */
  readonly table: ServiceTable;
  /** Largest batch the model allows. */
  readonly maxBatch: number;
  /** Price of one replica slot per millisecond (pricing units). */
  readonly pricePerSlotMs: number;
  /**
   * Work the variant's replicas run per live request on top of it (0 when absent): a rollout's shadow share, each
   * shadowed batch run again on the candidate (the table is then the slower revision's). It takes capacity, so the
   * plan counts it; the batches still form at the live rate.
   */
  readonly extraWorkShare?: number;
}

export interface LoadContext {
  /** Replica slots serving this model. */
  readonly slots: number;
  /** Utilisation (0..1 of all slots) taken by other traffic. */
  readonly otherUtilisation: number;
  /** Burstiness of arrivals, used as their squared coefficient of variation (1 = Poisson). */
  readonly burstiness: number;
  /** Gateway overhead outside queue and service (ms, high quantile). */
  readonly overheadMs: number;
  /** Multiplier (>= 1) learned from observed vs predicted p99. */
  readonly correction: number;
  /** Highest total utilisation allowed. */
  readonly maxUtilisation: number;
  /** Latency budget: (1 - margin) x p99 target (ms). */
  readonly budgetMs: number;
}

export interface Plan {
  readonly ok: boolean;
  /** Why not, when !ok. */
  readonly why: PlanFailure;
  readonly variant: string;
  /** Batch limit for the variant (largest whose worst case fits the budget). */
  readonly maxBatch: number;
  /** Batch that forms at this load. */
  readonly batch: number;
  /** This stream's utilisation of all slots, the variant's extra work included. */
  readonly utilisation: number;
  /** The part of utilisation that is extra work (extraWorkShare). */
  readonly extraUtilisation: number;
  readonly predictedP99Ms: number;
  readonly costPerMillion: number;
}

/**
 * Largest batch b (powers of two and the model limit) whose worst case fits: a request can arrive just after a
 * full batch started, so 2 x S99(b) + overhead must fit the budget. 0 when not even b = 1 fits.
 */
export function batchLimit(v: VariantModel, overheadMs: number, budgetMs: number, correction = 1): number {
  let best = 0;
  for (let b = 1; b <= v.maxBatch; b = b * 2 > v.maxBatch && b < v.maxBatch ? v.maxBatch : b * 2) {
    if (2 * (v.table.p99[b] as number) * correction + overheadMs <= budgetMs) best = b;
    else break;
  }
  return best;
}

/**
 * Batch that forms under work-conserving dispatch: the arrivals during one batch's service, b = ceil(lambda x
 * S50(b) / slots), and at least the batch at which a slot keeps up (requests queue until batches are that big);
 * bounded by [1, limit].
 */
export function formedBatch(v: VariantModel, lambdaRps: number, slots: number, limit: number): number {
  const load = (b: number) => (lambdaRps * (v.table.p50[b] as number)) / 1000 / slots / b;
  let b = 1;
  for (let i = 0; i < 16; i++) {
    let next = Math.min(limit, Math.max(1, Math.ceil((lambdaRps * (v.table.p50[b] as number)) / 1000 / slots)));
    while (next < limit && load(next) > KEEP_UP) next = Math.min(limit, next * 2);
    if (next === b) break;
    b = next;
  }
  return b;
}

/** Utilisation per slot up to which a batch size is taken to keep up with arrivals (beyond it, queues and batches grow). */
const KEEP_UP = 0.7;

/** Utilisation of all slots by lambda requests/s on v when batches of b form. */
export function utilisation(v: VariantModel, lambdaRps: number, b: number, slots: number): number {
  return (lambdaRps * (v.table.p50[b] as number)) / b / 1000 / slots;
}

/** Work per live request on v's replicas: 1 plus its extra work share. */
export function workFactor(v: VariantModel): number {
  const extra = v.extraWorkShare ?? 0;
  return extra > 0 ? 1 + extra : 1;
}

/** p99 of waiting in an M/G/k-like queue (Sakasegawa for the chance to wait, Kingman for its mean, exponential tail). */
export function waitP99Ms(rho: number, slots: number, serviceMs: number, ca2: number, cs2: number): number {
  if (rho <= 0) return 0;
  if (rho >= 1) return Number.POSITIVE_INFINITY;
  const pWait = Math.min(1, rho ** (Math.sqrt(2 * (slots + 1)) - 1));
  if (pWait <= 0.01) return 0;
  const meanWait = ((pWait / (slots * (1 - rho))) * serviceMs * (ca2 + cs2)) / 2;
  return (meanWait / pWait) * Math.log(pWait / 0.01);
}

export function costPerMillion(v: VariantModel, b: number): number {
  return ((v.table.p50[b] as number) / b) * v.pricePerSlotMs * 1e6;
}

/** Evaluates serving lambda requests/s of one route on variant v. */
export type PlanFailure = '' | 'no-batch-fits' | 'utilisation' | 'budget';

/**
 * Evaluates serving lambda requests/s of one route on variant v. `limit` may be passed when already known (the
 * engine caches it per route and tick: it does not depend on the load).
 */
export function plan(v: VariantModel, lambdaRps: number, ctx: LoadContext, limit = planLimit(v, ctx)): Plan {
  if (limit === 0)
    return {
      ok: false,
      why: 'no-batch-fits',
      variant: v.name,
      maxBatch: 0,
      batch: 1,
      utilisation: 0,
      extraUtilisation: 0,
      predictedP99Ms: Number.POSITIVE_INFINITY,
      costPerMillion: costPerMillion(v, 1),
    };
  const b = formedBatch(v, lambdaRps, ctx.slots, limit);
  const live = utilisation(v, lambdaRps, b, ctx.slots);
  const rho = live * workFactor(v);
  const total = rho + ctx.otherUtilisation;
  const cost = costPerMillion(v, b);
  if (total >= ctx.maxUtilisation)
    return {
      ok: false,
      why: 'utilisation',
      variant: v.name,
      maxBatch: limit,
      batch: b,
      utilisation: rho,
      extraUtilisation: rho - live,
      predictedP99Ms: Number.POSITIVE_INFINITY,
      costPerMillion: cost,
    };
  const s50 = v.table.p50[b] as number;
  const s99 = v.table.p99[b] as number;
  // Service-time variability from the profile, reading p99 as mean + 2.33 sigma.
  const cs2 = s50 > 0 ? ((s99 - s50) / (2.33 * s50)) ** 2 : 0;
  // Batching smooths arrivals: a batch of b requests arrives with b times less relative variance.
  const w99 = waitP99Ms(total, ctx.slots, s50, ctx.burstiness / b, cs2);
  // A request joins the batch that forms while it waits: at most the limit.
  const joined = Math.min(limit, Math.max(b, Math.ceil((lambdaRps * (w99 + s99)) / 1000 / ctx.slots)));
  const predicted = ctx.correction * (w99 + (v.table.p99[joined] as number)) + ctx.overheadMs;
  return {
    ok: predicted <= ctx.budgetMs,
    why: predicted <= ctx.budgetMs ? '' : 'budget',
    variant: v.name,
    maxBatch: limit,
    batch: b,
    utilisation: rho,
    extraUtilisation: rho - live,
    predictedP99Ms: predicted,
    costPerMillion: cost,
  };
}

/**
 * The batch limit plan() uses. It counts at most half the budget as gateway overhead: an overhead spike must not
 * switch batching off (when batching is needed most); the prediction still counts all of it.
 */
export function planLimit(v: VariantModel, ctx: Pick<LoadContext, 'overheadMs' | 'budgetMs' | 'correction'>): number {
  return batchLimit(v, Math.min(ctx.overheadMs, ctx.budgetMs / 2), ctx.budgetMs, ctx.correction);
}

/**
 * Highest arrival rate v can take within maxUtilisation, given other traffic (full batches at the limit), its extra
 * work counted.
 */
export function capacityRps(
  v: VariantModel,
  limit: number,
  ctx: Pick<LoadContext, 'slots' | 'otherUtilisation' | 'maxUtilisation'>,
): number {
  if (limit <= 0) return 0;
  const room = Math.max(0, ctx.maxUtilisation - ctx.otherUtilisation);
  return (room * ctx.slots * limit * 1000) / (v.table.p50[limit] as number) / workFactor(v);
}
