// The deploy gates' pure decisions: which gates a candidate revision must pass, in order, and how each gate's
// measurements are judged. The pipeline (deploy-pipeline.ts) runs them; the runtime only measures.
import type { ErrorCode } from '../core/errors.js';
import type { TensorSpec } from '../core/types.js';

export type GateName = 'load' | 'golden' | 'accuracy' | 'latency';

export interface Verdict {
  readonly passed: boolean;
  readonly detail: string;
  /** The headline number (accuracy, slowdown), stored with the gate's result. */
  readonly value?: number;
  /** The error a failure answers with. */
  readonly code?: ErrorCode;
}

/** The gates in the order they run: cheap and certain first, the eval set and the latency sweep last. */
export function gatePlan(declared: { golden: boolean; evalSet: boolean }): GateName[] {
  const plan: GateName[] = ['load'];
  if (declared.golden) plan.push('golden');
  if (declared.evalSet) plan.push('accuracy');
  plan.push('latency');
  return plan;
}

export interface ReplicaLoadReport {
  readonly replica: string;
  readonly code?: string;
  readonly detail: string;
  readonly signature?: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] };
}

function specs(list: readonly TensorSpec[]): string {
  return list.map((t) => `${t.name}:${t.datatype}[${t.shape.join(',')}]`).join(' ');
}

/** Load failures whose own code the gate answers with: the file's fault, or a runtime node's (named in the detail). */
const PASSED_ON = new Set<string>([
  'SLOGATE_ERR_NOT_ONNX',
  'SLOGATE_ERR_SIGNATURE_MISMATCH',
  'SLOGATE_ERR_NODE_REVISION',
]);

/** Loads on every replica, and the inputs and outputs match the model's signature exactly (names, types, shapes, order). */
export function judgeLoad(
  loads: readonly ReplicaLoadReport[],
  expected: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
): Verdict {
  if (loads.length === 0) return { passed: false, detail: 'no replica to load it on', code: 'SLOGATE_ERR_MODEL_LOAD' };
  for (const l of loads) {
    if (l.signature === undefined) {
      const code = l.code !== undefined && PASSED_ON.has(l.code) ? (l.code as ErrorCode) : 'SLOGATE_ERR_MODEL_LOAD';
      return { passed: false, detail: `replica ${l.replica}: ${l.detail}`, code };
    }
    for (const side of ['inputs', 'outputs'] as const) {
      const want = specs(expected[side]);
      const got = specs(l.signature[side]);
      if (want !== got)
        return {
          passed: false,
          detail: `replica ${l.replica}: ${side} ${got} differ from the model's ${want}`,
          code: 'SLOGATE_ERR_SIGNATURE_MISMATCH',
        };
    }
  }
  return { passed: true, detail: `loaded on ${loads.length} replica(s), signature matches` };
}

export interface AccuracyInputs {
  readonly measured: number;
  /** The highest minAccuracy of the routes that may use the variant, if any sets one. */
  readonly minAccuracy: number | undefined;
  /** The active revision's accuracy on the same eval set (undefined: unknown). */
  readonly active: number | undefined;
  readonly maxDrop: number;
}

/** At least the routes' minAccuracy where one is set, else no more than maxDrop below the active revision. */
export function judgeAccuracy(a: AccuracyInputs): Verdict {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const floor = a.minAccuracy ?? (a.active === undefined ? undefined : a.active - a.maxDrop);
  const rule =
    a.minAccuracy !== undefined
      ? `minAccuracy ${pct(a.minAccuracy)}`
      : a.active === undefined
        ? 'no floor (active accuracy unknown)'
        : `active ${pct(a.active)} - maxAccuracyDrop ${pct(a.maxDrop)}`;
  // A little slack for rounding to four digits.
  const passed = floor === undefined || a.measured >= floor - 1e-9;
  const verdict: Verdict = {
    passed,
    detail: `accuracy ${pct(a.measured)} ${passed ? '>=' : '<'} ${floor === undefined ? 'any' : pct(floor)} (${rule})`,
    value: a.measured,
  };
  return passed ? verdict : { ...verdict, code: 'SLOGATE_ERR_GATE_FAILED' };
}

export interface SweepPoints {
  readonly points: readonly { rows: number; p50Ms: number }[];
  readonly hopMs: number;
}

/** Worker time below which a measurement is timer noise. */
const MIN_SERVICE_MS = 0.05;

/**
 * The candidate's service time (p50 less the hop, which is the same for both) at the largest batch size both
 * profiles measured, against the active revision's: the ratio may be at most maxSlowdown. The largest batch, because
 * it does the most work per run: the smallest take microseconds and their ratios are mostly scheduling noise.
 */
export function judgeLatency(candidate: SweepPoints, active: SweepPoints, maxSlowdown: number): Verdict {
  const common = candidate.points
    .map((p) => ({ c: p, a: active.points.find((x) => x.rows === p.rows) }))
    .filter((x) => x.a !== undefined)
    .sort((x, y) => y.c.rows - x.c.rows)[0];
  if (common === undefined || common.a === undefined)
    return { passed: false, detail: 'no batch size measured for both revisions', code: 'SLOGATE_ERR_GATE_FAILED' };
  const c = Math.max(MIN_SERVICE_MS, common.c.p50Ms - candidate.hopMs);
  const base = Math.max(MIN_SERVICE_MS, common.a.p50Ms - active.hopMs);
  const ratio = Math.round((c / base) * 100) / 100;
  const passed = ratio <= maxSlowdown;
  const detail = `${common.c.rows} rows: ${round3(c)} ms, ${ratio}x the active revision's ${round3(base)} ms (limit ${maxSlowdown}x)`;
  return passed ? { passed, detail, value: ratio } : { passed, detail, value: ratio, code: 'SLOGATE_ERR_GATE_FAILED' };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export type GoldenExpectation =
  | { readonly output: string; readonly argmax: readonly number[] }
  | { readonly output: string; readonly data: readonly number[]; readonly atol: number };

/** One case's answer: its output tensors' values, or the error its run failed with. */
export type GoldenAnswer = ReadonlyMap<string, ArrayLike<number>> | Error;

/** Every case answered, and as expected: the same class per row, or every value within the tolerance. */
export function judgeGolden(expected: readonly GoldenExpectation[], answers: readonly GoldenAnswer[]): Verdict {
  const fail = (detail: string): Verdict => ({ passed: false, detail, code: 'SLOGATE_ERR_GATE_FAILED' });
  for (const [i, want] of expected.entries()) {
    const got = answers[i];
    if (got === undefined) return fail(`case ${i}: no answer`);
    if (got instanceof Error) return fail(`case ${i}: ${got.message}`);
    const out = got.get(want.output);
    if (out === undefined) return fail(`case ${i}: no output '${want.output}'`);
    if ('argmax' in want) {
      const classes = out.length / want.argmax.length;
      for (const [row, label] of want.argmax.entries()) {
        let best = 0;
        for (let k = 1; k < classes; k++)
          if ((out[row * classes + k] as number) > (out[row * classes + best] as number)) best = k;
        if (best !== label) return fail(`case ${i} row ${row}: class ${best}, expected ${label}`);
      }
    } else {
      if (out.length !== want.data.length) return fail(`case ${i}: ${out.length} values, expected ${want.data.length}`);
      for (let k = 0; k < out.length; k++)
        if (!(Math.abs((out[k] as number) - (want.data[k] as number)) <= want.atol))
          return fail(`case ${i} value ${k}: ${out[k]}, expected ${want.data[k]} +- ${want.atol}`);
    }
  }
  return { passed: true, detail: `${expected.length} golden case(s) reproduced`, value: expected.length };
}
