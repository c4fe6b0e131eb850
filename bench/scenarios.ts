// The loads of `slogate bench compare`, as multiples of a base rate C (given with --rate, or the capacity at SLO of
// the most accurate variant with its best fixed batching, C_L in the evaluation protocol), and the bounded search
// that finds a capacity at SLO. Full versions follow the protocol (steady 60 s; step 0.5C -> 3C for 10 s -> 0.5C;
// MMPP-2 with a 5x burst, mean dwell 5 s / 1 s; a Poisson sweep 0.3..2x); --quick versions keep the shapes, shorter.
import type { LoadSpec } from './schedule.js';

export type ScenarioName = 'steady' | 'step' | 'bursty' | 'sweep';
export const SCENARIOS: readonly ScenarioName[] = ['steady', 'step', 'bursty', 'sweep'];

export interface ScenarioRun {
  /** Names the run in tables and files: the scenario, or the sweep factor. */
  readonly label: string;
  readonly load: LoadSpec;
  readonly durationS: number;
  /** Multiple of the base rate (sweep points). */
  readonly factor?: number;
}

export interface ScenarioPlan {
  readonly warmupS: number;
  /** Sweep: multiples of the base rate to run after the capacity search. */
  readonly factors: readonly number[];
  /** Capacity search: probe length and count. */
  readonly probeS: number;
  readonly maxProbes: number;
  readonly durationS: number;
}

export function scenarioPlan(name: ScenarioName, quick: boolean, durationS?: number): ScenarioPlan {
  // --quick must finish in under two minutes with eight contenders: short probes, few of them (a coarse capacity).
  const base = {
    warmupS: quick ? 0.3 : 5,
    factors: quick ? [0.5, 1, 2] : [0.3, 0.6, 0.9, 1.2, 1.5, 2],
    probeS: quick ? 1 : 5,
    maxProbes: quick ? 3 : 10,
  };
  const d: Record<ScenarioName, [number, number]> = {
    steady: [6, 60],
    step: [9, 40],
    bursty: [10, 60],
    sweep: [2, 30],
  };
  return { ...base, durationS: durationS ?? (d[name] as [number, number])[quick ? 0 : 1] };
}

/** The runs of a scenario at base rate C (for the sweep: the points after the capacity search). */
export function scenarioRuns(name: ScenarioName, baseRate: number, plan: ScenarioPlan): ScenarioRun[] {
  const C = baseRate;
  const D = plan.durationS;
  switch (name) {
    case 'steady':
      return [{ label: 'steady', load: { kind: 'constant', rate: C, arrivals: 'poisson' }, durationS: D, factor: 1 }];
    case 'step': {
      // Low for a quarter of the run, 3x C for a quarter, low again for the rest.
      const at = Math.round(D / 4);
      const len = Math.max(1, Math.round(D / 4));
      return [
        {
          label: 'step',
          load: { kind: 'step', low: 0.5 * C, high: 3 * C, atS: at, forS: len, arrivals: 'poisson' },
          durationS: D,
        },
      ];
    }
    case 'bursty': {
      // Mean dwell 5 s low / 1 s high (scaled down in short runs); 0.6C and 3C average to C.
      const scale = Math.min(1, D / 30);
      return [
        {
          label: 'bursty',
          load: { kind: 'bursty', low: 0.6 * C, high: 3 * C, meanLowS: 5 * scale, meanHighS: 1 * scale },
          durationS: D,
        },
      ];
    }
    case 'sweep':
      return plan.factors.map((f) => ({
        label: `${f}x`,
        load: { kind: 'constant', rate: f * C, arrivals: 'poisson' },
        durationS: D,
        factor: f,
      }));
  }
}

export interface Probe {
  readonly rate: number;
  readonly ok: boolean;
  readonly note?: string;
}

export interface CapacityOptions {
  readonly startRate: number;
  readonly maxProbes: number;
  readonly minRate: number;
  readonly maxRate: number;
  /** Stop bisecting when (hi - lo) / lo is below this. */
  readonly tolerance: number;
}

/**
 * The highest rate that passes `probe`, by a bounded search: double (or halve) from the start rate until the answer
 * flips, then bisect; at most maxProbes probes. Returns 0 when no rate down to minRate passed.
 */
export async function findCapacity(
  probe: (rate: number) => Promise<Probe>,
  o: CapacityOptions,
): Promise<{ capacity: number; probes: Probe[] }> {
  let lo = 0;
  let hi = Number.POSITIVE_INFINITY;
  let rate = Math.min(o.maxRate, Math.max(o.minRate, o.startRate));
  const probes: Probe[] = [];
  while (probes.length < o.maxProbes) {
    const p = await probe(rate);
    probes.push(p);
    if (p.ok) lo = rate;
    else hi = rate;
    if (lo > 0 && hi < Number.POSITIVE_INFINITY && (hi - lo) / lo <= o.tolerance) break;
    let next: number;
    if (hi === Number.POSITIVE_INFINITY) {
      if (rate >= o.maxRate) break;
      next = Math.min(o.maxRate, rate * 2);
    } else if (lo === 0) {
      next = rate / 2;
      if (next < o.minRate) break;
    } else {
      next = (lo + hi) / 2;
    }
    rate = next;
  }
  return { capacity: lo, probes };
}
