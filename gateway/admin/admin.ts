// The admin API for SREs: read routes, decisions (with their inputs and reasons), history, profiles, replicas and
// queues; change a route's policy without a restart. Bearer-token protected; without a token it answers loopback
// callers that name a loopback Host only (admin-token.ts).
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../core/clock.js';
import { formatIssues, RouteSchema } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ConfigApplier } from '../../policies/apply-executor.js';
import type { Controller } from '../../policies/controller.js';
import type { Deployer } from '../../policies/deploy-pipeline.js';
import type { RolloutRunner } from '../../policies/rollout/rollout-runner.js';
import type { Router, RouteState } from '../../policies/router.js';
import { serializeSnapshot } from '../../policies/snapshot-codec.js';
import type { Runtime } from '../../runtime/runtime.js';
import { sendError } from '../errors.js';
import { isLoopbackHostHeader } from './admin-token.js';
import { applyPlugin } from './apply.js';
import { type NodeRevisionsOptions, nodeRevisionsPlugin } from './node-revisions.js';
import { revisionsPlugin } from './revisions.js';
import { rolloutsPlugin } from './rollouts.js';

export interface AdminPluginOptions {
  readonly router: Router;
  readonly controller: Controller;
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly adminToken: string | undefined;
  /** Monotonic clock -> wall clock offset (ms), to accept ISO times in ?since=. */
  readonly wallOffsetMs: number;
  /** Model revisions (deploy, rollback); their routes are absent without it. */
  readonly deployer?: Deployer | undefined;
  /** Rollouts (list, pause, resume, abort); their routes are absent without it. */
  readonly rollouts?: RolloutRunner | undefined;
  readonly maxFileBytes?: number;
  /** A runtime node's receiving end of remote revisions (every server can be one). */
  readonly nodeRevisions?: NodeRevisionsOptions | undefined;
  /** Declarative changes: POST /admin/apply, Triton's unload and load with a config. */
  readonly applier?: ConfigApplier | undefined;
  readonly configDir?: string | undefined;
}

/** Routes a server holds at most: each costs per-second statistics, metrics series and a slot in every tick. */
export const MAX_ROUTES = 1000;

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Checks the bearer token (constant time); without a token only loopback callers naming a loopback Host pass. */
export function authorize(
  req: Pick<FastifyRequest, 'headers' | 'socket'>,
  token: string | undefined,
): SlogateError | undefined {
  if (token === undefined) {
    if (!LOOPBACK.has(req.socket.remoteAddress ?? ''))
      return new SlogateError(
        'SLOGATE_ERR_FORBIDDEN',
        'admin endpoints answer on loopback only when no server.adminToken is configured',
      );
    if (!isLoopbackHostHeader(req.headers.host))
      return new SlogateError(
        'SLOGATE_ERR_FORBIDDEN',
        'without server.adminToken, admin endpoints answer only to Host localhost, 127.0.0.1 or [::1]',
      );
    return undefined;
  }
  const h = req.headers.authorization;
  if (h === undefined || !h.startsWith('Bearer '))
    return new SlogateError('SLOGATE_ERR_UNAUTHORIZED', 'admin endpoints need Authorization: Bearer <token>');
  const given = Buffer.from(h.slice(7));
  const want = Buffer.from(token);
  if (given.length !== want.length || !timingSafeEqual(given, want))
    return new SlogateError('SLOGATE_ERR_FORBIDDEN', 'wrong admin token');
  return undefined;
}

export function routeView(r: RouteState, controller: Controller, nowMs: number) {
  const totals = r.stats.totals;
  const answered = totals.met + totals.missed;
  return {
    name: r.name,
    model: r.model.name,
    policy: r.config.policy.kind,
    config: r.config,
    allowedVariants: r.allowed,
    decision: controller.current(r.name) ?? null,
    engine: controller.engineState(r.name) ?? null,
    totals,
    attainment: totals.arrivals === 0 ? null : totals.met / Math.max(1, answered + totals.shed + totals.dropped),
    observedP99Ms: nullIfNaN(r.stats.observedP99(nowMs)),
  };
}

