// A ceiling on the event-loop time that requests never reaching a model may take (the status page, /metrics, 404s):
// over it they are refused before any work, after a pause, so a flood of them cannot starve inference of the loop. Health
// probes and admin are never refused: an orchestrator's probe must not fail because of someone else's flood.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import { SlogateError } from '../core/errors.js';
import { ERROR_CODE_HEADER, sendError } from './errors.js';

/** The time constant of the recent-use average (ms): about the last second of other work counts. */
const WINDOW_MS = 1000;

const REFUSAL_CODE = 'SLOGATE_ERR_OTHER_WORK_LIMITED';

/** How long a refusal waits before it is sent (ms). */
const REFUSAL_DELAY_MS = 200;

/** Routes a flood may hit for free; undefined is a request no route matched (404). */
const LIMITED: ReadonlySet<string | undefined> = new Set([undefined, '/metrics', '/status', '/status/data', '/']);

/** Recent use as an exponentially decaying sum: `share` of the loop over the last window at most. */
export class OtherWorkBudget {
  readonly #clock: Clock;
  readonly #capMs: number;
  #usedMs = 0;
  #atMs: number;
  #refused = 0;

  /** `share`: the fraction of the event loop other work may use (0-1). */
  constructor(clock: Clock, share: number) {
    this.#clock = clock;
    this.#capMs = share * WINDOW_MS;
    this.#atMs = clock.now();
  }

  spend(ms: number): void {
    this.#decay();
    this.#usedMs += ms;
  }

  /** Charges a finished request's time when it is of a limited kind (admin and health are neither charged nor refused). */
  charge(req: FastifyRequest, ms: number): void {
    if (ms > 0 && isLimited(req)) this.spend(ms);
  }

  /** Whether the recent use is over the share (refuses, and counts the refusal). */
  refuse(): boolean {
    this.#decay();
    if (this.#usedMs <= this.#capMs) return false;
    this.#refused++;
    return true;
  }

  /** Requests refused since the start. */
  get refusedCount(): number {
    return this.#refused;
  }

  /** Whether this reply is one of the budget's refusals. */
  refused(reply: FastifyReply): boolean {
    return reply.getHeader(ERROR_CODE_HEADER) === REFUSAL_CODE;
  }

  #decay(): void {
    const now = this.#clock.now();
    const dt = now - this.#atMs;
    if (dt <= 0) return;
    this.#usedMs *= Math.exp(-dt / WINDOW_MS);
    this.#atMs = now;
  }

  /** Refuses limited requests with 429 while over the share, before their handler runs. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', (req, reply, done) => {
      if (!isLimited(req) || !this.refuse()) return done();
      // Answered after a pause: a client looping on these endpoints then sends a few a second per connection instead
      // of as many as the loop can refuse. The route's handler never runs (done is not called).
      this.#clock.setTimer(() => refuseNow(reply), REFUSAL_DELAY_MS);
    });
  }
}

function refuseNow(reply: FastifyReply): void {
  if (reply.sent || reply.raw.destroyed) return;
  const err = new SlogateError(REFUSAL_CODE, 'busy: status, metrics and unknown paths wait', {
    retryAfterMs: 1000,
  });
  sendError(reply, err);
}

function isLimited(req: FastifyRequest): boolean {
  return LIMITED.has(req.routeOptions.url);
}
