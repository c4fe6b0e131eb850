// One bench run against one V2 endpoint: metadata -> pre-encoded inputs -> schedule -> warm-up -> /metrics scrape ->
// the measured run (open loop from the schedule, or closed loop; both through the bench's own client) -> scrape ->
// summary. Used by `slogate bench` and, once per policy and load, by `slogate bench compare`.
import { availableParallelism, cpus } from 'node:os';
import type { EvalSet } from '../runtime/eval-set.js';
import { closedLoopRecorded } from './closed-loop.js';
import { buildInputs, fetchMetadata, type RouteInputs } from './inputs.js';
import { makePool, openConnections, openLoop } from './open-loop.js';
import type { ProgressSink } from './progress.js';
import { counterDelta, type Scrape, type ServerCounters, scrape } from './prom.js';
import type { RunRecords } from './records.js';
import { buildSchedule, describeLoad, type LoadSpec, type Schedule } from './schedule.js';
import { type RunSummary, summarize } from './summary.js';
import type { Protocol } from './v2-requests.js';

/** Connections opened before an open-loop run (a step needs them at once; see openConnections). */
const PREOPEN_CONNECTIONS = 64;

export type LoadMode =
  | { readonly kind: 'closed'; readonly connections: number }
  | { readonly kind: 'open'; readonly load: LoadSpec };

export interface BenchOptions {
  readonly url: string;
  /** Route of synthetic loads and of the closed loop (a trace names its own). */
  readonly route: string;
  readonly mode: LoadMode;
  readonly protocol: Protocol;
  readonly inputs: 'eval' | 'random';
  readonly evalSet?: EvalSet | undefined;
  readonly durationS: number;
  readonly maxRequests: number;
  readonly seed: number;
  /** Deadline of a route's requests (its SLO p99), unless a trace row gives one. */
  readonly sloMs: (route: string) => number;
  readonly warmupS: number;
  /**
   * Open loop: the warm-up runs straight into the measured window, with no pause in which the server goes idle. A
   * step from idle costs a server a transient of its own (a capacity probe measures the steady state). The server's
   * counters are not read then (`server` is null): reading them at the boundary would disturb the window.
   */
  readonly continuousWarmup?: boolean | undefined;
  /** Connections of the open loop's pool (requests beyond it wait inside the client, still timed from schedule). */
  readonly maxConnections: number;
  readonly timeoutMs?: number | undefined;
  /** Largest acceptable p99 sender lag; default max(5 ms, 10% of the tightest deadline). */
  readonly lagBoundMs?: number | undefined;
  readonly progress?: ProgressSink;
}

export interface ServerRouteStats extends ServerCounters {
  readonly costPer1000Answers: number | null;
}

export interface BenchResult {
  readonly kind: 'slogate-bench-run';
  readonly meta: {
    readonly url: string;
    readonly mode: 'open' | 'closed';
    readonly load: string;
    readonly protocol: Protocol;
    readonly inputs: 'eval' | 'random';
    readonly seed: number;
    readonly durationS: number;
    readonly maxRequests: number;
    readonly warmupS: number;
    readonly connections: number;
    readonly startedAt: string;
    readonly host: string;
  };
  readonly summary: RunSummary;
  /** Per route, from the server's /metrics (null when it has none). */
  readonly server: Readonly<Record<string, ServerRouteStats>> | null;
  readonly sender: { readonly cpu: number; readonly peakInflight: number; readonly wallMs: number };
  /** False when the open-loop sender fell behind its schedule (see summary.lag): the numbers are not the server's. */
  readonly valid: boolean;
  readonly problems: readonly string[];
}

export function hostDescription(): string {
  return `${cpus()[0]?.model?.trim() ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}`;
}

export async function prepareInputs(
  o: Pick<BenchOptions, 'url' | 'protocol' | 'inputs' | 'evalSet' | 'seed'>,
  routes: readonly string[],
  binaryOutputs: boolean,
): Promise<RouteInputs[]> {
  const out: RouteInputs[] = [];
  for (const route of routes) {
    const meta = await fetchMetadata(o.url, route);
    out.push(
      buildInputs(route, meta, {
        protocol: o.protocol,
        source: o.inputs,
        evalSet: o.evalSet,
        count: 2000,
        seed: o.seed,
        binaryOutputs,
      }),
    );
  }
  return out;
}

/** The warm-up: Poisson at the schedule's first-second rate, on its first route, for o.warmupS. */
function warmUpSchedule(o: BenchOptions, schedule: Schedule): Schedule {
  const firstSecond = schedule.atMs.findIndex((t) => t >= 1000);
  const rate = Math.max(1, firstSecond < 0 ? schedule.atMs.length : firstSecond);
  return buildSchedule(
    { kind: 'constant', rate, arrivals: 'poisson' },
    {
      durationMs: o.warmupS * 1000,
      maxRequests: o.maxRequests,
      seed: o.seed + 1,
      route: schedule.routes[0] ?? o.route,
      deadlineMs: o.sloMs,
    },
  );
}

export function scheduleFor(o: BenchOptions, load: LoadSpec): Schedule {
  return buildSchedule(load, {
    durationMs: o.durationS * 1000,
    maxRequests: o.maxRequests,
    seed: o.seed,
    route: o.route,
    deadlineMs: o.sloMs,
  });
}

