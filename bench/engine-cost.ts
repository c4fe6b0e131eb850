// `npm run bench:engine`: what one engine decision costs. Times decide() on snapshots of R routes x V variants
// (synthetic profiles shaped like the digits family) in this process, after warm-up, and prints the per-call cost.
// The engine runs every 250 ms beside the request path, so this is its whole CPU budget.
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import {
  DEFAULT_ENGINE_PARAMS,
  decide,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
} from '../policies/engine/index.js';
import type { VariantModel } from '../policies/latency-model.js';
import type { RateSnapshot } from '../policies/rate-estimator.js';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10' },
    variants: { type: 'string', default: '6' },
    iterations: { type: 'string', default: '20000' },
  },
});
const R = Number(values.routes);
const V = Number(values.variants);
const N = Number(values.iterations);

function variant(i: number): VariantModel {
  const maxBatch = 64;
  const p50 = new Float64Array(maxBatch + 1);
  const p99 = new Float64Array(maxBatch + 1);
  // From cheap and inaccurate to slow and accurate.
  const base = 0.1 * (i + 1);
  const perRow = 0.005 * 3 ** i;
  for (let b = 1; b <= maxBatch; b++) {
    p50[b] = base + perRow * b;
    p99[b] = 1.3 * (p50[b] as number);
  }
  return {
    name: `v${i}`,
    accuracy: 0.9 + (0.09 * i) / Math.max(1, V - 1),
    table: { p50, p99 },
    maxBatch,
    pricePerSlotMs: 1e-8,
  };
}

const family = Array.from({ length: V }, (_, i) => variant(i));
const rate = (rps: number): RateSnapshot => ({ instant: rps, fast: rps, slow: rps, peak: rps, burstiness: 1.3 });

function routes(states: Map<string, RouteEngineState> | undefined, load: number): RouteInput[] {
  return Array.from({ length: R }, (_, i) => ({
    name: `r${i}`,
    model: 'm',
    priority: i % 3 === 0 ? -1 : i,
    objective: i % 4 === 3 ? 'min-cost' : 'max-accuracy',
    utilityCostWeight: 0.001,
    slo: { p99Ms: 10 + 5 * i, ...(i % 2 === 0 ? { minAccuracy: 0.92 } : {}) },
    policy: { kind: 'adaptive' },
    allowed: family.map((v) => v.name),
    rate: rate(load * (20 + 5 * i)),
    observedP99Ms: 5 + i,
    observedSinceSwitchP99Ms: Number.NaN,
    overheadMs: 0.5,
    queuedRows: 0,
    state: states?.get(`r${i}`) ?? INITIAL_STATE,
    windowPrediction: { p99Ms: 6 + i, correction: 1 },
    outcomes: { answered: Math.round(load * (20 + 5 * i) * 0.25), missed: 0 },
  }));
}

function snapshot(states?: Map<string, RouteEngineState>, nowMs = 100_000, load = 1): EngineSnapshot {
  return {
    nowMs,
    at: new Date(0).toISOString(),
    slots: 2,
    gatewayUtilisation: 0.3,
    replicaUtilisation: 0.5,
    variants: new Map([['m', new Map(family.map((v) => [v.name, v]))]]),
    routes: routes(states, load),
    params: DEFAULT_ENGINE_PARAMS,
  };
}

function time(label: string, make: (i: number) => EngineSnapshot): void {
  for (let i = 0; i < Math.min(2000, N); i++) decide(make(i));
  const snaps = Array.from({ length: 256 }, (_, i) => make(i));
  const samples = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const s = snaps[i & 255] as EngineSnapshot;
    const t0 = performance.now();
    decide(s);
    samples[i] = (performance.now() - t0) * 1000;
  }
  samples.sort();
  const q = (p: number) => (samples[Math.min(N - 1, Math.floor(p * N))] as number).toFixed(1);
  const mean = samples.reduce((a, b) => a + b, 0) / N;
  console.log(`| ${label} | ${R} x ${V} | ${mean.toFixed(1)} | ${q(0.5)} | ${q(0.99)} |`);
}

console.log(
  `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}; ${N} calls each\n`,
);
console.log('| decision | routes x variants | mean us | p50 us | p99 us |');
console.log('| --- | --- | ---: | ---: | ---: |');
time('first decision (no state: full search per route)', () => snapshot());
const settled = decide(snapshot()).states as Map<string, RouteEngineState>;
time('steady tick, routes within capacity', (i) => snapshot(settled, 100_000 + 250 * (i + 1)));
const pressed = decide(snapshot(undefined, 100_000, 4)).states as Map<string, RouteEngineState>;
time('tick under pressure (4x load: shared-capacity downgrades)', (i) => snapshot(pressed, 100_000 + 250 * (i + 1), 4));
