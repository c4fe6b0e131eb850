// Open-loop schedules, computed whole before the first request: arrival times (ms from start), route and deadline
// per request. Rates are piecewise constant (constant, step, two-state MMPP) and arrivals are placed by inverting the
// cumulative rate: Poisson arrivals are unit-mean exponential steps of it, uniform ones unit steps, so counts and
// rates are exact and a seed reproduces every arrival.
import { exponential, mulberry32 } from '../core/prng.js';

export type Arrivals = 'poisson' | 'uniform';

export type LoadSpec =
  | { readonly kind: 'constant'; readonly rate: number; readonly arrivals: Arrivals }
  | {
      readonly kind: 'step';
      readonly low: number;
      readonly high: number;
      readonly atS: number;
      readonly forS: number;
      readonly arrivals: Arrivals;
    }
  | {
      readonly kind: 'bursty';
      readonly low: number;
      readonly high: number;
      readonly meanLowS: number;
      readonly meanHighS: number;
    }
  | {
      readonly kind: 'clumped';
      readonly low: number;
      readonly high: number;
      readonly atS: number;
      readonly forS: number;
      readonly meanGapMs: number;
    }
  | { readonly kind: 'trace'; readonly rows: readonly TraceRow[] };

export interface TraceRow {
  readonly arrivalMs: number;
  readonly route: string;
  readonly deadlineMs?: number | undefined;
}

/** A stretch of time at one rate (requests per second). */
export interface Segment {
  readonly startMs: number;
  readonly endMs: number;
  readonly rate: number;
}

export interface Schedule {
  /** Scheduled send times, ms from the start, ascending. */
  readonly atMs: Float64Array;
  /** Index into `routes` per request. */
  readonly route: Uint16Array;
  /** Per request: ms after its scheduled time by which the answer counts as on time. */
  readonly deadlineMs: Float64Array;
  readonly routes: readonly string[];
  readonly durationMs: number;
  readonly description: string;
}

export interface ScheduleOptions {
  readonly durationMs: number;
  /** Hard cap: the schedule holds at most this many requests (the first ones). */
  readonly maxRequests: number;
  readonly seed: number;
  /** Route of synthetic schedules (traces name their own). */
  readonly route: string;
  /** Deadline of a route's requests when the trace gives none. */
  readonly deadlineMs: (route: string) => number;
}

export function constantSegments(rate: number, durationMs: number): Segment[] {
  return [{ startMs: 0, endMs: durationMs, rate }];
}

/** LOW until atS, HIGH for forS seconds, then LOW again until the end. */
export function stepSegments(low: number, high: number, atS: number, forS: number, durationMs: number): Segment[] {
  const at = Math.min(atS * 1000, durationMs);
  const end = Math.min((atS + forS) * 1000, durationMs);
  return [
    { startMs: 0, endMs: at, rate: low },
    { startMs: at, endMs: end, rate: high },
    { startMs: end, endMs: durationMs, rate: low },
  ].filter((s) => s.endMs > s.startMs);
}

/** Two-state MMPP: exponential dwell times (means meanLowS, meanHighS), starting in the low state. */
export function mmppSegments(
  rand: () => number,
  low: number,
  high: number,
  meanLowS: number,
  meanHighS: number,
  durationMs: number,
): Segment[] {
  const out: Segment[] = [];
  let t = 0;
  let isHigh = false;
  while (t < durationMs) {
    const dwell = exponential(rand, (isHigh ? meanHighS : meanLowS) * 1000);
    const end = Math.min(durationMs, t + dwell);
    if (end > t) out.push({ startMs: t, endMs: end, rate: isHigh ? high : low });
    t = end;
    isHigh = !isHigh;
  }
  return out;
}

/**
 * Arrival times for piecewise-constant rates: the k-th arrival is where the cumulative rate reaches the k-th point of
 * a unit-rate process (0, 1, 2, ... for uniform; sums of Exp(1) for Poisson), so a uniform 100/s over 10 s gives
 * exactly 1000 arrivals, 10 ms apart, starting at 0.
 */
export function arrivalTimes(
  segments: readonly Segment[],
  arrivals: Arrivals,
  rand: () => number,
  maxRequests: number,
): Float64Array {
  const step = arrivals === 'uniform' ? () => 1 : () => exponential(rand, 1);
  const out: number[] = [];
  let base = 0;
  let next = arrivals === 'uniform' ? 0 : step();
  for (const s of segments) {
    if (s.rate <= 0) continue;
    const perMs = s.rate / 1000;
    const end = base + perMs * (s.endMs - s.startMs);
    while (next < end && out.length < maxRequests) {
      out.push(s.startMs + (next - base) / perMs);
      next += step();
    }
    base = end;
    if (out.length >= maxRequests) break;
  }
  return Float64Array.from(out);
}