function nullIfNaN(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export async function adminPlugin(app: FastifyInstance, opts: AdminPluginOptions): Promise<void> {
  const { router, controller, runtime, clock } = opts;

  app.addHook('onRequest', async (req, reply) => {
    const denied = authorize(req, opts.adminToken);
    if (denied !== undefined) return sendError(reply, denied);
  });

  if (opts.deployer !== undefined)
    await app.register(revisionsPlugin, {
      deployer: opts.deployer,
      maxFileBytes: opts.maxFileBytes ?? 0,
      applier: opts.applier,
    });
  if (opts.applier !== undefined)
    await app.register(applyPlugin, {
      applier: opts.applier,
      maxFileBytes: opts.maxFileBytes ?? 0,
      baseDir: opts.configDir ?? process.cwd(),
    });
  if (opts.nodeRevisions !== undefined) await app.register(nodeRevisionsPlugin, opts.nodeRevisions);
  if (opts.rollouts !== undefined) await app.register(rolloutsPlugin, { rollouts: opts.rollouts });

  app.get('/admin/routes', async () => {
    const now = clock.now();
    return { routes: [...router.routes.values()].map((r) => routeView(r, controller, now)) };
  });

  app.get<{ Params: { route: string } }>('/admin/routes/:route', async (req) =>
    routeView(router.route(req.params.route), controller, clock.now()),
  );

  app.get<{ Params: { route: string } }>('/admin/routes/:route/decision', async (req) => {
    const r = router.route(req.params.route);
    const d = controller.current(r.name);
    if (d === undefined)
      throw new SlogateError('SLOGATE_ERR_NOT_READY', `no decision for '${r.name}' yet`, { retryAfterMs: 1000 });
    return d;
  });

  app.put<{ Params: { route: string } }>(
    '/admin/routes/:route',
    async (req: FastifyRequest<{ Params: { route: string } }>, reply: FastifyReply) => {
      const name = req.params.route;
      const parsed = RouteSchema.safeParse(req.body);
      if (!parsed.success) throw invalid(formatIssues(parsed.error.issues));
      const rc = parsed.data;
      const model = runtime.models.get(rc.model);
      const problems: string[] = [];
      if (model === undefined) problems.push(`model: unknown model "${rc.model}"`);
      else {
        const refs = [...(rc.variants ?? []), ...(rc.policy.kind === 'adaptive' ? [] : [rc.policy.variant])];
        for (const v of refs)
          if (!model.variants.has(v)) problems.push(`variants: model "${rc.model}" has no variant "${v}"`);
      }
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name))
        problems.push('route: must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit');
      if (!router.routes.has(name) && router.routes.size >= MAX_ROUTES)
        problems.push(`route: at most ${MAX_ROUTES} routes; delete one first (DELETE /admin/routes/{route})`);
      if (problems.length > 0) throw invalid(problems);
      const existed = router.routes.has(name);
      const before = router.routes.get(name)?.config;
      router.updateRoute(name, Object.freeze(rc));
      controller.applyFixedKnobs();
      controller.alarm(name);
      opts.logger.info(
        { route: name, before, after: rc },
        `route ${name} ${existed ? 'updated' : 'created'} through the admin API`,
      );
      return reply.code(existed ? 200 : 201).send(routeView(router.route(name), controller, clock.now()));
    },
  );

  app.delete<{ Params: { route: string } }>('/admin/routes/:route', async (req) => {
    const name = req.params.route;
    const before = router.route(name).config;
    router.removeRoute(name);
    controller.forgetRoute(name);
    opts.logger.info({ route: name, before }, `route ${name} deleted through the admin API`);
    return { deleted: name };
  });

  app.get<{ Querystring: { since?: string } }>('/admin/decisions', async (req) => {
    const since = parseSince(req.query.since, opts.wallOffsetMs);
    return { decisions: controller.history(since) };
  });

  app.get('/admin/engine/snapshot', async () => {
    const s = controller.lastSnapshot;
    if (s === undefined)
      throw new SlogateError('SLOGATE_ERR_NOT_READY', 'the engine has not run yet', { retryAfterMs: 1000 });
    return serializeSnapshot(s);
  });

  app.get('/admin/profiles', async () => ({
    provider: runtime.provider,
    replicas: runtime.readySlots,
    profiles: runtime.profileSnapshot(),
  }));
  app.get('/admin/replicas', async () => ({ replicas: runtime.replicaStats() }));
  app.get('/admin/errors', async () => ({ errors: app.withheldErrors?.list() ?? [] }));
  app.get('/admin/queues', async () => ({ queues: runtime.queueStats(), backlogMs: runtime.backlogMs() }));
}

function invalid(lines: readonly string[]): SlogateError {
  return new SlogateError(
    'SLOGATE_ERR_INVALID_POLICY',
    `invalid route policy:\n${lines.map((l) => `  ${l}`).join('\n')}`,
  );
}

/** `since` as clock ms: an ISO time or epoch ms (wall clock), converted with the offset; absent = everything. */
export function parseSince(since: string | undefined, wallOffsetMs: number): number {
  if (since === undefined || since === '') return Number.NEGATIVE_INFINITY;
  const asNumber = Number(since);
  const wall = Number.isFinite(asNumber) ? asNumber : Date.parse(since);
  if (!Number.isFinite(wall))
    throw new SlogateError(
      'SLOGATE_ERR_BAD_PARAMETER',
      `since must be an ISO time or epoch milliseconds, got '${since.slice(0, 40)}'`,
    );
  return wall - wallOffsetMs;
}
