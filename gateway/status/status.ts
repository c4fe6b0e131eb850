// The public, read-only status page: GET / and /status serve one self-contained HTML page (inline CSS and JS, SVG
// charts drawn by hand, nothing fetched but its own data) that polls GET /status/data every second. Unlike /admin it
// needs no token: it shows only what the routes promise and how they are doing. Also runs the shed-burst log.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { Controller } from '../../policies/controller.js';
import type { Router } from '../../policies/router.js';
import type { Runtime } from '../../runtime/runtime.js';
import { OncePerPeriod } from './once-per-second.js';
import { PAGE_SCRIPT, PAGE_STYLE, renderPage } from './page.js';
import { ShedBurstLog, type ShedSample } from './shed-burst.js';
import { buildStatusData } from './status-data.js';

export interface StatusPluginOptions {
  readonly router: Router;
  readonly controller: Controller;
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  /** Per variant: the revision served and the latest deploy's gates (absent: no model store). */
  readonly revisions?: (() => readonly Record<string, string>[]) | undefined;
  /** Running and recent rollouts, one row each; absent: the panel stays empty. */
  readonly rollouts?: (() => readonly Record<string, string>[]) | undefined;
}

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
/** Only the page's own inline style and script run, and it talks only to this server. */
const CSP = `default-src 'none'; script-src ${sha256(PAGE_SCRIPT)}; style-src ${sha256(PAGE_STYLE)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'`;

export async function statusPlugin(app: FastifyInstance, opts: StatusPluginOptions): Promise<void> {
  const { router, controller, runtime, clock } = opts;
  const startedWallMs = Date.now();
  const wallOffsetMs = Date.now() - clock.now();
  const html = renderPage(opts.version);

  const page = async (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', CSP)
      .send(html);
  app.get('/', page);
  app.get('/status', page);

  const cached = new OncePerPeriod<string>(1000);
  const build = (nowMs: number) =>
    buildStatusData({
      version: opts.version,
      nowMs,
      wallMs: nowMs + wallOffsetMs,
      startedWallMs,
      provider: runtime.provider,
      routes: [...router.routes.values()].map((r) => ({
        name: r.name,
        config: r.config,
        policy: r.config.policy.kind,
        stats: r.stats,
      })),
      decision: (route) => controller.current(route),
      changes: controller.history(nowMs - 15 * 60_000),
      replicas: runtime.replicaStats(),
      queues: runtime.queueStats(),
      utilisation: controller.utilisation,
    });
  // Computed at most once a second whatever the number of viewers: a flood of pollers costs the event loop (which the
  // engine reads as gateway load) no more than one viewer.
  app.get('/status/data', async (_req, reply) => {
    const nowMs = clock.now();
    const body = cached.get(nowMs, () =>
      JSON.stringify({
        ...build(nowMs),
        revisions: opts.revisions?.() ?? [],
        rollouts: opts.rollouts?.() ?? [],
      }),
    );
    return reply
      .header('cache-control', 'no-store')
      .header('content-type', 'application/json; charset=utf-8')
      .send(body);
  });

  const shed = new ShedBurstLog({
    clock,
    logger: opts.logger,
    read: async (): Promise<ShedSample[]> =>
      (await opts.metrics.shed.get()).values.map((v) => ({
        route: String(v.labels.route),
        code: String(v.labels.code),
        value: v.value,
      })),
  });
  shed.start();
  app.addHook('onClose', async () => shed.close());
}