/** Segments of a synthetic load (the MMPP draws its states from the PRNG, before any arrival). */
export function loadSegments(
  load: Exclude<LoadSpec, { kind: 'trace' }>,
  durationMs: number,
  rand: () => number,
): Segment[] {
  switch (load.kind) {
    case 'constant':
      return constantSegments(load.rate, durationMs);
    case 'step':
      return stepSegments(load.low, load.high, load.atS, load.forS, durationMs);
    case 'bursty':
      return mmppSegments(rand, load.low, load.high, load.meanLowS, load.meanHighS, durationMs);
    case 'clumped':
      return constantSegments(load.low, durationMs);
  }
}

/**
 * The clumps of a `clumped` load: from atS for forS seconds, HIGH - LOW requests/s more, all of one clump at the same
 * instant, clumps at exponential gaps of mean meanGapMs (how a gateway's event loop, held by a closed-loop flood,
 * hands arrivals on). Merged into the LOW arrivals, ascending.
 */
function withClumps(
  background: Float64Array,
  load: Extract<LoadSpec, { kind: 'clumped' }>,
  durationMs: number,
  rand: () => number,
  maxRequests: number,
): Float64Array {
  const out = Array.from(background);
  const end = Math.min((load.atS + load.forS) * 1000, durationMs);
  const extraPerMs = Math.max(0, load.high - load.low) / 1000;
  for (let t = load.atS * 1000; out.length < maxRequests; ) {
    const gap = exponential(rand, load.meanGapMs);
    t += gap;
    if (t >= end) break;
    const n = Math.round(extraPerMs * gap);
    for (let k = 0; k < n && out.length < maxRequests; k++) out.push(t);
  }
  return Float64Array.from(out.sort((a, b) => a - b));
}

export function buildSchedule(load: LoadSpec, o: ScheduleOptions): Schedule {
  if (load.kind === 'trace') return traceSchedule(load.rows, o);
  const rand = mulberry32(o.seed);
  const segments = loadSegments(load, o.durationMs, rand);
  const background = arrivalTimes(segments, 'arrivals' in load ? load.arrivals : 'poisson', rand, o.maxRequests);
  const atMs = load.kind === 'clumped' ? withClumps(background, load, o.durationMs, rand, o.maxRequests) : background;
  const deadline = o.deadlineMs(o.route);
  return {
    atMs,
    route: new Uint16Array(atMs.length),
    deadlineMs: new Float64Array(atMs.length).fill(deadline),
    routes: [o.route],
    durationMs: o.durationMs,
    description: describeLoad(load),
  };
}

function traceSchedule(rows: readonly TraceRow[], o: ScheduleOptions): Schedule {
  const kept = rows.filter((r) => r.arrivalMs < o.durationMs).slice(0, o.maxRequests);
  const routes: string[] = [];
  const index = new Map<string, number>();
  const n = kept.length;
  const atMs = new Float64Array(n);
  const route = new Uint16Array(n);
  const deadlineMs = new Float64Array(n);
  kept.forEach((r, i) => {
    let k = index.get(r.route);
    if (k === undefined) {
      k = routes.push(r.route) - 1;
      index.set(r.route, k);
    }
    atMs[i] = r.arrivalMs;
    route[i] = k;
    deadlineMs[i] = r.deadlineMs ?? o.deadlineMs(r.route);
  });
  const last = n > 0 ? (atMs[n - 1] as number) : 0;
  return {
    atMs,
    route,
    deadlineMs,
    routes,
    durationMs: Math.min(o.durationMs, Math.floor(last) + 1),
    description: `trace (${n} requests, ${routes.length} routes)`,
  };
}

