// The composition root: config -> runtime -> policies -> gateway. Everything is built here and passed down;
// nothing else reads process.env or constructs another layer's parts.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Clock } from './core/clock.js';
import { SystemClock } from './core/clock.js';
import type { Config } from './core/config.js';
import type { Logger } from './core/logger.js';
import { Metrics } from './core/metrics.js';
import { ConfigWatch } from './gateway/config-watch.js';
import { OtherWorkMeter } from './gateway/other-work.js';
import { OtherWorkBudget } from './gateway/other-work-budget.js';
import { buildServer } from './gateway/server.js';
import { closeConnections, SHUTDOWN_WAIT_MS, stopListening, within } from './gateway/shutdown.js';
import { startTracing, type Tracing, tracingConfigFromEnv } from './gateway/tracing.js';
import type { RequestPath } from './gateway/v2/infer-service.js';
import { WARMUP_PATH, warmUp, warmupTargets } from './gateway/warmup.js';
import { ConfigApplier, liveConfig } from './policies/apply-executor.js';
import { Controller } from './policies/controller.js';
import { Deployer } from './policies/deploy-pipeline.js';
import { RolloutRunner } from './policies/rollout/rollout-runner.js';
import { Router } from './policies/router.js';
import { RouteSloRecorder } from './policies/slo-recorder.js';
import { ModelStore } from './runtime/model-store.js';
import { Runtime, resolveIntraOpThreads } from './runtime/runtime.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface SlogateOptions {
  readonly config: Readonly<Config>;
  readonly clock?: Clock;
  /** Defaults to a pino logger at config.server.logLevel. */
  readonly logger?: pino.Logger;
  readonly defaultMetrics?: boolean;
  /** Where the OTEL_* tracing variables are read (default: process.env); tracing is off unless they name an exporter. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The config's file: relative paths of applied configs resolve beside it; server.watchConfig watches it. */
  readonly configFile?: string | undefined;
}

export interface Slogate {
  readonly config: Readonly<Config>;
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly router: Router;
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tracing: Tracing;
  /** Model revisions: deploy, rollback, describe. */
  readonly deployer: Deployer;
  /** Declarative changes: `slogate apply`, the config watch, Triton's unload and load. */
  readonly applier: ConfigApplier;
  /** The config file watch (server.watchConfig with a config file), else undefined. */
  readonly configWatch: ConfigWatch | undefined;
  readonly rollouts: RolloutRunner;
  /** Listens on config.server.host:port (or the given port); returns the address. */
  listen(port?: number): Promise<string>;
  /**
   * Stops admitting and listening, drains queued and running work (bounded by drainTimeoutMs) while open connections
   * are still answered (at least shutdownGraceMs), then closes everything, each step bounded (shutdownBoundMs).
   * Idempotent.
   */
  close(): Promise<void>;
}

