// How long the event loop spent on requests that never reach a model (the status page, /metrics, admin, 404s), so
// the engine's gateway-saturation signal counts only inference work: shedding inference cannot relieve a loop that
// other traffic keeps busy, and a flood of it must not make the engine shed.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { OtherWorkBudget } from './other-work-budget.js';

/** Route patterns of the inference endpoints (everything else is other work). */
const INFERENCE_URLS: ReadonlySet<string> = new Set([
  '/v2/models/:route/infer',
  '/v2/models/:route/versions/:version/infer',
]);

/** One request's time counts at most this much (ms): a request held by other work must not count that work. */
const MAX_REQUEST_MS = 50;

/**
 * What the hooks cannot time is charged by estimate: HTTP parsing before onRequest (a floor per request) and the
 * socket write after onSend (per byte of the answer). A cached answer is cheap to build but not to parse and send.
 */
const UNSEEN_MS_PER_REQUEST = 0.1;
const UNSEEN_MS_PER_KIB = 0.002;

export class OtherWorkMeter {
  readonly #clock: Clock;
  readonly #startedMs = new WeakMap<FastifyRequest, number>();
  #busyMs = 0;

  readonly #budget: OtherWorkBudget | undefined;

  /** `budget`: where the same time is charged, so other work over its share is refused. */
  constructor(clock: Clock, budget?: OtherWorkBudget) {
    this.#clock = clock;
    this.#budget = budget;
  }

  /** Times every non-inference request from its arrival to its serialised answer (handler and serialisation). */
  install(app: FastifyInstance): void {
    // Callback hooks: every request passes them, and async ones would cost a promise each.
    app.addHook('onRequest', (req, _reply, done) => {
      if (!isInference(req)) this.#startedMs.set(req, this.#clock.now());
      done();
    });
    app.addHook('onSend', (req, reply, payload, done) => {
      const t0 = this.#startedMs.get(req);
      // A refusal's time is its pause, not work: counting it would keep the share used up by the refusals themselves.
      if (t0 !== undefined && this.#budget?.refused(reply) === true) this.#startedMs.delete(req);
      else if (t0 !== undefined) {
        this.#startedMs.delete(req);
        const ms = this.#clock.now() - t0 + unseenMs(payload);
        this.add(ms);
        this.#budget?.charge(req, Math.min(ms, MAX_REQUEST_MS));
      }
      done(null, payload);
    });
    this.#budget?.install(app);
  }

  add(ms: number): void {
    if (ms > 0) this.#busyMs += Math.min(ms, MAX_REQUEST_MS);
  }

  /** Time spent on other work since the last call (ms); resets the sum. */
  takeMs(): number {
    const ms = this.#busyMs;
    this.#busyMs = 0;
    return ms;
  }
}

function isInference(req: FastifyRequest): boolean {
  const url = req.routeOptions.url;
  return url !== undefined && INFERENCE_URLS.has(url);
}

/** The estimated cost of a request's parsing and of writing its answer, which no hook sees. */
export function unseenMs(payload: unknown): number {
  const bytes = typeof payload === 'string' ? payload.length : Buffer.isBuffer(payload) ? payload.byteLength : 0;
  return UNSEEN_MS_PER_REQUEST + (bytes / 1024) * UNSEEN_MS_PER_KIB;
}
