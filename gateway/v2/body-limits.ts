// What a client's upload may cost: a per-model body limit derived from the signature and maxBatch, the request
// timeout derived from it and the SLOs, and one budget of body bytes held at once. Refusals come from the
// declared Content-Length, before a byte of the body is buffered.
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { SlogateError } from '../../core/errors.js';
import type { ModelSignature } from '../../core/types.js';
import { type HoldingRequest, RequestHold } from './request-hold.js';

/**
 * JSON bytes one tensor element may take: a double printed in full ("-2.2250738585072014e-308", 24) or an INT64
 * (20 digits and a sign), its separator, and a few spaces. The binary extension needs at most 8.
 */
export const JSON_BYTES_PER_ELEMENT = 32;
/** Names, shapes, datatypes, parameters and the binary header around the data. */
export const BODY_OVERHEAD_BYTES = 64 * 1024;
/** The slowest upload a legal request is given time for: 1 MB/s. */
export const MIN_UPLOAD_BYTES_PER_S = 1_000_000;
/** Headers, connection set-up and scheduling on top of the upload. */
export const REQUEST_TIMEOUT_BASE_MS = 1000;

/**
 * The largest legal inference body of a model: every input at maxBatch rows (1 without a batch dimension), in JSON
 * (the larger encoding). Capped by the server's limit, which also stands in when the size cannot be bounded (BYTES
 * inputs, or dynamic dimensions beyond the batch).
 */
export function modelBodyLimitBytes(sig: ModelSignature, maxBatch: number, serverLimitBytes: number): number {
  let elements = 0;
  for (const input of sig.inputs) {
    if (input.datatype === 'BYTES') return serverLimitBytes;
    let n = 1;
    for (const [i, d] of input.shape.entries()) {
      if (d >= 0) n *= d;
      else if (i === 0 && sig.batchable) n *= maxBatch;
      else return serverLimitBytes;
    }
    elements += n;
  }
  return Math.min(serverLimitBytes, elements * JSON_BYTES_PER_ELEMENT + BODY_OVERHEAD_BYTES);
}

/**
 * How long a whole request (headers and body) may take to arrive: the largest legal body at the slowest upload
 * rate allowed, plus the longest SLO (a request slower than that has missed it anyway), plus a base.
 */
export function requestTimeoutMs(largestBodyBytes: number, maxSloP99Ms: number): number {
  return (
    REQUEST_TIMEOUT_BASE_MS + Math.ceil(maxSloP99Ms) + Math.ceil((largestBodyBytes * 1000) / MIN_UPLOAD_BYTES_PER_S)
  );
}

/** Per-route body limits, computed once per model (signatures are known once the runtime has started). */
export class RouteBodyLimits {
  readonly #modelOf: (route: string) => { model: string; maxBatch: number } | undefined;
  readonly #signature: (model: string) => ModelSignature | undefined;
  readonly #serverLimitBytes: number;
  readonly #byModel = new Map<string, { readonly maxBatch: number; readonly limit: number }>();

  constructor(
    modelOf: (route: string) => { model: string; maxBatch: number } | undefined,
    signature: (model: string) => ModelSignature | undefined,
    serverLimitBytes: number,
  ) {
    this.#modelOf = modelOf;
    this.#signature = signature;
    this.#serverLimitBytes = serverLimitBytes;
  }

  /** The route's limit; the server's for an unknown route or a model still loading. */
  forRoute(route: string | undefined): number {
    const m = route === undefined ? undefined : this.#modelOf(route);
    if (m === undefined) return this.#serverLimitBytes;
    const cached = this.#byModel.get(m.model);
    if (cached !== undefined && cached.maxBatch === m.maxBatch) return cached.limit;
    const sig = this.#signature(m.model);
    if (sig === undefined) return this.#serverLimitBytes;
    const limit = modelBodyLimitBytes(sig, m.maxBatch, this.#serverLimitBytes);
    this.#byModel.set(m.model, { maxBatch: m.maxBatch, limit });
    return limit;
  }
}

/** Body bytes held at once, across requests: reserved before the body is read, released when the answer is sent. */
export class BodyBudget {
  readonly maxBytes: number;
  #heldBytes = 0;
  #refused = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Reserves `bytes`; false when that would pass the budget (a lone request always fits, however large). */
  tryReserve(bytes: number): boolean {
    if (this.#heldBytes > 0 && this.#heldBytes + bytes > this.maxBytes) {
      this.#refused++;
      return false;
    }
    this.#heldBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#heldBytes = Math.max(0, this.#heldBytes - bytes);
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Requests refused since start. */
  get refused(): number {
    return this.#refused;
  }
}

/** A body stream that fails with 413 once more than `limitBytes` have passed (a chunked body declares no length). */
export function limitBody(limitBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.byteLength;
      if (seen > limitBytes) done(bodyTooLarge(limitBytes));
      else done(null, chunk);
    },
  });
}

export function budgetFull(budget: BodyBudget): SlogateError {
  return new SlogateError(
    'SLOGATE_ERR_OVERLOADED',
    `the gateway holds ${budget.maxBytes} bytes of request bodies already; retry shortly`,
    { retryAfterMs: 1000 },
  );
}

export function bodyTooLarge(limitBytes: number): SlogateError {
  return new SlogateError(
    'SLOGATE_ERR_BODY_TOO_LARGE',
    `request body exceeds this model's limit of ${limitBytes} bytes`,
  );
}

/**
 * Before the body is read: refuses a declared length over the route's limit (413), reserves the bytes in the budget
 * (503 SLOGATE_ERR_OVERLOADED when full) until the answer is sent, and caps a chunked body as it streams. The
 * reservation is the request's `hold`, which the handler also uses to learn that the client left.
 */
export function installBodyLimits(app: FastifyInstance, limits: RouteBodyLimits, budget: BodyBudget): void {
  app.decorateRequest('hold', null);
  // A callback hook (an async one costs a promise per request); Fastify passes what it throws to the error handler.
  app.addHook('preParsing', (req, reply, payload, done) => {
    const limit = limits.forRoute((req.params as { route?: string } | undefined)?.route);
    const header = req.headers['content-length'];
    const declared = header === undefined ? undefined : Number(header);
    if (declared !== undefined && declared > limit) throw bodyTooLarge(limit);
    const bytes = declared !== undefined && Number.isFinite(declared) ? declared : limit;
    if (!budget.tryReserve(bytes)) throw budgetFull(budget);
    (req as typeof req & HoldingRequest).hold = new RequestHold(reply.raw, budget, bytes);
    done(null, declared === undefined ? payload.pipe(limitBody(limit)) : payload);
  });
}