export async function runBench(o: BenchOptions, prepared?: readonly RouteInputs[]): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const problems: string[] = [];
  let records: RunRecords;
  let durationMs: number;
  let lagBoundMs: number | undefined;
  let sender: BenchResult['sender'];
  let routes: readonly string[];
  let before: Scrape | undefined;
  let after: Scrape | undefined;
  let connections: number;

  if (o.mode.kind === 'open') {
    const schedule = scheduleFor(o, o.mode.load);
    routes = schedule.routes;
    const inputs = prepared ?? (await prepareInputs(o, schedule.routes, true));
    const tightest = schedule.deadlineMs.length > 0 ? Math.min(...new Set(schedule.deadlineMs)) : o.sloMs(o.route);
    lagBoundMs = o.lagBoundMs ?? Math.max(5, 0.1 * tightest);
    const timeoutMs = o.timeoutMs ?? Math.max(5000, 10 * tightest);
    connections = o.maxConnections;
    const pool = makePool(o.url, o.maxConnections, timeoutMs);
    try {
      // The warm-up: the first second's rate on the first route (its requests go to inputs[0] either way).
      const warm = o.warmupS > 0 ? warmUpSchedule(o, schedule) : undefined;
      const continuous = o.continuousWarmup === true && warm !== undefined;
      if (warm !== undefined && !continuous)
        await openLoop({ url: o.url, schedule: warm, inputs, pool, timeoutMs, drainMs: Math.min(timeoutMs, 2000) });
      await openConnections(pool, Math.min(o.maxConnections, PREOPEN_CONNECTIONS));
      if (!continuous) before = await scrape(o.url);
      const r = await openLoop({
        url: o.url,
        schedule,
        leadIn: continuous ? warm : undefined,
        inputs,
        pool,
        maxConnections: o.maxConnections,
        timeoutMs,
        drainMs: timeoutMs,
        onProgress: o.progress,
      });
      if (!continuous) after = await scrape(o.url);
      records = r.records;
      durationMs = schedule.durationMs;
      sender = { cpu: round3(r.senderCpu), peakInflight: r.peakInflight, wallMs: Math.round(r.wallMs) };
      if (r.peakInflight >= o.maxConnections) {
        problems.push(
          `all ${o.maxConnections} client connections were busy at some point: later requests waited inside the client (still timed from their schedule)`,
        );
      }
    } finally {
      await pool.destroy();
    }
  } else {
    routes = [o.route];
    const inputs = prepared?.[0] ?? ((await prepareInputs(o, [o.route], true))[0] as RouteInputs);
    const timeoutMs = o.timeoutMs ?? Math.max(5000, 10 * o.sloMs(o.route));
    connections = o.mode.connections;
    const base = { url: o.url, inputs, connections: o.mode.connections, deadlineMs: o.sloMs(o.route), timeoutMs };
    if (o.warmupS > 0)
      await closedLoopRecorded({
        ...base,
        durationS: o.warmupS,
        maxRequests: Math.max(o.mode.connections, Math.min(o.maxRequests, 100_000)),
      });
    before = await scrape(o.url);
    const r = await closedLoopRecorded({
      ...base,
      durationS: o.durationS,
      maxRequests: Math.max(o.mode.connections, o.maxRequests),
      onProgress: o.progress,
    });
    after = await scrape(o.url);
    records = r.records;
    durationMs = r.wallMs;
    sender = { cpu: round3(r.senderCpu), peakInflight: o.mode.connections, wallMs: Math.round(r.wallMs) };
  }

  const summary = summarize(records, { durationMs, lagBoundMs });
  if (summary.lag !== null && !summary.lag.ok) {
    problems.push(
      `the sender fell behind its schedule: p99 send lag ${summary.lag.p99Ms} ms > ${summary.lag.boundMs} ms; these numbers measure the load generator, not the server`,
    );
  }
  if (records.n >= o.maxRequests && o.mode.kind === 'closed')
    problems.push(`stopped at the request cap (${o.maxRequests}) before the duration`);
  let server: Record<string, ServerRouteStats> | null = null;
  for (const route of routes) {
    const c = counterDelta(before, after, route);
    if (c === undefined) continue;
    const completed = summary.routes.find((r) => r.route === route)?.completed ?? 0;
    server ??= {};
    server[route] = { ...c, costPer1000Answers: c.cost !== null && completed > 0 ? (c.cost / completed) * 1000 : null };
  }
  return {
    kind: 'slogate-bench-run',
    meta: {
      url: o.url,
      mode: o.mode.kind,
      load: o.mode.kind === 'open' ? describeLoad(o.mode.load) : `closed loop, ${o.mode.connections} connections`,
      protocol: o.protocol,
      inputs: o.inputs,
      seed: o.seed,
      durationS: o.durationS,
      maxRequests: o.maxRequests,
      warmupS: o.warmupS,
      connections,
      startedAt,
      host: hostDescription(),
    },
    summary,
    server,
    sender,
    valid: summary.lag === null || summary.lag.ok,
    problems,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
