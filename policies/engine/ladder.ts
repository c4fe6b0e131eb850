// The ladder of an adaptive route and positions on it (docs/engine.md, "The ladder"): the eligible variants on the
// Pareto frontier of (capacity per request, accuracy), cheapest first. A position x mixes rung floor(x) with share
// 1 - frac(x) and the next rung with frac(x), on a grid of 1/GRID rung.
import { batchLimit, type VariantModel } from '../latency-model.js';

/** Positions per rung. */
export const GRID = 20;

/** The nearest grid position. */
export function snap(position: number): number {
  return Math.round(position * GRID) / GRID;
}

/** Accuracy, with an unknown one (never evaluated, a stale hash) as 0. */
export function accuracyOf(v: VariantModel): number {
  return Number.isNaN(v.accuracy) ? 0 : v.accuracy;
}

/** Eligible variants on the Pareto frontier of (capacity per request, accuracy), cheapest first. */
export function buildLadder(
  variants: readonly VariantModel[],
  minAccuracy: number | undefined,
  overheadMs: number,
  budgetMs: number,
  correction: number,
): VariantModel[] {
  const scored: { variant: VariantModel; perRequestMs: number }[] = [];
  for (const variant of variants) {
    if (minAccuracy !== undefined && (Number.isNaN(variant.accuracy) || variant.accuracy < minAccuracy)) continue;
    const limit = batchLimit(variant, overheadMs, budgetMs, correction);
    if (limit > 0) scored.push({ variant, perRequestMs: (variant.table.p50[limit] as number) / limit });
  }
  scored.sort((a, b) => a.perRequestMs - b.perRequestMs || accuracyOf(a.variant) - accuracyOf(b.variant));
  const ladder: VariantModel[] = [];
  for (const { variant } of scored)
    if (ladder.length === 0 || accuracyOf(variant) > accuracyOf(ladder[ladder.length - 1] as VariantModel))
      ladder.push(variant);
  return ladder;
}

/** Accuracy of a ladder position (share-weighted over its two rungs), without planning. */
export function ladderAccuracy(ladder: readonly VariantModel[], position: number): number {
  const rung = Math.floor(position + 1e-9);
  const upperShare = position - rung;
  const lower = accuracyOf(ladder[rung] as VariantModel);
  if (upperShare < 1e-6 || rung + 1 >= ladder.length) return lower;
  return (1 - upperShare) * lower + upperShare * accuracyOf(ladder[rung + 1] as VariantModel);
}

export function sameLadder(ladder: readonly VariantModel[], names: readonly string[]): boolean {
  return ladder.length === names.length && ladder.every((v, i) => v.name === names[i]);
}

/** Where a position on the last tick's ladder lands on a changed one, and which variants left or joined it. */
export interface CarriedPosition {
  readonly position: number;
  readonly gone: readonly string[];
  readonly added: readonly string[];
}

/**
 * Carries a position over to a changed ladder without ever moving up (upgrades wait for their hysteresis): the same
 * mix when both of its rungs are still neighbours, else its lower rung, else the best rung no more accurate than that.
 */
export function carryPosition(
  position: number,
  previous: readonly string[],
  ladder: readonly VariantModel[],
  models: ReadonlyMap<string, VariantModel>,
): CarriedPosition {
  const lowerName = previous[Math.floor(position)];
  const upperShare = position - Math.floor(position);
  const upperName = upperShare > 1e-6 ? previous[Math.floor(position) + 1] : undefined;
  const lower = ladder.findIndex((v) => v.name === lowerName);
  let carried: number;
  if (lower >= 0 && upperName !== undefined && ladder[lower + 1]?.name === upperName) carried = lower + upperShare;
  else if (lower >= 0) carried = lower;
  else {
    const previousAccuracy = accuracyOf(models.get(lowerName ?? '') ?? (ladder[0] as VariantModel));
    carried = 0;
    ladder.forEach((v, i) => {
      if (accuracyOf(v) <= previousAccuracy) carried = i;
    });
  }
  const gone = previous.filter((name) => !ladder.some((v) => v.name === name));
  const added = ladder.filter((v) => !previous.includes(v.name)).map((v) => v.name);
  return { position: carried, gone, added };
}
