// The runtime facade: model files, replicas, the batching scheduler and latency profiles, started and stopped
// together. It knows nothing of HTTP, routes or SLOs; policies steer it through setKnobs() and submit().
import { availableParallelism } from 'node:os';
import type { Clock } from '../core/clock.js';
import type { Config, DnsReplicaConfig } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { TracingHooks } from '../core/tracing.js';
import type { ModelSignature } from '../core/types.js';
import { variantKey } from '../core/types.js';
import type { BatchKnobs } from './batch-policy.js';
import { endpointKey } from './dns-endpoints.js';
import { DnsReplicaSet } from './dns-replicas.js';
import { RuntimeHealth } from './health.js';
import { InlineRunner } from './inline-runner.js';
import {
  LatencyProfiles,
  type ProfilePoint,
  type Quantile,
  type ServiceTable,
  type VariantProfileSnapshot,
} from './latency-profile.js';
import type { NodeLoad } from './load-report.js';
import { type ModelInfo, ModelRepository } from './model-repository.js';
import type { ModelStore } from './model-store.js';
import type { RuntimePort } from './port.js';
import { hostKey, Profiler, type SweepOptions } from './profiler.js';
import { RemoteReplica } from './remote-replica.js';
import type { Replica } from './replica.js';
import { LocalReplica } from './replica.js';
import type { ReplicaStats } from './replica-pool.js';
import { ReplicaPool } from './replica-pool.js';
import { RuntimeRevisions } from './revisions.js';
import type { BatchObservation, VariantQueueStats } from './scheduler.js';
import { Scheduler } from './scheduler.js';
import { TrafficSplit } from './traffic-split.js';
import type { SubmitRequest, SubmitResult } from './types.js';
import { VariantLifecycle } from './variant-lifecycle.js';
import { VariantMetrics } from './variant-metrics.js';
import type { WorkerVariant } from './worker/messages.js';

export interface RuntimeDeps {
  readonly config: Readonly<Config>;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Extra replicas (remote nodes); built by the composition root. */
  readonly extraReplicas?: readonly Replica[];
  /** Tracing hooks the scheduler calls (gateway/tracing.ts); absent = untraced. */
  readonly tracing?: TracingHooks | undefined;
  /** The model store: its active revisions are served instead of the config's files. */
  readonly store?: ModelStore | undefined;
}

export type RuntimeState = 'created' | 'starting' | 'ready' | 'draining' | 'closed';

export type BatchListener = (o: BatchObservation) => void;

export function resolveWorkers(config: Readonly<Config>): number {
  const w = config.runtime.workers;
  return w === 'auto' ? Math.max(1, availableParallelism() - 1) : w;
}

export function resolveIntraOpThreads(config: Readonly<Config>): number {
  const t = config.runtime.intraOpThreads;
  return t === 'auto' ? 1 : t;
}

/** runtime.inlineMaxMs resolved: auto is 0.2 ms, or 2 ms on one core (a worker there adds only the hand-off). */
export function resolveInlineMaxMs(config: Readonly<Config>, cores = availableParallelism()): number {
  const ms = config.runtime.inlineMaxMs;
  if (ms !== 'auto') return ms;
  return cores <= 1 ? 2 : 0.2;
}

/** The main thread's runner of batches cheaper than the hand-off: CPU only, off when runtime.inlineMaxMs is 0. */
function inlineRunner(config: Readonly<Config>, logger: Logger): InlineRunner | undefined {
  const maxMs = resolveInlineMaxMs(config);
  if (maxMs <= 0 || config.runtime.device !== 'cpu') return undefined;
  const onBarred = (model: string, variant: string, ms: number): void =>
    logger.warn(
      { model, variant, ms },
      `${model}/${variant} ran ${ms.toFixed(1)} ms inline: its batches stay on workers`,
    );
  return new InlineRunner(maxMs, { onBarred });
}

