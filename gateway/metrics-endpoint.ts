// GET /metrics, rendered at most once per period whatever the number of scrapers: a flood of scrapes costs the event
// loop (which the engine reads as gateway load) no more than one scraper, and concurrent scrapes share one render.
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.js';

/** What the endpoint needs of a prom-client registry. */
export interface ExpositionSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** One rendered exposition per content type, reused for `periodMs`; a failed render is not kept. */
export class CachedExposition {
  readonly #periodMs: number;
  readonly #entries = new Map<string, { atMs: number; text: Promise<string> }>();

  constructor(periodMs = 1000) {
    this.#periodMs = periodMs;
  }

  get(contentType: string, nowMs: number, render: () => Promise<string>): Promise<string> {
    const entry = this.#entries.get(contentType);
    if (entry !== undefined && nowMs - entry.atMs < this.#periodMs && nowMs >= entry.atMs) return entry.text;
    const text = render();
    const fresh = { atMs: nowMs, text };
    this.#entries.set(contentType, fresh);
    text.catch(() => {
      if (this.#entries.get(contentType) === fresh) this.#entries.delete(contentType);
    });
    return text;
  }
}

export interface MetricsEndpointOptions {
  readonly registry: ExpositionSource;
  readonly clock: Clock;
  /** How long one render is served; Prometheus scrapes every 15 s by default, so a second is invisible to it. */
  readonly periodMs?: number;
}

export function metricsEndpoint(app: FastifyInstance, opts: MetricsEndpointOptions): void {
  const cache = new CachedExposition(opts.periodMs ?? 1000);
  app.get('/metrics', async (_req, reply) => {
    const contentType = opts.registry.contentType;
    const text = await cache.get(contentType, opts.clock.now(), () => opts.registry.metrics());
    return reply.header('content-type', contentType).send(text);
  });
}
