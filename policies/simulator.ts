// What-if before you apply: replays an arrival trace through the real router, admission, tradeoff engine and
// batching scheduler on a simulated clock, with replicas whose service times are drawn from measured latency
// profiles. Deterministic for a seed; seconds of wall time for minutes of traffic.
import { EventEmitter } from 'node:events';
import { ManualClock } from '../core/clock.js';
import type { Config, RouteConfig } from '../core/config.js';
import { type SlogateError, toSlogateError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { Metrics } from '../core/metrics.js';
import { mulberry32, standardNormal } from '../core/prng.js';
import { variantKey } from '../core/types.js';
import type { ProfilePoint } from '../runtime/latency-profile.js';
import type { BatchOutcome, BatchTask, Replica, ReplicaEvents, ReplicaState } from '../runtime/replica.js';
import { Runtime } from '../runtime/runtime.js';
import type { DescribeResult } from '../runtime/worker/messages.js';
import { Controller, type DecisionChange } from './controller.js';
import { Router } from './router.js';
import { RouteSloRecorder } from './slo-recorder.js';

export interface SimArrival {
  readonly atMs: number;
  readonly route: string;
  /** Deadline relative to arrival (ms); the route's p99 target when absent. */
  readonly deadlineMs?: number | undefined;
}

export interface SimOptions {
  /** A parsed config: its routes, models (files must exist; accuracy comes from their metadata) and engine. */
  readonly config: Readonly<Config>;
  /** Measured profile points per "model/variant". */
  readonly profiles: ReadonlyMap<string, readonly ProfilePoint[]>;
  readonly hopMs?: number;
  /** Replica slots to simulate (default: the config's workers, resolved). */
  readonly replicas: number;
  readonly arrivals: readonly SimArrival[];
  readonly seed?: number;
  /** Gateway time per request outside queue and service (ms), or a function of the arrival time (a cold start). */
  readonly overheadMs?: number | ((arrivalMs: number) => number);
  /** Route policy changes applied during the run (as PUT /admin/routes/{route} would). */
  readonly changes?: readonly { readonly atMs: number; readonly route: string; readonly config: RouteConfig }[];
}

export interface SimRouteResult {
  readonly route: string;
  readonly offered: number;
  readonly admitted: number;
  readonly answered: number;
  /** Answered within the deadline. */
  readonly met: number;
  /** Answered late. */
  readonly late: number;
  /** Refused at admission (429). */
  readonly shed: number;
  /** Refused or dropped in a queue (503). */
  readonly dropped: number;
  readonly attainment: number;
  readonly attainmentAdmitted: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Expected accuracy of on-time answers over offered requests. */
  readonly effectiveAccuracy: number;
  /** Mean accuracy of the variants that answered. */
  readonly servedAccuracy: number;
  /** Cost of the answered requests per million (pricing units). */
  readonly costPerMillion: number;
  readonly variantMix: Readonly<Record<string, number>>;
  readonly switches: number;
}

export interface SimResult {
  readonly routes: SimRouteResult[];
  readonly decisions: DecisionChange[];
  readonly simulatedMs: number;
}

/** A replica whose batches take a lognormal time fitted to the profile's p50 and p99 at that batch size. */
export class SimReplica implements Replica {
  readonly kind = 'local' as const;
  readonly slots = 1;
  readonly provider = 'simulated';
  readonly events = new EventEmitter<ReplicaEvents>();
  #outstanding = 0;
  #state: ReplicaState = 'pending';

  constructor(
    readonly id: string,
    private readonly clock: ManualClock,
    private readonly describeResult: DescribeResult,
    private readonly serviceMs: (model: string, variant: string, rows: number) => number,
    private readonly hopMs: number,
  ) {}

  get state(): ReplicaState {
    return this.#state;
  }
  get outstanding(): number {
    return this.#outstanding;
  }

  async start(): Promise<DescribeResult> {
    this.#state = 'ready';
    return this.describeResult;
  }

  run(task: BatchTask): Promise<BatchOutcome> {
    this.#outstanding++;
    const ms = this.serviceMs(task.model, task.variant, task.rows);
    return new Promise((resolve) => {
      this.clock.setTimer(() => {
        this.#outstanding--;
        resolve({
          outputs: [],
          inferMs: Math.max(0, ms - this.hopMs),
          workerMs: Math.max(0, ms - this.hopMs),
          replicaId: this.id,
        });
      }, ms);
    });
  }

  async close(): Promise<void> {
    this.#state = 'closed';
  }
}

function interpolateProfile(points: readonly ProfilePoint[], rows: number, q: 'p50Ms' | 'p99Ms'): number {
  const first = points[0];
  if (first === undefined) return 1;
  if (rows <= first.rows) return first[q];
  for (let i = 1; i < points.length; i++) {
    const b = points[i] as ProfilePoint;
    if (rows <= b.rows) {
      const a = points[i - 1] as ProfilePoint;
      return a[q] + ((b[q] - a[q]) * (rows - a.rows)) / (b.rows - a.rows);
    }
  }
  const last = points[points.length - 1] as ProfilePoint;
  return (last[q] * rows) / last.rows;
}

async function settle(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
}

export async function simulate(o: SimOptions): Promise<SimResult> {
  const clock = new ManualClock(0);
  const rand = mulberry32(o.seed ?? 1);
  const hopMs = o.hopMs ?? 0.1;
  const overheadOf =
    typeof o.overheadMs === 'function' ? o.overheadMs : () => (o.overheadMs as number | undefined) ?? 0.3;
  const cfg = structuredClone(o.config) as Config;
  cfg.runtime.workers = 0;
  cfg.runtime.replicas = [];
  cfg.runtime.profile.enabled = false;
  const sessions = Object.entries(cfg.models).flatMap(([model, m]) =>
    Object.keys(m.variants).map((variant) => ({
      model,
      variant,
      inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 1] }],
      outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 1] }],
    })),
  );
  const describe: DescribeResult = { ok: true, kind: 'describe', provider: 'simulated', sessions };
  const service = (model: string, variant: string, rows: number) => {
    const pts = o.profiles.get(variantKey(model, variant)) ?? [];
    const p50 = interpolateProfile(pts, rows, 'p50Ms');
    const p99 = Math.max(p50, interpolateProfile(pts, rows, 'p99Ms'));
    const sigma = p50 > 0 ? Math.log(p99 / p50) / 2.326 : 0;
    return p50 * Math.exp(sigma * standardNormal(rand));
  };
  const replicas = Array.from(
    { length: Math.max(1, o.replicas) },
    (_, i) => new SimReplica(`sim-${i}`, clock, describe, service, hopMs),
  );
  const metrics = new Metrics({ defaultMetrics: false });
  const runtime = await Runtime.create({ config: cfg, clock, metrics, logger: silentLogger, extraReplicas: replicas });
  await runtime.start();
  runtime.useProfiles(o.profiles, hopMs);
  const price =
    (cfg.runtime.device === 'cpu'
      ? cfg.pricing.cpuCoreHour * (cfg.runtime.intraOpThreads === 'auto' ? 1 : cfg.runtime.intraOpThreads)
      : cfg.pricing.gpuHour) / 3_600_000;
  const router = new Router({ runtime, clock, metrics, routes: cfg.routes });
  const controller = new Controller({
    config: cfg,
    runtime,
    router,
    clock,
    metrics,
    logger: silentLogger,
    pricePerSlotMs: price,
    gatewayUtilisation: () => 0,
  });
  router.setDecisionSource(controller);
  const recorder = new RouteSloRecorder({
    routes: router.routes,
    metrics,
    clock,
    pricePerSlotMs: price,
    onLate: (route) => controller.alarm(route),
  });
  const gate = controller.gate;
  controller.start();

  interface Acc {
    offered: number;
    shed: number;
    dropped: number;
    met: number;
    late: number;
    lat: number[];
    accOnTime: number;
    accServed: number;
    cost: number;
    mix: Map<string, number>;
  }
  const acc = new Map<string, Acc>();
  const emptyAcc = (): Acc => ({
    offered: 0,
    shed: 0,
    dropped: 0,
    met: 0,
    late: 0,
    lat: [],
    accOnTime: 0,
    accServed: 0,
    cost: 0,
    mix: new Map(),
  });
  for (const name of Object.keys(cfg.routes)) acc.set(name, emptyAcc());
  const accuracyOf = (route: string, variant: string) =>
    runtime.model(router.route(route).model.name).variants.get(variant)?.accuracy ?? 0;
  const input = [{ name: 'x', datatype: 'FP32' as const, shape: [1, 1], data: new Float32Array(1) }];
  const pending: Promise<void>[] = [];

  const send = (a: SimArrival) => {
    const r = acc.get(a.route);
    if (r === undefined) return;
    r.offered++;
    const arrival = clock.now();
    const deadline = a.deadlineMs ?? router.route(a.route).config.slo.p99Ms;
    const fail = (e: SlogateError) => {
      recorder.record({ route: a.route, statusCode: e.statusCode, totalMs: clock.now() - arrival, errorCode: e.code });
      if (e.code === 'SLOGATE_ERR_SHED') r.shed++;
      else r.dropped++;
    };
    let p: Promise<void>;
    try {
      const route = router.route(a.route);
      const admission = gate.check({
        route,
        arrivalMs: arrival,
        stage: 'whole',
        pinned: false,
        timeoutMs: a.deadlineMs,
      });
      if (!admission.admitted) throw admission.refusal;
      p = router.infer({ route: a.route, inputs: input, rows: 1, arrivalMs: arrival, admitted: admission }).then(
        (res) => {
          const total = clock.now() - arrival + overheadOf(arrival);
          recorder.record({ route: a.route, variant: res.variant, statusCode: 200, totalMs: total, result: res });
          r.lat.push(total);
          const accuracy = accuracyOf(a.route, res.variant);
          r.accServed += accuracy;
          r.cost += (res.computeMs / Math.max(1, res.batchRows)) * price * 1e6;
          r.mix.set(res.variant, (r.mix.get(res.variant) ?? 0) + 1);
          if (total <= deadline) {
            r.met++;
            r.accOnTime += accuracy;
          } else r.late++;
        },
        (e: unknown) => fail(toSlogateError(e)),
      );
    } catch (e) {
      fail(toSlogateError(e));
      return;
    }
    pending.push(p);
  };

  const arrivals = [...o.arrivals].sort((a, b) => a.atMs - b.atMs);
  for (const c of o.changes ?? []) {
    clock.setTimer(() => {
      router.updateRoute(c.route, c.config);
      if (!acc.has(c.route)) acc.set(c.route, emptyAcc());
      controller.applyFixedKnobs();
      controller.alarm(c.route);
    }, c.atMs);
  }
  let i = 0;
  const endMs = (arrivals[arrivals.length - 1]?.atMs ?? 0) + 5_000;
  while (
    i < arrivals.length ||
    (clock.now() < endMs && runtime.inflightBatches + runtime.queueStats().reduce((n, q) => n + q.queued, 0) > 0)
  ) {
    const nextArrival = i < arrivals.length ? (arrivals[i] as SimArrival).atMs : Number.POSITIVE_INFINITY;
    const nextTimer = clock.nextTimerAt() ?? Number.POSITIVE_INFINITY;
    const t = Math.min(nextArrival, nextTimer);
    if (!Number.isFinite(t)) break;
    clock.advanceTo(Math.max(clock.now(), t));
    while (i < arrivals.length && (arrivals[i] as SimArrival).atMs <= clock.now()) send(arrivals[i++] as SimArrival);
    await settle();
  }
  await Promise.all(pending);
  controller.close();
  await runtime.close();

  const routes: SimRouteResult[] = [];
  for (const [route, r] of acc) {
    r.lat.sort((a, b) => a - b);
    const q = (p: number) =>
      r.lat.length === 0 ? Number.NaN : (r.lat[Math.min(r.lat.length - 1, Math.ceil(p * r.lat.length) - 1)] as number);
    const answered = r.met + r.late;
    const admitted = r.offered - r.shed;
    routes.push({
      route,
      offered: r.offered,
      admitted,
      answered,
      met: r.met,
      late: r.late,
      shed: r.shed,
      dropped: r.dropped,
      attainment: r.offered === 0 ? Number.NaN : r.met / r.offered,
      attainmentAdmitted: admitted === 0 ? Number.NaN : r.met / admitted,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      effectiveAccuracy: r.offered === 0 ? Number.NaN : r.accOnTime / r.offered,
      servedAccuracy: answered === 0 ? Number.NaN : r.accServed / answered,
      costPerMillion: answered === 0 ? Number.NaN : r.cost / answered,
      variantMix: Object.fromEntries(
        [...r.mix].map(([v, n]) => [v, Math.round((n / Math.max(1, answered)) * 1000) / 1000]),
      ),
      switches: controller.history().filter((h) => h.route === route).length - 1,
    });
  }
  return { routes, decisions: controller.history(), simulatedMs: clock.now() };
}