export class Runtime implements RuntimePort {
  // The parts themselves, for the runtime's own use and its tests; policies and the gateway use the methods below
  // (RuntimePort and a few read-outs).
  readonly repository: ModelRepository;
  readonly profiles: LatencyProfiles;
  readonly pool: ReplicaPool;
  /** Readiness and liveness from the replicas' state. */
  readonly health: RuntimeHealth;
  readonly scheduler: Scheduler;
  /** Candidate revisions: load, run, sweep, activate, unload (the deploy pipeline's side of the runtime). */
  readonly revisions: RuntimeRevisions;
  /** Variants added, removed, unloaded and loaded while serving. */
  readonly lifecycle: VariantLifecycle;
  /** Candidate revisions serving a canary share or a shadow copy of a variant's batches (rollouts steer it). */
  readonly split = new TrafficSplit();
  /** Runs the local replicas' batches cheaper than the hand-off on the main thread (off: undefined). */
  readonly inline: InlineRunner | undefined;
  readonly #deps: RuntimeDeps;
  #state: RuntimeState = 'created';
  #provider = 'cpu';
  #startPromise: Promise<void> | undefined;
  readonly #batchListeners: BatchListener[] = [];
  /** Runtime nodes found by DNS, joining and leaving the pool while serving. */
  readonly #dnsSets: DnsReplicaSet[];
  /** The median service correction over variants, refreshed at most once a second for load reports. */
  #correction = { value: 1, atMs: Number.NEGATIVE_INFINITY };

