// Fixed decisions read straight from the config: the `static` policy's variant and batch knobs, and for other
// routes the most accurate allowed variant. The baseline the adaptive engine is measured against.
import type { Clock } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import type { Runtime } from '../runtime/runtime.js';
import type { DecisionSource, Router, RouteState } from './router.js';

export function fixedVariant(r: RouteState): string {
  const p = r.config.policy;
  if (typeof p === 'object' && 'static' in p) return p.static.variant;
  if (typeof p === 'object' && 'aimd' in p) return p.aimd.variant;
  const min = r.config.slo.minAccuracy ?? 0;
  const ok = r.allowed.find((v) => (r.model.variants.get(v)?.accuracy ?? 0) >= min);
  return ok ?? (r.allowed[0] as string);
}

export class StaticDecisions implements DecisionSource {
  readonly #router: Router;
  readonly #runtime: Runtime;
  readonly #clock: Clock;
  readonly #cache = new Map<string, Decision>();

  constructor(router: Router, runtime: Runtime, clock: Clock) {
    this.#router = router;
    this.#runtime = runtime;
    this.#clock = clock;
  }

  current(route: string): Decision | undefined {
    const r = this.#router.routes.get(route);
    if (r === undefined) return undefined;
    const variant = fixedVariant(r);
    const cached = this.#cache.get(route);
    if (cached !== undefined && cached.variants[0]?.variant === variant) return cached;
    const d = this.#make(r, variant);
    this.#cache.set(route, d);
    return d;
  }

  #make(r: RouteState, variant: string): Decision {
    const knobs = this.#runtime.scheduler.knobs(r.model.name, variant);
    const v = r.model.variants.get(variant);
    return {
      route: r.name,
      model: r.model.name,
      variants: [{ variant, share: 1 }],
      maxBatch: knobs.maxBatch,
      maxQueueDelayMs: knobs.maxQueueDelayMs,
      admissionRps: Number.POSITIVE_INFINITY,
      predictedP99Ms: Number.NaN,
      accuracy: v?.accuracy ?? Number.NaN,
      costPerMillion: Number.NaN,
      reason: typeof r.config.policy === 'object' ? 'fixed by the route policy' : 'most accurate allowed variant',
      inputs: { rateFast: 0, rateSlow: 0, burstiness: 1, queuedRows: 0, observedP99Ms: Number.NaN, capacityRps: Number.NaN, replicas: this.#runtime.pool.readySlots },
      atMs: this.#clock.now(),
      at: new Date().toISOString(),
    };
  }

  /** Sets the batch knobs of variants that static policies fix. */
  applyKnobs(): void {
    for (const r of this.#router.routes.values()) {
      const p = r.config.policy;
      if (typeof p === 'object' && 'static' in p)
        this.#runtime.setKnobs(r.model.name, p.static.variant, { maxBatch: p.static.maxBatch, maxQueueDelayMs: p.static.maxQueueDelayMs });
    }
  }
}