/** Parses `arrival_ms,route[,deadline_ms]` lines (an optional header, # comments and blank lines are skipped); sorts by arrival. */
export function parseTrace(text: string, source = 'trace'): TraceRow[] {
  const rows: TraceRow[] = [];
  let first = true;
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) return;
    const f = l.split(',').map((x) => x.trim());
    const isHeader = first && Number.isNaN(Number(f[0]));
    first = false;
    if (isHeader) return;
    const arrivalMs = Number(f[0]);
    const route = f[1] ?? '';
    if (!Number.isFinite(arrivalMs) || arrivalMs < 0)
      throw new Error(`${source}:${i + 1}: arrival_ms must be a non-negative number, got '${f[0]}'`);
    if (route === '') throw new Error(`${source}:${i + 1}: a route is required (arrival_ms,route[,deadline_ms])`);
    let deadlineMs: number | undefined;
    if (f[2] !== undefined && f[2] !== '') {
      deadlineMs = Number(f[2]);
      if (!Number.isFinite(deadlineMs) || deadlineMs <= 0)
        throw new Error(`${source}:${i + 1}: deadline_ms must be a positive number, got '${f[2]}'`);
    }
    rows.push({ arrivalMs, route, deadlineMs });
  });
  return rows.sort((a, b) => a.arrivalMs - b.arrivalMs);
}

const POSITIVE = (name: string, v: string | undefined, allowZero = false): number => {
  const x = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(x) || x < 0 || (!allowZero && x === 0))
    throw new Error(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got '${v}'`);
  return x;
};

/** Parses `--pattern` values: `step:LOW,HIGH,AT,FOR`, `bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S`, `clumped:...`. */
export function parsePattern(spec: string, arrivals: Arrivals): LoadSpec {
  const [kind, args = ''] = spec.split(':', 2);
  const a = args.split(',');
  if (kind === 'step') {
    if (a.length !== 4) throw new Error(`--pattern step:LOW,HIGH,AT,FOR takes 4 numbers, got '${spec}'`);
    return {
      kind: 'step',
      low: POSITIVE('LOW', a[0], true),
      high: POSITIVE('HIGH', a[1], true),
      atS: POSITIVE('AT', a[2], true),
      forS: POSITIVE('FOR', a[3]),
      arrivals,
    };
  }
  if (kind === 'bursty') {
    if (a.length !== 4)
      throw new Error(`--pattern bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S takes 4 numbers, got '${spec}'`);
    return {
      kind: 'bursty',
      low: POSITIVE('LOW', a[0], true),
      high: POSITIVE('HIGH', a[1], true),
      meanLowS: POSITIVE('MEANLOW_S', a[2]),
      meanHighS: POSITIVE('MEANHIGH_S', a[3]),
    };
  }
  if (kind === 'clumped') {
    if (a.length !== 5) throw new Error(`--pattern clumped:LOW,HIGH,AT,FOR,MEANGAP_MS takes 5 numbers, got '${spec}'`);
    return {
      kind: 'clumped',
      low: POSITIVE('LOW', a[0], true),
      high: POSITIVE('HIGH', a[1], true),
      atS: POSITIVE('AT', a[2], true),
      forS: POSITIVE('FOR', a[3]),
      meanGapMs: POSITIVE('MEANGAP_MS', a[4]),
    };
  }
  throw new Error(
    `unknown --pattern '${spec}' (step:LOW,HIGH,AT,FOR, bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S or clumped:LOW,HIGH,AT,FOR,MEANGAP_MS)`,
  );
}

export function describeLoad(load: LoadSpec): string {
  switch (load.kind) {
    case 'constant':
      return `${load.arrivals} ${fmt(load.rate)}/s`;
    case 'step':
      return `step ${fmt(load.low)}/s -> ${fmt(load.high)}/s at ${fmt(load.atS)} s for ${fmt(load.forS)} s (${load.arrivals})`;
    case 'bursty':
      return `bursty MMPP-2 ${fmt(load.low)}/s (mean ${fmt(load.meanLowS)} s) <-> ${fmt(load.high)}/s (mean ${fmt(load.meanHighS)} s)`;
    case 'clumped':
      return `poisson ${fmt(load.low)}/s, ${fmt(load.high)}/s at ${fmt(load.atS)} s for ${fmt(load.forS)} s in clumps (mean gap ${fmt(load.meanGapMs)} ms)`;
    case 'trace':
      return `trace (${load.rows.length} rows)`;
  }
}

/** Long-run mean rate of an MMPP-2 (time-weighted by the mean dwell times). */
export function mmppMeanRate(low: number, high: number, meanLowS: number, meanHighS: number): number {
  return (low * meanLowS + high * meanHighS) / (meanLowS + meanHighS);
}

const fmt = (x: number) => String(Number(x.toFixed(x >= 10 ? 1 : 2)));