  private constructor(deps: RuntimeDeps, repository: ModelRepository) {
    this.#deps = deps;
    this.repository = repository;
    const { config, clock, metrics } = deps;
    this.profiles = new LatencyProfiles({ now: () => clock.now() });
    const variants: WorkerVariant[] = [];
    for (const m of repository.models.values())
      for (const v of m.variants.values())
        variants.push({ model: m.name, variant: v.name, path: v.path, revision: `sha256:${v.sha256}` });
    const replicas: Replica[] = [];
    const intraOpThreads = resolveIntraOpThreads(config);
    const inline = inlineRunner(config, deps.logger);
    this.inline = inline;
    for (let i = 0; i < resolveWorkers(config); i++) {
      replicas.push(
        new LocalReplica(
          { replicaId: `local-${i}`, variants, device: config.runtime.device, intraOpThreads },
          {
            clock,
            respawn: { initialMs: config.runtime.health.respawnInitialMs, maxMs: config.runtime.health.respawnMaxMs },
            inline,
          },
        ),
      );
    }
    const models = new Map([...repository.models.values()].map((m) => [m.name, [...m.variants.keys()]]));
    config.runtime.replicas.forEach((r, i) => {
      if (!('url' in r)) return;
      replicas.push(
        new RemoteReplica({
          id: `remote-${i}`,
          url: r.url,
          slots: r.concurrency,
          models,
          clock,
          healthCheckIntervalMs: config.runtime.healthCheckIntervalMs,
          useLoadReports: config.runtime.loadReports,
          ...this.#revisionSync(),
        }),
      );
    });
    replicas.push(...(deps.extraReplicas ?? []));
    const dnsEntries = config.runtime.replicas.filter((r): r is DnsReplicaConfig => 'dns' in r);
    if (replicas.length === 0 && dnsEntries.length === 0)
      throw new SlogateError('SLOGATE_ERR_CONFIG', 'no replicas: set runtime.workers >= 1 or list runtime.replicas');
    this.pool = new ReplicaPool(replicas, { clock });
    this.#dnsSets = dnsEntries.map((r) => this.#dnsSet(r, models));
    this.health = new RuntimeHealth({
      clock,
      pool: this.pool,
      models: [...repository.models.keys()],
      ...config.runtime.health,
    });
    this.pool.on('state', (id, state, reason) =>
      deps.logger.info({ replica: id, state, reason }, `replica ${id} is ${state}: ${reason}`),
    );
    this.pool.on('restart', (id, reason) => {
      metrics.replicaRestarts.inc();
      deps.logger.warn({ replica: id, reason }, `replica ${id} restarting: ${reason}`);
    });
    this.pool.on('timeout', (id, ms) => {
      metrics.batchTimeouts.inc();
      deps.logger.warn(
        { replica: id, timeoutMs: ms },
        `replica ${id}: a batch passed its ${Math.round(ms)} ms timeout`,
      );
    });
    this.pool.on('retry', (id, reason) => {
      metrics.batchRetries.inc();
      deps.logger.warn({ replica: id, reason }, 'retrying a batch on another replica');
    });
    const cells = new VariantMetrics(metrics);
    this.scheduler = new Scheduler({
      clock,
      pool: this.pool,
      profiles: this.profiles,
      maxQueueRows: config.runtime.maxQueueRows,
      tracing: deps.tracing,
      logger: deps.logger,
      batchTimeout: config.runtime.batchTimeout,
      split: this.split,
      events: {
        onQueued: (model, variant, ms) => cells.of(model, variant).queue.observe(ms / 1000),
        onMove: (model, from, to, reason, count) =>
          metrics.moved.labels(variantKey(model, from), variantKey(model, to), reason).inc(count),
        onBatch: (o) => {
          const c = cells.of(o.model, o.variant);
          c.infer.observe(o.inferMs / 1000);
          c.batch.observe(o.rows);
          if (o.inline) c.inline.inc();
          for (const l of this.#batchListeners) l(o);
        },
      },
    });
    this.revisions = new RuntimeRevisions({
      config,
      pool: this.pool,
      repository,
      profiles: this.profiles,
      clock,
      logger: deps.logger,
      provider: () => this.#provider,
      intraOpThreads,
    });
    this.lifecycle = new VariantLifecycle({
      repository,
      pool: this.pool,
      scheduler: this.scheduler,
      profiles: this.profiles,
      clock,
      logger: deps.logger,
      sweepOptions: () => (config.runtime.profile.enabled ? this.#sweepOptions() : undefined),
    });
    metrics.onCollect(metrics.queueDepth, () => {
      for (const s of this.scheduler.stats()) metrics.queueDepth.labels(variantKey(s.model, s.variant)).set(s.queued);
    });
    metrics.onCollect(metrics.replicas, () => {
      const counts: Record<string, number> = { pending: 0, ready: 0, suspect: 0, down: 0 };
      for (const r of this.pool.replicas) if (r.state !== 'closed') counts[r.state] = (counts[r.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(counts)) metrics.replicas.labels(state).set(n);
    });
  }

  /** What a runtime node needs to receive the active revisions: the token, the revisions, where to report. */
  #revisionSync() {
    const { config, logger } = this.#deps;
    return {
      adminToken: config.server.adminToken,
      desired: () => {
        const out: WorkerVariant[] = [];
        for (const m of this.repository.models.values())
          for (const v of m.variants.values())
            out.push({ model: m.name, variant: v.name, path: v.path, revision: `sha256:${v.sha256}` });
        return out;
      },
      onRevisionSync: (id: string, message: string, failed: boolean) =>
        failed
          ? logger.warn({ replica: id }, `replica ${id}: ${message}`)
          : logger.info({ replica: id }, `replica ${id}: ${message}`),
    };
  }

  #dnsSet(r: DnsReplicaConfig, models: ReadonlyMap<string, readonly string[]>): DnsReplicaSet {
    const { config, clock, logger } = this.#deps;
    return new DnsReplicaSet({
      target: { name: r.dns, port: r.port, portName: r.portName, resolver: r.resolver },
      intervalMs: r.resolveIntervalMs,
      clock,
      logger,
      pool: this.pool,
      makeReplica: (e, id) =>
        new RemoteReplica({
          id,
          url: `http://${endpointKey(e)}`,
          slots: r.concurrency,
          models,
          clock,
          healthCheckIntervalMs: config.runtime.healthCheckIntervalMs,
          useLoadReports: config.runtime.loadReports,
          startTimeoutMs: 10_000,
          ...this.#revisionSync(),
        }),
    });
  }

  /** Checks and hashes the model files; replicas start in start(). */
  static async create(deps: RuntimeDeps): Promise<Runtime> {
    const repo = await ModelRepository.load(deps.config, deps.store);
    return new Runtime(deps, repo);
  }

  get state(): RuntimeState {
    return this.#state;
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** Execution provider of the local replicas ('cpu' or 'cuda'). */
  get provider(): string {
    return this.#provider;
  }

  start(): Promise<void> {
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  async #start(): Promise<void> {
    const { config, logger, clock } = this.#deps;
    this.#state = 'starting';
    const started = clock.now();
    const starting = this.pool.replicas.map((r) => r.start());
    await Promise.all(this.#dnsSets.map((s) => s.start()));
    const descs = await Promise.all(starting);
    if (descs.length === 0 && this.#dnsSets.length > 0) {
      // The models' signatures come from a node: with no other replica, wait for the first one DNS names.
      logger.info({}, 'waiting for a runtime node to appear in DNS and answer');
      descs.push(await Promise.race(this.#dnsSets.map((s) => s.firstJoined())));
    }
    const first = descs[0];
    if (first === undefined) throw new SlogateError('SLOGATE_ERR_CONFIG', 'no replicas');
    for (const d of descs)
      if (d.providerWarning !== undefined) logger.warn({ warning: d.providerWarning }, d.providerWarning);
    this.#provider = first.provider;
    this.repository.applyDescriptions(first.sessions);
    for (const w of this.repository.warnings) logger.warn(w);
    for (const m of this.repository.models.values()) {
      const batchable = m.signature?.batchable === true;
      for (const v of m.variants.values())
        this.scheduler.addVariant(
          m.name,
          v.name,
          { maxBatch: batchable ? m.config.maxBatch : 1, maxQueueDelayMs: 0 },
          batchable,
        );
    }
    if (config.runtime.profile.enabled) {
      const profiler = new Profiler(this.pool, clock, logger);
      const sweeps = await profiler.sweep([...this.repository.models.values()], this.#sweepOptions());
      for (const s of sweeps) this.profiles.setPoints(s.model, s.variant, s.points);
      const hops = sweeps.map((s) => s.hopMs).sort((a, b) => a - b);
      if (hops.length > 0) this.profiles.hopMs = hops[Math.floor(hops.length / 2)] as number;
      const fresh = sweeps.filter((s) => !s.cached).length;
      logger.info(
        { variants: sweeps.length, measured: fresh, cached: sweeps.length - fresh },
        `latency profiles ready (${fresh} measured, ${sweeps.length - fresh} from cache)`,
      );
    }
    this.#state = 'ready';
    logger.info(
      { ms: Math.round(clock.now() - started), provider: this.#provider, replicas: this.pool.replicas.length },
      'runtime ready',
    );
  }

  /** The start-up sweep's options (a variant loaded later is swept with the same). */
  #sweepOptions(): SweepOptions {
    const prof = this.#deps.config.runtime.profile;
    return {
      samples: prof.samples,
      budgetMs: prof.budgetMs,
      cacheDir: prof.cacheDir,
      hostKey: hostKey({
        provider: this.#provider,
        intraOpThreads: resolveIntraOpThreads(this.#deps.config),
        replicas: this.pool.readySlots,
      }),
      maxAgeMs: prof.maxAgeHours * 3_600_000,
    };
  }

  submit(req: SubmitRequest): Promise<SubmitResult> {
    if (this.#state !== 'ready') {
      if (this.#state === 'draining' || this.#state === 'closed')
        return Promise.reject(
          new SlogateError('SLOGATE_ERR_SHUTTING_DOWN', 'the server is shutting down', { retryAfterMs: 1000 }),
        );
      return Promise.reject(
        new SlogateError('SLOGATE_ERR_NOT_READY', 'models are still loading', { retryAfterMs: 1000 }),
      );
    }
    const unloaded = this.lifecycle.unloaded(req.model);
    if (unloaded !== undefined)
      return Promise.reject(
        new SlogateError('SLOGATE_ERR_MODEL_UNLOADED', `model '${req.model}' is unloaded (${unloaded}); load it again`),
      );
    const late = this.#unreachable(req);
    if (late !== undefined) return Promise.reject(late);
    return this.scheduler.submit(req);
  }

  /**
   * On a runtime node (runtime.refuseUnreachable), a request with no faster variant to move to, whose deadline the
   * work queued ahead of it already rules out, is refused now rather than dropped at the head of the queue later: the
   * gateway that sent it can retry another node while there is still time (the answer carries this node's load).
   */
  #unreachable(req: SubmitRequest): SlogateError | undefined {
    if (!this.#deps.config.runtime.refuseUnreachable) return undefined;
    if (req.fallbackVariant !== undefined || !Number.isFinite(req.deadlineAtMs)) return undefined;
    const now = this.#deps.clock.now();
    const svcMs = this.profiles.serviceMs(req.model, req.variant, req.rows, 'p50', now);
    if (!(now + this.scheduler.backlogMs() + svcMs > req.deadlineAtMs)) return undefined;
    // EDF runs earlier deadlines first: count only the work really ahead before refusing.
    const aheadMs = this.scheduler.backlogMs(req.deadlineAtMs);
    if (!(now + aheadMs + svcMs > req.deadlineAtMs)) return undefined;
    const e = new SlogateError(
      'SLOGATE_ERR_DEADLINE_UNREACHABLE',
      `request to ${req.model}/${req.variant} cannot finish before its deadline (~${(aheadMs + svcMs).toFixed(2)} ms of work ahead and its own, ${Math.max(0, req.deadlineAtMs - now).toFixed(2)} ms left)`,
      { retryAfterMs: Math.max(100, Math.ceil(aheadMs)) },
    );
    e.variant = req.variant;
    return e;
  }

  /** Calls `listener` after every executed batch (AIMD batching and the engine learn from these). */
  onBatch(listener: BatchListener): void {
    this.#batchListeners.push(listener);
  }

  setKnobs(model: string, variant: string, knobs: BatchKnobs): void {
    this.scheduler.setKnobs(model, variant, knobs);
  }

  knobs(model: string, variant: string): BatchKnobs {
    return this.scheduler.knobs(model, variant);
  }

  migrate(model: string, from: string, to: string, tag: string, fraction: number): number {
    return this.scheduler.migrate(model, from, to, tag, fraction);
  }

  backlogMs(beforeMs?: number): number {
    return this.scheduler.backlogMs(beforeMs);
  }

  serviceMs(model: string, variant: string, rows: number, q: Quantile, nowMs?: number): number {
    return this.profiles.serviceMs(model, variant, rows, q, nowMs);
  }

  serviceTable(model: string, variant: string, maxRows: number): ServiceTable {
    return this.profiles.table(model, variant, maxRows);
  }

  get models(): ReadonlyMap<string, ModelInfo> {
    return this.repository.models;
  }

  model(name: string): ModelInfo {
    return this.repository.model(name);
  }

  /** A model's input/output signature (known once started). */
  signature(model: string): ModelSignature {
    return this.repository.signature(model);
  }

  /** Slots the engine plans with: ready slots, less what other gateways' work holds on shared nodes. */
  get readySlots(): number {
    return this.pool.availableSlots;
  }

  /** Batches running on replicas now. */
  get inflightBatches(): number {
    return this.scheduler.inflightBatches;
  }

  /** Start-up findings about the model files (missing recorded accuracy, a stale hash). */
  get warnings(): readonly string[] {
    return this.repository.warnings;
  }

  /** Every variant's profile points and correction, for the admin API and `slogate profile`. */
  profileSnapshot(): VariantProfileSnapshot[] {
    return this.profiles.snapshot();
  }

  /** Profiles measured elsewhere ("model/variant" -> points), in place of a sweep (the simulator's). */
  useProfiles(points: ReadonlyMap<string, readonly ProfilePoint[]>, hopMs: number): void {
    for (const [key, pts] of points) {
      const [model, variant] = key.split('/') as [string, string];
      this.profiles.setPoints(model, variant, pts);
    }
    this.profiles.hopMs = hopMs;
  }

  queueStats(): VariantQueueStats[] {
    return this.scheduler.stats();
  }

  replicaStats(): ReplicaStats[] {
    return this.pool.stats();
  }

  /** This process's load as a node reports it to gateways (runtime/load-report.ts). */
  loadReport(): NodeLoad {
    const totalSlots = this.pool.readySlots;
    const queuedRows = this.scheduler.totalQueuedRows();
    return {
      busySlots: Math.min(totalSlots, this.pool.outstanding),
      totalSlots,
      queuedRows,
      queueWaitMs: Math.round(this.scheduler.backlogMs() * 1000) / 1000,
      serviceCorrection: this.#serviceCorrection(),
    };
  }

  #serviceCorrection(): number {
    const now = this.#deps.clock.now();
    if (now - this.#correction.atMs < 1000) return this.#correction.value;
    const ks = this.profiles
      .snapshot()
      .filter((p) => p.correction.samples > 0)
      .map((p) => p.correction.p50)
      .sort((a, b) => a - b);
    const value = ks.length === 0 ? 1 : (ks[Math.floor(ks.length / 2)] as number);
    this.#correction = { value: Number.isFinite(value) && value >= 0 ? value : 1, atMs: now };
    return this.#correction.value;
  }

  /** Stops admitting and waits for queued and running work (at most timeoutMs). */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.#state === 'closed') return true;
    this.#state = 'draining';
    return this.scheduler.drain(timeoutMs);
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.scheduler.close();
    await Promise.all(this.#dnsSets.map((s) => s.close()));
    await this.pool.close();
    this.inline?.close();
  }
}
