// buildServer(deps): the Fastify app, assembled from encapsulated plugins and never listening by itself (tests use
// inject()). Inference routes live in their own plugin with their own body parsing; health, metadata, metrics and
// admin sit outside it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { ConfigApplier } from '../policies/apply-executor.js';
import type { Controller } from '../policies/controller.js';
import type { Deployer } from '../policies/deploy-pipeline.js';
import { NodeRevisions } from '../policies/node-revisions.js';
import type { RolloutRunner } from '../policies/rollout/rollout-runner.js';
import type { Router } from '../policies/router.js';
import type { Runtime } from '../runtime/runtime.js';
import { adminPlugin } from './admin/admin.js';
import { resolveAdminToken } from './admin/admin-token.js';
import { nodeRevisionCache } from './admin/node-revisions.js';
import { applyConnectionLimits, TIMEOUT_CHECK_INTERVAL_MS } from './connection-limits.js';
import { fromFastifyError, sendError } from './errors.js';
import { metricsEndpoint } from './metrics-endpoint.js';
import type { OtherWorkMeter } from './other-work.js';
import { requestIdOptions } from './request-id.js';
import { installRequestLog } from './status/request-log.js';
import { statusPlugin } from './status/status.js';
import type { Tracing } from './tracing.js';
import { BodyBudget, RouteBodyLimits, requestTimeoutMs } from './v2/body-limits.js';
import { readSocketsDirectly } from './v2/direct-sockets.js';
import { inferPlugin } from './v2/infer.js';
import { InferDirect } from './v2/infer-direct.js';
import { InferService, type RequestPath } from './v2/infer-service.js';
import { metadataPlugin } from './v2/metadata.js';
import { WithheldErrors } from './withheld-errors.js';

export interface ServerDeps {
  readonly config: Readonly<Config>;
  readonly runtime: Runtime;
  readonly router: Router;
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly version: string;
  readonly logger?: FastifyBaseLogger | undefined;
  /** False once the server drains for shutdown: readiness turns false and new inference is refused. */
  readonly admitting?: () => boolean;
  /** Monotonic clock -> wall clock offset (ms). */
  readonly wallOffsetMs?: number;
  /** OpenTelemetry tracing (off when absent). */
  readonly tracing?: Tracing | undefined;
  /** The admission gate and outcome recorder inference goes through now (the start-up warm-up has its own). */
  readonly requestPath: () => RequestPath;
  /** The deploy pipeline behind /admin/models (absent: no revision endpoints). */
  readonly deployer?: Deployer | undefined;
  /** Declarative changes (POST /admin/apply, Triton's unload and load with a config); absent: not offered. */
  readonly applier?: ConfigApplier | undefined;
  /** Where relative paths of an applied config resolve (the config file's directory). */
  readonly configDir?: string | undefined;
  /** Where the event-loop time of requests that never reach a model is counted (absent: not counted). */
  readonly otherWork?: OtherWorkMeter | undefined;
  readonly rollouts?: RolloutRunner | undefined;
}

