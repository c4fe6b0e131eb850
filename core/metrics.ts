// Every Prometheus metric slogate exports, declared in one place: the names and labels are a contract that
// dashboards and alerts depend on. One registry per server instance (tests build several in one process).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { CounterCells, HistogramCells } from './metric-cells.js';

/** Buckets for millisecond-scale inference, in seconds: 100 us to 10 s. */
export const LATENCY_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25,
  0.5, 1, 2.5, 5, 10,
];
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export type SloOutcome = 'met' | 'missed' | 'shed' | 'dropped';

export class Metrics {
  readonly registry = new Registry();
  /** Callbacks that refresh a gauge from live state at scrape time (the hot path pays nothing). */
  readonly #collectors = new Map<object, () => void>();
  readonly #collect = (gauge: object) => this.#collectors.get(gauge)?.();

  readonly requests = new Counter({
    name: 'slogate_requests_total',
    help: 'Inference requests answered or refused, by route, variant (the one that served or failed it; "none" when refused before one was chosen) and HTTP status class.',
    labelNames: ['route', 'variant', 'code', 'revision'] as const,
    registers: [this.registry],
    collect: (): void => this.requestCells.flush(),
  });
  /** The request path's updates of requests, merged when it is read. */
  readonly requestCells = new CounterCells(this.requests);
  readonly invalidRequests = new Counter({
    name: 'slogate_invalid_requests_total',
    help: "Malformed inference requests (the client's own 4xx: bad JSON, shape, datatype, unknown input); not SLO events.",
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'slogate_request_duration_seconds',
    help: 'End-to-end inference latency inside the gateway, from request received to response sent.',
    labelNames: ['route', 'variant', 'revision'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
    collect: (): void => this.requestDurationCells.flush(),
  });
  /** The request path's updates of requestDuration, merged when it is read. */
  readonly requestDurationCells = new HistogramCells(this.requestDuration);
  readonly queueDuration = new Histogram({
    name: 'slogate_queue_duration_seconds',
    help: "Time a request waited in its variant's queue before its batch was dispatched.",
    labelNames: ['variant'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
    collect: (): void => this.queueDurationCells.flush(),
  });
  /** The request path's updates of queueDuration, merged when it is read. */
  readonly queueDurationCells = new HistogramCells(this.queueDuration);
  readonly inferenceDuration = new Histogram({
    name: 'slogate_inference_duration_seconds',
    help: 'Time onnxruntime spent running one batch (measured inside the worker).',
    labelNames: ['variant'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
    collect: (): void => this.inferenceDurationCells.flush(),
  });
  /** The request path's updates of inferenceDuration, merged when it is read. */
  readonly inferenceDurationCells = new HistogramCells(this.inferenceDuration);
  readonly batchSize = new Histogram({
    name: 'slogate_batch_size',
    help: 'Rows per executed batch.',
    labelNames: ['variant'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
    collect: (): void => this.batchSizeCells.flush(),
  });
  /** The request path's updates of batchSize, merged when it is read. */
  readonly batchSizeCells = new HistogramCells(this.batchSize);
  readonly inlineBatches = new Counter({
    name: 'slogate_inline_batches_total',
    help: "Batches run on the gateway's main thread instead of a worker (runtime.inlineMaxMs).",
    labelNames: ['variant'] as const,
    registers: [this.registry],
    collect: (): void => this.inlineBatchCells.flush(),
  });
  readonly inlineBatchCells = new CounterCells(this.inlineBatches);
  readonly sloRequests = new Counter({
    name: 'slogate_slo_requests_total',
    help: 'Inference requests by SLO outcome: met (answered within p99Ms), missed (answered late or failed), shed (refused at admission), dropped (expired or rejected in a queue).',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
    collect: (): void => this.sloRequestCells.flush(),
  });
  /** The request path's updates of sloRequests, merged when it is read. */
  readonly sloRequestCells = new CounterCells(this.sloRequests);
  readonly variantShare = new Gauge({
    name: 'slogate_route_variant_share',
    help: "The engine's current decision: share of the route's traffic sent to each variant (0..1).",
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
  });
  readonly decisionChanges = new Counter({
    name: 'slogate_decision_changes_total',
    help: "Changes of a route's decision: its variant mix or its admission (batch limits move with load and are not counted).",
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  // Refreshed at scrape time by the controller's onCollect: without `collect` that callback never ran.
  readonly arrivalRate: Gauge<string> = new Gauge({
    collect: () => this.#collect(this.arrivalRate),
    name: 'slogate_route_arrival_rate',
    help: 'Arrival rate per route (requests per second, fast moving average).',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly sloLoadRatio: Gauge<string> = new Gauge({
    collect: () => this.#collect(this.sloLoadRatio),
    name: 'slogate_route_slo_load_ratio',
    help: "Arrival rate over the capacity the engine predicts at the route's SLO with the slots left to this process (1 = no headroom); autoscalers scale runtime nodes on it.",
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly p99Predicted = new Gauge({
    name: 'slogate_route_p99_predicted_seconds',
    help: "The engine's predicted p99 latency of the route under its current decision.",
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly p99Target: Gauge<string> = new Gauge({
    collect: () => this.#collect(this.p99Target),
    name: 'slogate_route_p99_target_seconds',
    help: "The route's SLO: its p99 latency target (dashboards and alerts compare the observed p99 with it).",
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly p99Observed = new Gauge({
    name: 'slogate_route_p99_observed_seconds',
    help: 'Observed p99 latency of the route over its recent window.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly queueDepth: Gauge<string> = new Gauge({
    collect: () => this.#collect(this.queueDepth),
    name: 'slogate_queue_depth',
    help: "Requests waiting in the variant's queue.",
    labelNames: ['variant'] as const,
    registers: [this.registry],
  });
  readonly replicas: Gauge<string> = new Gauge({
    collect: () => this.#collect(this.replicas),
    name: 'slogate_replicas',
    help: 'Replicas by state (pending, ready, down).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly replicaRestarts = new Counter({
    name: 'slogate_replica_restarts_total',
    help: 'Worker replicas replaced after a crash or exit, and remote replicas that came back after being down.',
    registers: [this.registry],
  });
  readonly batchRetries = new Counter({
    name: 'slogate_batch_retries_total',
    help: 'Batches retried on another replica after their replica failed.',
    registers: [this.registry],
  });
  readonly batchTimeouts = new Counter({
    name: 'slogate_batch_timeouts_total',
    help: 'Batches that passed their timeout on a replica (runtime.batchTimeout); the replica was taken out of service.',
    registers: [this.registry],
  });
  readonly moved = new Counter({
    name: 'slogate_requests_moved_total',
    help: "Queued requests moved to another variant of the same model: 'deadline' (rescued from a drop by a faster variant), 'switch' (the engine moved a route's backlog off a variant it left).",
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [this.registry],
  });
  readonly cacheRequests = new Counter({
    name: 'slogate_cache_requests_total',
    help: 'Response cache lookups by route and result (hit, miss).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });
  readonly cost = new Counter({
    name: 'slogate_cost_total',
    help: 'Accumulated cost of served inferences (pricing units): batch service time / batch size x device price.',
    labelNames: ['route', 'variant'] as const,
    registers: [this.registry],
    collect: (): void => this.costCells.flush(),
  });
  /** The request path's updates of cost, merged when it is read. */
  readonly costCells = new CounterCells(this.cost);
  readonly shed = new Counter({
    name: 'slogate_shed_total',
    help: 'Requests refused or dropped, by route and error code.',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });
  readonly engineTickFailures = new Counter({
    name: 'slogate_engine_tick_failures_total',
    help: 'Control-loop ticks that threw; the decisions in force stayed and the loop went on.',
    registers: [this.registry],
  });
  readonly connectionsDropped = new Counter({
    name: 'slogate_connections_dropped_total',
    help: 'Client connections closed on arrival because server.maxConnections were open.',
    registers: [this.registry],
  });

  readonly revisionInfo: Gauge<string> = new Gauge({
    name: 'slogate_revision_info',
    help: 'Every revision the model store keeps (1), by model, variant, revision (sha256:...) and state.',
    labelNames: ['model', 'variant', 'revision', 'state'] as const,
    registers: [this.registry],
    collect: () => this.#collect(this.revisionInfo),
  });
  readonly configReloads = new Counter({
    name: 'slogate_config_reloads_total',
    help: 'Config file changes seen by server.watchConfig, by result (applied, failed, invalid).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly deploys = new Counter({
    name: 'slogate_deploys_total',
    help: 'Deploys and rollbacks, by model, variant and result (active, unchanged, rejected, refused, rolled-back).',
    labelNames: ['model', 'variant', 'result'] as const,
    registers: [this.registry],
  });
  readonly rolloutPhase: Gauge<string> = new Gauge({
    name: 'slogate_rollout_phase',
    help: 'Phase of the rollout of a variant: 0 none, 1 shadow, 2 canary (docs/lifecycle.md).',
    labelNames: ['model', 'variant'] as const,
    registers: [this.registry],
    collect: () => this.#collect(this.rolloutPhase),
  });
  readonly rolloutShare: Gauge<string> = new Gauge({
    name: 'slogate_rollout_share',
    help: "Share (0..1) of a variant's batches served by its active revision and by the candidate.",
    labelNames: ['model', 'variant', 'revision'] as const,
    registers: [this.registry],
    collect: () => this.#collect(this.rolloutShare),
  });
  readonly rolloutEvents = new Counter({
    name: 'slogate_rollout_events_total',
    help: 'Rollout events (started, advanced, promoted, rolled-back, aborted), by model and variant.',
    labelNames: ['model', 'variant', 'event'] as const,
    registers: [this.registry],
  });
  readonly shadowRequests = new Counter({
    name: 'slogate_shadow_requests_total',
    help: 'Rows run on a candidate in shadow, by outcome (compared, agreed, dropped for lack of spare capacity).',
    labelNames: ['model', 'variant', 'outcome'] as const,
    registers: [this.registry],
  });

  /** Creates a route's SLO and decision counters at zero, so rate() and burn-rate ratios exist before the first event. */
  initRoute(route: string): void {
    for (const outcome of ['met', 'missed', 'shed', 'dropped'] as const) this.sloRequests.labels(route, outcome).inc(0);
    this.decisionChanges.labels(route).inc(0);
  }

  /**
   * Forgets what the start-up warm-up left in the runtime's per-batch series. It runs before the server listens, so
   * no scrape has seen them: to Prometheus this is the same as never counting them.
   */
  forgetWarmup(): void {
    for (const m of [this.queueDuration, this.inferenceDuration, this.batchSize, this.moved, this.inlineBatches])
      m.reset();
    for (const c of [this.queueDurationCells, this.inferenceDurationCells, this.batchSizeCells, this.inlineBatchCells])
      c.discard();
  }

  /** Registers the scrape-time refresh of one of this registry's gauges. */
  onCollect(gauge: Gauge<string>, fn: () => void): void {
    this.#collectors.set(gauge, fn);
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
  }
}
