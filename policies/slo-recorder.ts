// Where every finished request's outcome is accounted against its route's SLO: the outcome counters, the latency
// histogram, gateway overhead, cost, and the route's own statistics (which the engine reads). One call per request.
import type { Clock } from '../core/clock.js';
import { ERROR_CATALOG, isErrorCode } from '../core/errors.js';
import type { CounterCell, HistogramCell } from '../core/metric-cells.js';
import type { Metrics, SloOutcome } from '../core/metrics.js';
import { variantKey } from '../core/types.js';
import type { RoutedResult, RouteState } from './router.js';

/** How one request ended. */
export interface Outcome {
  readonly route: string;
  readonly statusCode: number;
  /** Arrival to answer (ms). */
  readonly totalMs: number;
  /** When it ended, as the caller read the clock (the recorder reads it when absent). */
  readonly atMs?: number | undefined;
  /** The variant that answered, or the one it was sent to. */
  readonly variant?: string | undefined;
  readonly errorCode?: string | undefined;
  /** The runtime's result of a 200 (queue and compute times, batch rows). */
  readonly result?: RoutedResult | undefined;
  /** Served best-effort (it could never make its deadline): a miss that says nothing about the route's latency. */
  readonly bestEffort?: boolean | undefined;
}

export interface SloRecorder {
  record(outcome: Outcome): void;
}

/** A recorder that records nothing (synthetic traffic, such as the start-up warm-up). */
export const NO_RECORDS: SloRecorder = { record: () => {} };

export interface RouteSloRecorderDeps {
  readonly routes: { get(route: string): RouteState | undefined };
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Price of one replica slot per millisecond (pricing units), for slogate_cost_total. */
  readonly pricePerSlotMs?: number;
  /** An answer came back later than its route's p99 target (the control loop acts on it at once). */
  readonly onLate?: (route: string) => void;
}

/**
 * Every request counted in slogate_requests_total gets exactly one outcome (met, missed, shed, dropped); malformed
 * requests (the client's own 4xx) are counted apart.
 */
export class RouteSloRecorder implements SloRecorder {
  readonly #deps: RouteSloRecorderDeps;
  /** The metric cells of answered requests, by route, variant and revision (looked up once per label set). */
  readonly #answeredCells = new Map<string, AnsweredCells>();
  #last: LastCells | undefined;

  constructor(deps: RouteSloRecorderDeps) {
    this.#deps = deps;
  }

  record(o: Outcome): void {
    const r = this.#deps.routes.get(o.route);
    if (r === undefined) return;
    const m = this.#deps.metrics;
    if (o.errorCode !== undefined && isClientMistake(o.errorCode)) {
      m.invalidRequests.labels(o.route).inc();
      return;
    }
    const now = o.atMs ?? this.#deps.clock.now();
    const revision = o.result?.revision ?? 'active';
    if (o.statusCode === 200) {
      this.#answered(r, o, now, this.#cells(o.route, r.model.name, o.variant, revision));
      return;
    }
    const v = variantLabel(r.model.name, o.variant);
    m.requests.labels(o.route, v, `${Math.floor(o.statusCode / 100)}xx`, revision).inc();
    const outcome = o.errorCode === undefined ? 'missed' : (OUTCOME_BY_CODE[o.errorCode] ?? 'missed');
    m.sloRequests.labels(o.route, outcome).inc();
    r.stats.finish(now, outcome);
    if (outcome === 'shed' || outcome === 'dropped') m.shed.labels(o.route, o.errorCode as string).inc();
  }

  /** The cells of the last label set are kept apart: consecutive answers nearly always share it. */
  #cells(route: string, model: string, variantName: string | undefined, revision: string): AnsweredCells {
    const last = this.#last;
    if (
      last !== undefined &&
      last.route === route &&
      last.model === model &&
      last.variant === variantName &&
      last.revision === revision
    )
      return last.cells;
    const variant = variantLabel(model, variantName);
    const key = `${route}\u0000${variant}\u0000${revision}`;
    let c = this.#answeredCells.get(key);
    if (c === undefined) {
      const m = this.#deps.metrics;
      c = {
        requests: m.requestCells.cell({ route, variant, code: '2xx', revision }),
        duration: m.requestDurationCells.cell({ route, variant, revision }),
        met: m.sloRequestCells.cell({ route, outcome: 'met' }),
        missed: m.sloRequestCells.cell({ route, outcome: 'missed' }),
        cost: m.costCells.cell({ route, variant }),
      };
      this.#answeredCells.set(key, c);
    }
    this.#last = { route, model, variant: variantName, revision, cells: c };
    return c;
  }

  #answered(r: RouteState, o: Outcome, now: number, cells: AnsweredCells): void {
    const met = o.totalMs <= r.config.slo.p99Ms && o.bestEffort !== true;
    cells.requests.inc();
    cells.duration.observe(o.totalMs / 1000);
    (met ? cells.met : cells.missed).inc();
    if (o.bestEffort === true) {
      // Its latency is its size's, not the route's: kept out of the windows the engine plans with.
      r.stats.finish(now, 'missed');
      return;
    }
    r.stats.finish(now, met ? 'met' : 'missed', o.totalMs, o.variant);
    const res = o.result;
    if (res !== undefined) {
      // The gateway's own share: parsing, event-loop delay, encoding (everything but queueing and the replica's work).
      r.stats.overhead(now, Math.max(0, o.totalMs - res.queueMs - res.computeMs));
      if (res.routedMs !== undefined)
        r.stats.overheadAfterRoute(now, Math.max(0, o.totalMs - res.routedMs - res.queueMs - res.computeMs));
      const price = this.#deps.pricePerSlotMs ?? 0;
      if (price > 0) cells.cost.inc((res.serviceMs / Math.max(1, res.batchRows)) * price);
    }
    if (!met) this.#deps.onLate?.(o.route);
  }
}

interface AnsweredCells {
  readonly requests: CounterCell;
  readonly duration: HistogramCell;
  readonly met: CounterCell;
  readonly missed: CounterCell;
  readonly cost: CounterCell;
}

interface LastCells {
  readonly route: string;
  readonly model: string;
  readonly variant: string | undefined;
  readonly revision: string;
  readonly cells: AnsweredCells;
}

function variantLabel(model: string, variant: string | undefined): string {
  return variant === undefined ? 'none' : variantKey(model, variant);
}

const OUTCOME_BY_CODE: Readonly<Record<string, SloOutcome>> = {
  SLOGATE_ERR_SHED: 'shed',
  SLOGATE_ERR_NOT_READY: 'shed',
  SLOGATE_ERR_SHUTTING_DOWN: 'shed',
  SLOGATE_ERR_OVERLOADED: 'shed',
  SLOGATE_ERR_DEADLINE_UNREACHABLE: 'dropped',
  SLOGATE_ERR_QUEUE_FULL: 'dropped',
  SLOGATE_ERR_CANCELLED: 'dropped',
};

/** 4xx errors that are the client's own mistake (malformed input), not load: they are no SLO event. */
export function isClientMistake(code: string): boolean {
  return (
    isErrorCode(code) &&
    ERROR_CATALOG[code].status >= 400 &&
    ERROR_CATALOG[code].status < 500 &&
    code !== 'SLOGATE_ERR_SHED' &&
    code !== 'SLOGATE_ERR_CANCELLED'
  );
}