/** Idle keep-alive connections close after this (ms): longer than the usual load balancer's 60 s. */
const KEEP_ALIVE_MS = 72_000;
/** A request read off its socket must arrive in full within this, or its connection goes to node:http (ms). */
const DIRECT_ARRIVAL_MS = 1000;

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const ids = requestIdOptions();
  const app = Fastify({
    ...(deps.logger !== undefined ? { loggerInstance: deps.logger } : { logger: false }),
    // Fastify's own request logging writes two lines per request; installRequestLog writes one (server.requestLog).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.server.bodyLimitBytes,
    ...ids,
    // While closing, requests still reach the handlers, which answer 503 SLOGATE_ERR_SHUTTING_DOWN with Retry-After.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: KEEP_ALIVE_MS,
    // Request and connection timeouts are derived once listening (applyConnectionLimits); checked every second.
    ...({ http: { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS } } as object),
    routerOptions: { maxParamLength: 200 },
    // Errors Fastify raises before routing (a malformed URL escape) leave the same way as every other error.
    frameworkErrors: (err, _req, reply) => {
      sendError(reply, fromFastifyError(err));
    },
  });
  const wallOffsetMs = deps.wallOffsetMs ?? Date.now() - deps.clock.now();
  app.decorate('withheldErrors', new WithheldErrors(() => deps.clock.now() + wallOffsetMs));
  const admitting = deps.admitting ?? (() => true);
  const unobserved = () => !deps.requestPath().observed;
  // First: the HTTP span wraps every route registered after it.
  await deps.tracing?.install(app, unobserved);
  if (config.server.requestLog) installRequestLog(app, deps.tracing, unobserved);
  deps.otherWork?.install(app);

  // A callback hook: every answer passes it, and an async one would cost a promise each.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    // Draining: each answer closes its connection, so clients move to other servers before idle sockets are closed.
    if (!admitting()) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler((err, _req, reply) => {
    const e = fromFastifyError(err);
    if (e.code === 'SLOGATE_ERR_INTERNAL') app.log.error({ err }, 'unhandled error');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new SlogateError('SLOGATE_ERR_NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}`)),
  );

  await app.register(metadataPlugin, { router: deps.router, runtime: deps.runtime, version: deps.version, admitting });
  const bodyLimits = new RouteBodyLimits(
    (name) => {
      const r = deps.router.routes.get(name);
      return r === undefined ? undefined : { model: r.model.name, maxBatch: r.model.config.maxBatch };
    },
    (model) => deps.runtime.repository.models.get(model)?.signature,
    config.server.bodyLimitBytes,
  );
  const budget = new BodyBudget(config.server.maxBodyBytesInFlight);
  const service = new InferService({
    router: deps.router,
    runtime: deps.runtime,
    clock: deps.clock,
    requestPath: deps.requestPath,
  });
  await app.register(inferPlugin, {
    service,
    bodyLimitBytes: config.server.bodyLimitBytes,
    bodyLimits: { limits: bodyLimits, budget },
  });
  if (config.server.directPath && deps.tracing?.enabled !== true && !config.server.requestLog) {
    const direct = new InferDirect({
      service,
      limits: bodyLimits,
      budget,
      requestId: ids.genReqId,
      admitting,
      log: app.log,
      withheld: app.withheldErrors,
    });
    if (routeDirectFirst(app, direct)) {
      app.decorate('inferDirect', direct);
      if (config.server.directSockets)
        readSocketsDirectly(app.server, { direct, arrivalMs: DIRECT_ARRIVAL_MS, keepAliveMs: KEEP_ALIVE_MS });
    }
  }

  const log: Logger = deps.logger ?? {
    error: () => {},
    warn: () => {},
    info: () => {},
    debug: () => {},
    child: () => log,
  };
  // Once listening the runtime has started, so the models' signatures (and with them the body limits) are known.
  app.addHook('onListen', async () => {
    const routes = [...deps.router.routes.values()];
    const largestBodyBytes = Math.max(0, ...routes.map((r) => bodyLimits.forRoute(r.name)));
    const maxSloP99Ms = Math.max(0, ...routes.map((r) => r.config.slo.p99Ms));
    const limits = {
      requestTimeoutMs: requestTimeoutMs(largestBodyBytes, maxSloP99Ms),
      maxConnections: config.server.maxConnections,
    };
    applyConnectionLimits(app.server, limits, { log, clock: deps.clock, dropped: deps.metrics.connectionsDropped });
    log.info({ ...limits, largestBodyBytes }, 'connection limits');
  });

  const admin = resolveAdminToken(config.server.adminToken, config.server.host, config.runtime.profile.cacheDir);
  if (admin.generatedFile !== undefined)
    log.warn(
      { file: admin.generatedFile },
      `admin API: server.host ${config.server.host} is not loopback and no server.adminToken is set: ` +
        'generated a token, readable only by this user, in the file logged here',
    );
  else if (admin.unwritable !== undefined)
    log.warn(
      `admin API closed: server.host ${config.server.host} is not loopback, no server.adminToken is set, ` +
        `and no token file could be written (${admin.unwritable})`,
    );
  else if (admin.token === undefined)
    log.warn('admin API: no server.adminToken configured; /admin answers on loopback only');
  await app.register(adminPlugin, {
    router: deps.router,
    controller: deps.controller,
    runtime: deps.runtime,
    clock: deps.clock,
    logger: log,
    adminToken: admin.token,
    wallOffsetMs: deps.wallOffsetMs ?? Date.now() - deps.clock.now(),
    deployer: deps.deployer,
    applier: deps.applier,
    configDir: deps.configDir,
    rollouts: deps.rollouts,
    maxFileBytes: config.store.maxFileBytes,
    nodeRevisions: {
      node: new NodeRevisions(deps.runtime, nodeRevisionCache(config)),
      maxFileBytes: config.store.maxFileBytes,
      bodyLimitBytes: config.server.bodyLimitBytes,
    },
  });

  await app.register(statusPlugin, {
    router: deps.router,
    controller: deps.controller,
    runtime: deps.runtime,
    metrics: deps.metrics,
    clock: deps.clock,
    logger: log,
    version: deps.version,
    revisions: deps.deployer === undefined ? undefined : () => deps.deployer?.statusRows() ?? [],
    rollouts: deps.rollouts === undefined ? undefined : () => deps.rollouts?.statusRows() ?? [],
  });

  metricsEndpoint(app, { registry: deps.metrics.registry, clock: deps.clock });

  return app;
}

/**
 * Puts the direct inference path in front of Fastify's request handler on its server: Fastify's handler stays the
 * only other 'request' listener and gets every request the direct path leaves. (A serverFactory would also do, but
 * it makes Fastify skip its own server set-up: timeouts, and binding every address of a host name.)
 */
function routeDirectFirst(app: FastifyInstance, direct: InferDirect): boolean {
  const listeners = app.server.listeners('request');
  const fastify = listeners[0] as ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  if (listeners.length !== 1 || fastify === undefined) {
    app.log.warn(`direct inference path off: the server has ${listeners.length} request listeners, not 1`);
    return false;
  }
  app.server.removeListener('request', fastify);
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!direct.take(req, res)) fastify(req, res);
  });
  return true;
}
