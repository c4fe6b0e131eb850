// One probe of a capacity search (bench/capacity.ts, bench/shadow-capacity.ts): open-loop Poisson at a rate on
// route r, binary protocol, and whether 99% of the offered requests were answered with p99 within the target.
import type { EvalSet } from '../runtime/eval-set.js';
import type { RouteInputs } from './inputs.js';
import { runBench } from './run.js';

export interface CapacityProbe {
  readonly ok: boolean;
  readonly p99Ms: number | null;
  /** Requests answered in the measured window (after the warm-up). */
  readonly answered: number;
  /** `rate/s ok|miss (p99 … ms[, sender lag])`, for the report's probe list. */
  readonly note: string;
}

export async function probeCapacity(
  o: {
    url: string;
    rate: number;
    durationS: number;
    p99Ms: number;
    evalSet: EvalSet | undefined;
    /** Unmeasured lead-in, sent straight into the probe (default 1 s). */
    warmupS?: number;
  },
  inputs: readonly RouteInputs[],
): Promise<CapacityProbe> {
  const { url, rate, durationS, p99Ms, evalSet } = o;
  const r = await runBench(
    {
      url,
      route: 'r',
      mode: { kind: 'open', load: { kind: 'constant', rate, arrivals: 'poisson' } },
      protocol: 'binary',
      inputs: evalSet === undefined ? 'random' : 'eval',
      evalSet,
      durationS,
      maxRequests: Math.ceil(rate * durationS * 2 + 100),
      seed: 1,
      sloMs: () => p99Ms,
      warmupS: o.warmupS ?? 1,
      // The steady state at this rate: a warm-up, then a pause, then the probe would measure a step from idle.
      continuousWarmup: true,
      maxConnections: 256,
    },
    inputs,
  );
  const s = r.summary.overall;
  const ok = (s.attainment.overOffered ?? 0) >= 0.99 && (s.latency.p99Ms ?? Number.POSITIVE_INFINITY) <= p99Ms;
  const note = `${Math.round(rate)}/s ${ok ? 'ok' : 'miss'} (p99 ${s.latency.p99Ms} ms${r.valid ? '' : ', sender lag'})`;
  return { ok, p99Ms: s.latency.p99Ms, answered: s.latency.count, note };
}
