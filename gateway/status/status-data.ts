// What the status page shows, as one JSON document built from live state: every route's SLO, current decision,
// rates, attainment and per-second history (from RouteStats), every replica and queue, and the latest decision
// changes. A pure function over plain inputs, so it is tested without a server.
import type { Decision } from '../../core/decision.js';
import { variantKey } from '../../core/types.js';
import type { DecisionChange } from '../../policies/controller.js';
import type { RouteStats, RouteTotals, SecondStats } from '../../policies/route-stats.js';
import type { ReplicaStats } from '../../runtime/replica-pool.js';
import type { VariantQueueStats } from '../../runtime/scheduler.js';

/** The per-route state the page reads (a structural subset of policies' RouteState). */
export interface StatusRoute {
  readonly name: string;
  readonly config: {
    readonly model: string;
    readonly slo: {
      readonly p99Ms: number;
      readonly minAccuracy?: number | undefined;
      readonly maxCostPerMillion?: number | undefined;
    };
    readonly priority: number;
    readonly objective: string;
  };
  readonly policy: string;
  readonly stats: Pick<RouteStats, 'history' | 'totals' | 'observedP99' | 'recent' | 'rates'>;
}

export interface StatusInputs {
  readonly version: string;
  /** Clock ms and the matching wall-clock ms. */
  readonly nowMs: number;
  readonly wallMs: number;
  readonly startedWallMs: number;
  readonly provider: string;
  readonly routes: readonly StatusRoute[];
  readonly decision: (route: string) => Decision | undefined;
  readonly changes: readonly DecisionChange[];
  readonly replicas: readonly ReplicaStats[];
  readonly queues: readonly VariantQueueStats[];
  readonly utilisation: { readonly gateway: number; readonly replicas: number };
}

export interface StatusOptions {
  /** Seconds of per-second history per route. */
  readonly historySeconds?: number;
  /** Window of the attainment and shed-rate figures. */
  readonly windowMs?: number;
  /** Decision changes listed. */
  readonly changes?: number;
}

/** Per-second history in columns (compact JSON); p99Ms is null for seconds without answers. */
export interface StatusHistory {
  readonly t: number[];
  readonly arrivals: number[];
  readonly met: number[];
  readonly missed: number[];
  readonly shed: number[];
  readonly dropped: number[];
  readonly p99Ms: (number | null)[];
}

export interface StatusRouteView {
  readonly name: string;
  readonly model: string;
  readonly policy: string;
  readonly priority: number;
  readonly objective: string;
  readonly slo: {
    readonly p99Ms: number;
    readonly minAccuracy: number | null;
    readonly maxCostPerMillion: number | null;
  };
  readonly decision: {
    readonly variants: readonly { readonly variant: string; readonly share: number }[];
    readonly maxBatch: number;
    readonly maxQueueDelayMs: number;
    readonly admissionRps: number | null;
    readonly predictedP99Ms: number | null;
    readonly accuracy: number | null;
    readonly costPerMillion: number | null;
    readonly reason: string;
    readonly at: string;
  } | null;
  /** Arrivals per second (fast moving average). */
  readonly rate: number;
  readonly observedP99Ms: number | null;
  /** met / (met + missed + shed + dropped) over the window; null without requests. */
  readonly attainment: number | null;
  /** Shed and dropped requests per second over the window. */
  readonly shedRate: number;
  readonly window: RouteTotals;
  readonly totals: RouteTotals;
  readonly history: StatusHistory;
}

export interface StatusData {
  readonly version: string;
  readonly now: string;
  readonly uptimeS: number;
  readonly provider: string;
  readonly windowS: number;
  readonly utilisation: { readonly gateway: number; readonly replicas: number };
  readonly routes: readonly StatusRouteView[];
  readonly replicas: readonly ReplicaStats[];
  readonly queues: readonly {
    readonly variant: string;
    readonly queued: number;
    readonly queuedRows: number;
    readonly maxBatch: number;
    readonly batches: number;
  }[];
  readonly changes: readonly {
    readonly at: string;
    readonly route: string;
    readonly from: string;
    readonly to: string;
    readonly reason: string;
  }[];
}

