// The contenders of `slogate bench compare`, named by short ids (adaptive, static:large:b1, static:tiny:best,
// fixed, aimd, naive, raw), and the per-policy slogate configs derived from the user's config: the route under test
// keeps its model and SLO, only its `policy` changes. Pure functions; compare.ts runs them.
import type { Config } from '../core/config.js';

/** The raw (unparsed) form of a route policy, as written in YAML. */
export type RawPolicy =
  | 'adaptive'
  | { readonly static: { readonly variant: string; readonly maxBatch: number; readonly maxQueueDelayMs: number } }
  | { readonly aimd: { readonly variant: string; readonly maxBatch: number } };

export type PolicySpec =
  | {
      readonly kind: 'slogate';
      readonly id: string;
      readonly label: string;
      readonly policy: RawPolicy;
      readonly variant?: string;
    }
  | { readonly kind: 'naive'; readonly id: string; readonly label: string; readonly variant: string }
  | { readonly kind: 'raw'; readonly id: string; readonly label: string; readonly variant: string };

export interface Batching {
  readonly maxBatch: number;
  readonly maxQueueDelayMs: number;
}

export interface PolicyContext {
  /** The route's variants, most accurate first. */
  readonly variants: readonly string[];
  /** The variant with the shortest batch-1 service time. */
  readonly fastest: string;
  /** The model's largest batch (AIMD's ceiling). */
  readonly modelMaxBatch: number;
  /** A variant's best fixed batching for the route's SLO. */
  readonly best: (variant: string) => Batching;
}

export interface ProfilePoint {
  readonly rows: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * The best fixed batching of a variant for a p99 target, from its service-time profile: the batch size with the
 * most rows per ms of service (b / S50(b)) among those whose worst case, a full wait plus two batch times
 * (a request can arrive just after a batch starts), fits 80% of the target. The wait is min(5 ms, 20% of the target).
 * Needs at least 5% more throughput than a smaller batch to prefer a larger one.
 */
export function bestBatching(points: readonly ProfilePoint[], p99Ms: number): Batching {
  const delay = Math.min(5, 0.2 * p99Ms);
  let best: ProfilePoint | undefined;
  for (const p of [...points].sort((a, b) => a.rows - b.rows)) {
    if (p.rows < 2 || delay + 2 * p.p99Ms > 0.8 * p99Ms) continue;
    const rate = p.rows / p.p50Ms;
    const bestRate = best === undefined ? 0 : best.rows / best.p50Ms;
    if (rate > bestRate * 1.05) best = p;
  }
  const one = points.find((p) => p.rows === 1);
  if (best === undefined || (one !== undefined && best.rows / best.p50Ms <= (1 / one.p50Ms) * 1.05))
    return { maxBatch: 1, maxQueueDelayMs: 0 };
  return { maxBatch: best.rows, maxQueueDelayMs: delay };
}

/** Default contenders: everything for the full run; the extremes for --quick. */
export function defaultPolicyIds(ctx: PolicyContext, quick: boolean): string[] {
  const top = ctx.variants[0] as string;
  const statics = quick
    ? [`static:${top}:b1`, `static:${top}:best`, ...(ctx.fastest !== top ? [`static:${ctx.fastest}:best`] : [])]
    : ctx.variants.flatMap((v) => [`static:${v}:b1`, `static:${v}:best`]);
  return ['adaptive', ...statics, 'fixed', 'aimd', 'naive', 'raw'];
}

const batchingLabel = (b: Batching) => (b.maxBatch === 1 ? 'b1' : `b${b.maxBatch} ${b.maxQueueDelayMs}ms`);

/** Parses one policy id (see defaultPolicyIds); throws on unknown ids or variants. */
export function parsePolicyId(id: string, ctx: PolicyContext): PolicySpec {
  const [kind, variantArg, batchArg, delayArg] = id.split(':');
  const top = ctx.variants[0] as string;
  const variant = variantArg ?? top;
  if (kind !== 'adaptive' && kind !== 'fixed' && !ctx.variants.includes(variant))
    throw new Error(`policy ${id}: the route has no variant '${variant}' (${ctx.variants.join(', ')})`);
  switch (kind) {
    case 'adaptive':
      return { kind: 'slogate', id, label: 'adaptive (slogate engine)', policy: 'adaptive' };
    case 'fixed':
      return {
        kind: 'slogate',
        id,
        label: `fixed batching ${top} b8 5ms`,
        policy: { static: { variant: top, maxBatch: 8, maxQueueDelayMs: 5 } },
        variant: top,
      };
    case 'static': {
      let b: Batching;
      let note = '';
      if (batchArg === undefined || batchArg === 'b1') b = { maxBatch: 1, maxQueueDelayMs: 0 };
      else if (batchArg === 'best') {
        b = ctx.best(variant);
        note = ' (best)';
      } else {
        const m = /^b(\d+)$/.exec(batchArg);
        const d = delayArg === undefined ? 0 : Number(delayArg.replace(/ms$/, ''));
        if (m === null || !Number.isFinite(d) || d < 0)
          throw new Error(`policy ${id}: expected static:VARIANT:b1|best|bN[:Dms]`);
        b = { maxBatch: Number(m[1]), maxQueueDelayMs: d };
      }
      return {
        kind: 'slogate',
        id,
        label: `static ${variant} ${batchingLabel(b)}${note}`,
        policy: { static: { variant, ...b } },
        variant,
      };
    }
    case 'aimd':
      return {
        kind: 'slogate',
        id,
        label: `AIMD ${variant} (batch <= ${ctx.modelMaxBatch})`,
        policy: { aimd: { variant, maxBatch: ctx.modelMaxBatch } },
        variant,
      };
    case 'naive':
      return { kind: 'naive', id, label: `naive Fastify + ORT ${variant}`, variant };
    case 'raw':
      return { kind: 'raw', id, label: `raw ORT ${variant} (no HTTP)`, variant };
    default:
      throw new Error(
        `unknown policy '${id}': adaptive, static:VARIANT:b1|best|bN[:Dms], fixed, aimd[:VARIANT], naive[:VARIANT], raw[:VARIANT]`,
      );
  }
}

/**
 * The config one slogate contender runs with: the given config with only the route under test (its `policy`
 * replaced, its SLO kept) and, for single-variant policies, only that variant loaded. Logs at warn.
 */
export function derivePolicyConfig(
  base: Readonly<Config>,
  route: string,
  spec: Extract<PolicySpec, { kind: 'slogate' }>,
): Record<string, unknown> {
  const c = structuredClone(base) as Config;
  const rc = c.routes[route];
  if (rc === undefined) throw new Error(`the config has no route '${route}'`);
  const model = c.models[rc.model];
  if (model === undefined) throw new Error(`route ${route}: unknown model '${rc.model}'`);
  const newRoute: Record<string, unknown> = { ...rc, policy: spec.policy };
  if (spec.variant !== undefined) {
    const v = model.variants[spec.variant];
    if (v === undefined) throw new Error(`model ${rc.model} has no variant '${spec.variant}'`);
    model.variants = { [spec.variant]: v };
    delete newRoute.variants;
  }
  c.server.logLevel = 'warn';
  c.server.requestLog = false;
  return { ...c, models: { [rc.model]: model }, routes: { [route]: newRoute } } as unknown as Record<string, unknown>;
}

/** File-name-safe form of a policy id. */
export function policySlug(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]+/g, '-');
}
