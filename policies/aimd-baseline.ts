// The fixed-policy baselines beside the engine: `static` routes' batch knobs as configured, and `aimd` routes' batch
// limit, stepped after every batch of their variant (Clipper's AIMD, aimd.ts).

import { variantKey } from '../core/types.js';
import type { BatchKnobs } from '../runtime/batch-policy.js';
import type { RuntimePort } from '../runtime/port.js';
import { aimdStep } from './aimd.js';
import type { RouteState } from './router.js';

export interface AimdBaselineDeps {
  readonly runtime: Pick<RuntimePort, 'setKnobs'>;
  /** The routes as they are now (admin changes included). */
  readonly routes: () => Iterable<RouteState>;
  /** Fraction of the p99 budget kept in reserve (engine.margin). */
  readonly margin: number;
}

export class AimdBaseline {
  readonly #deps: AimdBaselineDeps;
  /** The current batch limit per "model/variant" an aimd route names. */
  readonly #limits = new Map<string, number>();

  constructor(deps: AimdBaselineDeps) {
    this.#deps = deps;
  }

  /** The batch limit AIMD has reached for a variant (1 before its first batch). */
  limit(model: string, variant: string): number {
    return this.#limits.get(variantKey(model, variant)) ?? 1;
  }

  /** Steps the batch limit of the variant an aimd route names, after a batch of it (the first such route's). */
  onBatch(model: string, variant: string, rows: number, serviceMs: number): void {
    for (const r of this.#deps.routes()) {
      const p = r.config.policy;
      if (p.kind !== 'aimd' || p.variant !== variant || r.model.name !== model) continue;
      const cur = this.limit(model, variant);
      const budgetMs = ((1 - this.#deps.margin) * r.config.slo.p99Ms) / 2;
      const next = aimdStep(
        { maxBatch: cur },
        { serviceMs, rows },
        { budgetMs, ceiling: Math.min(p.maxBatch, r.model.config.maxBatch) },
      ).maxBatch;
      if (next !== cur) {
        this.#limits.set(variantKey(model, variant), next);
        this.#deps.runtime.setKnobs(model, variant, { maxBatch: next, maxQueueDelayMs: 0 });
      }
      return;
    }
  }

  /**
   * Batch knobs of variants that fixed policies name: `static` sets them (capped by the model's maxBatch), `aimd`
   * starts at 1 and adapts. Knobs belong to a variant's queue: routes naming the same variant share the smaller.
   */
  applyFixedKnobs(): void {
    for (const k of fixedKnobs(this.#deps.routes(), (m, v) => this.limit(m, v)).values())
      this.#deps.runtime.setKnobs(k.model, k.variant, k.knobs);
  }
}

/** The knobs fixed-policy routes ask for, per "model/variant"; `aimdLimit` is AIMD's current limit. */
export function fixedKnobs(
  routes: Iterable<RouteState>,
  aimdLimit: (model: string, variant: string) => number,
): Map<string, { model: string; variant: string; knobs: BatchKnobs }> {
  const want = new Map<string, { model: string; variant: string; knobs: BatchKnobs }>();
  for (const r of routes) {
    const p = r.config.policy;
    if (p.kind === 'adaptive') continue;
    const model = r.model.name;
    const maxBatch = Math.min(r.model.config.maxBatch, p.kind === 'static' ? p.maxBatch : aimdLimit(model, p.variant));
    const delay = p.kind === 'static' ? p.maxQueueDelayMs : 0;
    const key = variantKey(model, p.variant);
    const prev = want.get(key)?.knobs;
    want.set(key, {
      model,
      variant: p.variant,
      knobs: {
        maxBatch: Math.min(prev?.maxBatch ?? maxBatch, maxBatch),
        maxQueueDelayMs: Math.min(prev?.maxQueueDelayMs ?? delay, delay),
      },
    });
  }
  return want;
}