/**
 * The public page shows what kind of change a replica went through, not its detail: what follows the first colon
 * (a node's address, a worker's stack trace) stays in the logs and GET /admin/replicas.
 */
export function publicReason(reason: string): string {
  const cut = reason.search(/[:\n]/);
  const head = (cut < 0 ? reason : reason.slice(0, cut)).trim();
  return head.length <= PUBLIC_REASON_CHARS ? head : `${head.slice(0, PUBLIC_REASON_CHARS)}...`;
}

const PUBLIC_REASON_CHARS = 80;

function finite(x: number | undefined, digits = 3): number | null {
  if (x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function buildStatusData(inp: StatusInputs, options: StatusOptions = {}): StatusData {
  const historySeconds = options.historySeconds ?? 180;
  const windowMs = options.windowMs ?? 60_000;
  return {
    version: inp.version,
    now: new Date(inp.wallMs).toISOString(),
    uptimeS: Math.max(0, Math.round((inp.wallMs - inp.startedWallMs) / 1000)),
    provider: inp.provider,
    windowS: windowMs / 1000,
    utilisation: { gateway: finite(inp.utilisation.gateway) ?? 0, replicas: finite(inp.utilisation.replicas) ?? 0 },
    routes: inp.routes.map((r) => routeView(r, inp.decision(r.name), inp.nowMs, historySeconds, windowMs)),
    replicas: inp.replicas.map((r) => ({ ...r, lastChange: publicReason(r.lastChange) })),
    queues: inp.queues.map((q) => ({
      variant: variantKey(q.model, q.variant),
      queued: q.queued,
      queuedRows: q.queuedRows,
      maxBatch: q.knobs.maxBatch,
      batches: q.batches,
    })),
    changes: inp.changes
      .slice(-(options.changes ?? 12))
      .map((c) => ({ at: c.at, route: c.route, from: c.from, to: c.to, reason: c.reason })),
  };
}

function routeView(
  r: StatusRoute,
  d: Decision | undefined,
  nowMs: number,
  historySeconds: number,
  windowMs: number,
): StatusRouteView {
  const win = r.stats.recent(nowMs, windowMs);
  const outcomes = win.met + win.missed + win.shed + win.dropped;
  const slo = r.config.slo;
  return {
    name: r.name,
    model: r.config.model,
    policy: r.policy,
    priority: r.config.priority,
    objective: r.config.objective,
    slo: { p99Ms: slo.p99Ms, minAccuracy: slo.minAccuracy ?? null, maxCostPerMillion: slo.maxCostPerMillion ?? null },
    decision:
      d === undefined
        ? null
        : {
            variants: d.variants.map((s) => ({ variant: s.variant, share: finite(s.share) ?? 0 })),
            maxBatch: d.maxBatch,
            maxQueueDelayMs: d.maxQueueDelayMs,
            admissionRps: finite(d.admissionRps, 1),
            predictedP99Ms: finite(d.predictedP99Ms),
            accuracy: finite(d.accuracy, 4),
            costPerMillion: finite(d.costPerMillion, 4),
            reason: d.reason,
            at: d.at,
          },
    rate: finite(r.stats.rates(nowMs).fast, 2) ?? 0,
    observedP99Ms: finite(r.stats.observedP99(nowMs)),
    attainment: outcomes === 0 ? null : finite(win.met / outcomes, 4),
    shedRate: finite((win.shed + win.dropped) / (windowMs / 1000), 3) ?? 0,
    window: win,
    totals: r.stats.totals,
    history: columns(r.stats.history(nowMs).slice(-historySeconds)),
  };
}

function columns(seconds: readonly SecondStats[]): StatusHistory {
  const h: StatusHistory = { t: [], arrivals: [], met: [], missed: [], shed: [], dropped: [], p99Ms: [] };
  for (const s of seconds) {
    h.t.push(Math.round(s.t));
    h.arrivals.push(s.arrivals);
    h.met.push(s.met);
    h.missed.push(s.missed);
    h.shed.push(s.shed);
    h.dropped.push(s.dropped);
    h.p99Ms.push(finite(s.p99Ms));
  }
  return h;
}