export async function createSlogate(options: SlogateOptions): Promise<Slogate> {
  const { config } = options;
  const clock = options.clock ?? new SystemClock();
  const logger = options.logger ?? pino({ level: config.server.logLevel, base: { service: 'slogate' } });
  const metrics = new Metrics({ defaultMetrics: options.defaultMetrics ?? true });
  const tracing = await startTracing(tracingConfigFromEnv(options.env ?? process.env), {
    serviceVersion: VERSION,
    logger,
  });
  let store: ModelStore;
  try {
    store = ModelStore.open(config.store.dir, {
      keepRevisions: config.store.keepRevisions,
      maxFileBytes: config.store.maxFileBytes,
    });
  } catch (err) {
    await tracing.shutdown();
    throw err;
  }
  const runtime = await Runtime.create({ config, clock, metrics, logger, tracing: tracing.hooks, store }).catch(
    async (err: unknown) => {
      await tracing.shutdown();
      throw err;
    },
  );
  let admitting = true;
  const pricePerSlotMs = slotPricePerMs(config);
  const wallOffsetMs = Date.now() - clock.now();
  const router = new Router({ runtime, clock, metrics, routes: config.routes, wallOffsetMs });
  for (const route of router.routes.keys()) metrics.initRoute(route);
  metrics.onCollect(metrics.p99Target, () => {
    for (const r of router.routes.values()) metrics.p99Target.labels(r.name).set(r.config.slo.p99Ms / 1000);
  });
  const otherWork = new OtherWorkMeter(clock, new OtherWorkBudget(clock, config.server.otherWorkShare));
  const rollouts = new RolloutRunner({
    runtime,
    store,
    metrics,
    logger,
    clock,
    variants: Object.entries(config.models).flatMap(([model, m]) =>
      Object.keys(m.variants).map((variant) => ({ model, variant })),
    ),
  });
  const controller = new Controller({
    config,
    runtime,
    router,
    clock,
    metrics,
    logger,
    pricePerSlotMs,
    otherWorkMs: () => otherWork.takeMs(),
    rolloutNote: (model, variant) => rollouts.note(model, variant),
    shadowShare: (model, variant) => runtime.split.get(model, variant)?.shadowShare ?? 0,
  });
  router.setDecisionSource(controller);
  const live: RequestPath = {
    gate: controller.gate,
    recorder: new RouteSloRecorder({
      routes: router.routes,
      metrics,
      clock,
      pricePerSlotMs,
      onLate: (route) => controller.alarm(route),
    }),
    observed: true,
  };
  let warming = false;
  // Models and routes change while serving (apply, the config watch); the deployer reads them as they are now.
  const running = liveConfig(config);
  const deployer = new Deployer({ config: running, store, runtime, metrics, logger, rollouts });
  const configDir = options.configFile === undefined ? process.cwd() : dirname(resolve(options.configFile));
  const applier = new ConfigApplier({
    live: running,
    runtime,
    router,
    controller,
    deployer,
    store,
    logger,
    baseDir: configDir,
  });
  const app = await buildServer({
    config,
    runtime,
    router,
    controller,
    metrics,
    clock,
    version: VERSION,
    logger,
    admitting: () => admitting,
    wallOffsetMs,
    tracing,
    requestPath: () => (warming ? WARMUP_PATH : live),
    deployer,
    applier,
    configDir,
    otherWork,
    rollouts,
  });
  try {
    await runtime.start();
    // Before the engine starts (no decision yet: routes send to their most accurate variant, nothing is admitted or
    // accounted) and before the server listens (nothing else can arrive).
    warming = true;
    const targets = warmupTargets(router.routes.values(), (model) => runtime.model(model).signature);
    const w = await warmUp(app, targets, config.server.warmup, clock).finally(() => {
      warming = false;
    });
    metrics.forgetWarmup();
    if (w.requests > 0)
      logger.info({ requests: w.requests, failed: w.failed, ms: Math.round(w.ms) }, 'request path warmed');
  } catch (err) {
    await runtime.close();
    await tracing.shutdown();
    throw err;
  }
  controller.start();
  const configWatch =
    config.server.watchConfig && options.configFile !== undefined
      ? new ConfigWatch({
          file: options.configFile,
          env: options.env ?? process.env,
          clock,
          logger,
          metrics,
          apply: (next) =>
            applier.apply({
              config: next,
              compareSettings: true,
              localPaths: true,
              who: 'config watch',
              why: `${options.configFile} changed`,
            }),
        })
      : undefined;
  configWatch?.start();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // After this turn's I/O, so that connections it accepted are answered rather than reset with the listener.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const graceOver = stopListening(app, config.server.shutdownGraceMs, clock);
      // Answers close their connections only now: a client that reconnects is refused, not queued behind a listener
      // about to close (the kernel resets what is still in its accept queue then).
      admitting = false;
      configWatch?.close();
      controller.close();
      rollouts.close();
      const drained = await runtime.drain(config.server.drainTimeoutMs);
      if (!drained)
        logger.warn({ drainTimeoutMs: config.server.drainTimeoutMs }, 'drain timed out; queued requests were refused');
      await graceOver;
      const cut = await closeConnections(app, clock);
      if (cut > 0) logger.warn({ connections: cut }, 'connections still busy after the drain were closed');
      if (!(await within(runtime.close(), SHUTDOWN_WAIT_MS.runtime, clock)))
        logger.warn({ waitMs: SHUTDOWN_WAIT_MS.runtime }, 'replicas did not finish their running batch; left behind');
      if (!(await within(tracing.shutdown(), SHUTDOWN_WAIT_MS.tracing, clock)))
        logger.warn({ waitMs: SHUTDOWN_WAIT_MS.tracing }, 'tracing did not flush in time');
    })();
    return closing;
  };

  return {
    config,
    app,
    runtime,
    router,
    controller,
    metrics,
    logger,
    tracing,
    deployer,
    applier,
    configWatch,
    rollouts,
    async listen(port?: number) {
      return app.listen({ host: config.server.host, port: port ?? config.server.port });
    },
    close,
  };
}

/** Price of one replica slot per millisecond: a CPU worker holds intraOpThreads cores; a CUDA worker a whole GPU. */
export function slotPricePerMs(config: Readonly<Config>): number {
  const hourly =
    config.runtime.device === 'cpu'
      ? config.pricing.cpuCoreHour * resolveIntraOpThreads(config)
      : config.pricing.gpuHour;
  return hourly / 3_600_000;
}
