// Hand-built engine inputs for the engine's unit tests: a four-rung family, rates, routes, snapshots, settled states.
import assert from 'node:assert/strict';
import {
  DEFAULT_ENGINE_PARAMS,
  decide,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
} from '../../../../policies/engine/index.js';
import type { VariantModel } from '../../../../policies/latency-model.js';
import type { RateSnapshot } from '../../../../policies/rate-estimator.js';

/** A variant whose batch of b rows takes base + perRow x b ms (p50), p99 = 1.2 x p50. */
export function variant(name: string, accuracy: number, baseMs: number, perRowMs: number, maxBatch = 64): VariantModel {
  const p50 = new Float64Array(maxBatch + 1);
  const p99 = new Float64Array(maxBatch + 1);
  for (let b = 1; b <= maxBatch; b++) {
    p50[b] = baseMs + perRowMs * b;
    p99[b] = 1.2 * (baseMs + perRowMs * b);
  }
  return { name, accuracy, table: { p50, p99 }, maxBatch, pricePerSlotMs: 1e-8 };
}

export const FAMILY = [
  variant('tiny', 0.91, 0.1, 0.005),
  variant('small', 0.94, 0.12, 0.01),
  variant('cnn', 0.985, 0.15, 0.03),
  variant('large', 0.992, 0.3, 1.2),
];

export function rate(rps: number, extra: Partial<RateSnapshot> = {}): RateSnapshot {
  return { instant: rps, fast: rps, slow: rps, peak: rps, burstiness: 1, ...extra };
}

export function routeInput(over: Partial<RouteInput> = {}): RouteInput {
  return {
    name: 'r',
    model: 'm',
    priority: 0,
    objective: 'max-accuracy',
    utilityCostWeight: 0.001,
    slo: { p99Ms: 25 },
    policy: { kind: 'adaptive' },
    allowed: FAMILY.map((v) => v.name),
    rate: rate(100),
    observedP99Ms: Number.NaN,
    observedSinceSwitchP99Ms: Number.NaN,
    overheadMs: 0.5,
    queuedRows: 0,
    state: INITIAL_STATE,
    windowPrediction: { p99Ms: Number.NaN, correction: 1 },
    outcomes: { answered: 0, missed: 0 },
    ...over,
  };
}

export function snapshot(routes: RouteInput[], over: Partial<EngineSnapshot> = {}): EngineSnapshot {
  return {
    nowMs: 100_000,
    at: '2026-01-01T00:00:00.000Z',
    slots: 1,
    gatewayUtilisation: 0.2,
    replicaUtilisation: 0.2,
    variants: new Map([['m', new Map(FAMILY.map((v) => [v.name, v]))]]),
    routes,
    params: DEFAULT_ENGINE_PARAMS,
    ...over,
  };
}

/** A state that has sat at `position` on the full ladder for a long time. */
export function settled(position: number, extra: Partial<RouteEngineState> = {}): RouteEngineState {
  return { ...INITIAL_STATE, position, lastSwitchMs: 0, ladder: ['tiny', 'small', 'cnn', 'large'], ...extra };
}

export function mix(s: EngineSnapshot, route = 'r'): Record<string, number> {
  const d = decide(s).decisions.get(route);
  assert.ok(d !== undefined);
  return Object.fromEntries(d.variants.map((v) => [v.variant, v.share]));
}

// A host that stalls 0.4% of the time (what this project's bench machine did before the request path stopped
// promoting a per-request AbortSignal): the trade is pinned with these numbers, not the defaults.
export const STALLY = { params: { ...DEFAULT_ENGINE_PARAMS, stallShare: 0.004 } };
