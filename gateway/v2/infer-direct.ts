// Ordinary inference requests served straight from node:http, before Fastify routes them: a POST to an infer URL with
// a plain path, a declared length within the route's limit and a common media type. Fastify's routing, request and
// reply objects, hooks and body parser cost about as much event-loop time per request as the rest of the gateway's
// path; this path reads the body and writes the answer itself and shares everything else with the Fastify route
// (InferService). Anything else, including every request it is unsure of, is left to that route, which stays the
// reference: the same status, headers and body either way (test/integration/infer-direct.test.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SlogateError } from '../../core/errors.js';
import { LOAD_REPORT_HEADER } from '../../runtime/load-report.js';
import { errorBody, errorHeaders, noteWithheld } from '../errors.js';
import { REQUEST_ID_HEADER } from '../request-id.js';
import type { WithheldErrors } from '../withheld-errors.js';
import { type BodyBudget, budgetFull, type RouteBodyLimits } from './body-limits.js';
import { decimalValue } from './codec.js';
import type { InferAnswer, InferService } from './infer-service.js';
import { RequestHold } from './request-hold.js';

export interface InferDirectOptions {
  readonly service: InferService;
  readonly limits: RouteBodyLimits;
  readonly budget: BodyBudget;
  /** The same request ids as Fastify's (one counter for both paths). */
  readonly requestId: (req: IncomingMessage) => string;
  /** False once the server drains: each answer then closes its connection. */
  readonly admitting: () => boolean;
  readonly log: { error(obj: object, msg: string): void };
  readonly withheld: WithheldErrors | undefined;
}

/** The route and version named by an infer URL. */
export interface InferTarget {
  readonly route: string;
  readonly version: string | undefined;
}

const PREFIX = '/v2/models/';
const SUFFIX = '/infer';
const VERSIONS = '/versions/';
/** Longer declared lengths are past any body limit (server.bodyLimitBytes is at most 2^30: 10 digits). */
const MAX_LENGTH_DIGITS = 15;
/** Fastify's router leaves longer segments unmatched (routerOptions.maxParamLength). */
const MAX_SEGMENT_CHARS = 200;
/** Media types taken here; any other (or a broken one) goes through Fastify's checks. */
const PLAIN_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/json',
  'application/json; charset=utf-8',
  'application/octet-stream',
]);

export class InferDirect {
  readonly #o: InferDirectOptions;
  /** Requests taken since the start. */
  taken = 0;

  constructor(options: InferDirectOptions) {
    this.#o = options;
  }

  /** Serves `req` when it is an ordinary inference request; false leaves it (untouched) to Fastify. */
  take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false;
    const target = inferTarget(req.url);
    if (target === undefined) return false;
    const headers = req.headers;
    const type = headers['content-type'];
    if (headers['transfer-encoding'] !== undefined || (type !== undefined && !PLAIN_MEDIA_TYPES.has(type)))
      return false;
    const declared = headers['content-length'];
    const length = declared === undefined ? -1 : decimalValue(declared, MAX_LENGTH_DIGITS);
    if (length <= 0 || length > this.#o.limits.forRoute(target.route)) return false;
    this.taken++;
    const requestId = this.#o.requestId(req);
    try {
      this.#start(req, res, requestId, target, length);
    } catch (err) {
      this.#failed(req, res, requestId, err);
    }
    return true;
  }

  /** Admission, the body's bytes in the budget, then the body; the request is served once it has arrived. */
  #start(req: IncomingMessage, res: ServerResponse, requestId: string, target: InferTarget, length: number): void {
    const { service } = this.#o;
    const arrivalMs = service.now();
    const refusal = service.admit(target.route, target.version !== undefined, arrivalMs);
    if (refusal !== undefined) {
      this.#answerError(req, res, requestId, refusal);
      return;
    }
    if (!this.#o.budget.tryReserve(length)) {
      const e = budgetFull(this.#o.budget);
      service.recordEarlyError(target.route, e);
      this.#answerError(req, res, requestId, e);
      return;
    }
    const hold = new RequestHold(res, this.#o.budget, length);
    readBody(req, (body) => {
      this.#serve(req, res, requestId, target, arrivalMs, body, hold).catch((err: unknown) =>
        this.#failed(req, res, requestId, err),
      );
    });
  }

  /** A fault of the gateway's own: logged, answered 500 when nothing was sent yet; the process goes on. */
  #failed(req: IncomingMessage, res: ServerResponse, requestId: string, err: unknown): void {
    this.#o.log.error({ err, reqId: requestId }, 'inference failed unexpectedly');
    try {
      if (!res.headersSent)
        this.#answerError(req, res, requestId, new SlogateError('SLOGATE_ERR_INTERNAL', 'the direct path failed'));
    } catch {
      res.destroy();
    }
  }

  async #serve(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    target: InferTarget,
    arrivalMs: number,
    body: Buffer,
    hold: RequestHold,
  ): Promise<void> {
    const answer = await this.#o.service.infer({
      routeName: target.route,
      version: target.version,
      arrivalMs,
      body,
      jsonLengthHeader: req.headers['inference-header-content-length'],
      hold,
    });
    if (answer instanceof SlogateError) {
      if (answer.code === 'SLOGATE_ERR_INTERNAL')
        this.#o.log.error({ err: answer, reqId: requestId }, 'inference failed unexpectedly');
      this.#answerError(req, res, requestId, answer);
    } else this.#answer(res, requestId, 200, answerHeaders(answer), answer.body);
  }

  #answerError(req: IncomingMessage, res: ServerResponse, requestId: string, err: SlogateError): void {
    noteWithheld(err, { requestId, method: 'POST', url: req.url ?? '' }, this.#o.log, this.#o.withheld);
    this.#answer(res, requestId, err.statusCode, errorHeaders(err), errorBody(err, requestId));
  }

  /** Writes an answer with the headers every inference answer carries (as the Fastify route's hooks add them). */
  #answer(
    res: ServerResponse,
    requestId: string,
    statusCode: number,
    headers: Record<string, string>,
    body: Buffer | string,
  ): void {
    headers[REQUEST_ID_HEADER] = requestId;
    if (!this.#o.admitting()) headers.connection = 'close';
    headers[LOAD_REPORT_HEADER] = this.#o.service.loadReport();
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    res.writeHead(statusCode, headers);
    res.end(body);
  }
}

/** The last URL read and its target: a client's requests mostly repeat one URL. */
let lastUrl: string | undefined;
let lastTarget: InferTarget | undefined;

/** The route and version of an infer URL without a query, escapes or empty segments; undefined for any other. */
export function inferTarget(url: string | undefined): InferTarget | undefined {
  if (url !== lastUrl) {
    lastTarget = parseTarget(url);
    lastUrl = url;
  }
  return lastTarget;
}

function parseTarget(url: string | undefined): InferTarget | undefined {
  if (url === undefined || !url.startsWith(PREFIX) || !url.endsWith(SUFFIX)) return undefined;
  const middle = url.slice(PREFIX.length, url.length - SUFFIX.length);
  if (!isPlainPath(middle)) return undefined;
  const slash = middle.indexOf('/');
  if (slash < 0) return segment(middle) ? { route: middle, version: undefined } : undefined;
  const route = middle.slice(0, slash);
  const rest = middle.slice(slash);
  if (!rest.startsWith(VERSIONS)) return undefined;
  const version = rest.slice(VERSIONS.length);
  return segment(route) && segment(version) && !version.includes('/') ? { route, version } : undefined;
}

function segment(s: string): boolean {
  return s.length > 0 && s.length <= MAX_SEGMENT_CHARS;
}

/** No query, fragment or escape: those, and the decoding they need, stay with Fastify's router. */
function isPlainPath(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ || c === 63 /* ? */ || c === 35 /* # */ || c === 59 /* ; */) return false;
  }
  return true;
}

function answerHeaders(answer: InferAnswer): Record<string, string> {
  return answer.jsonLength === undefined
    ? { 'server-timing': answer.serverTiming, 'content-type': answer.contentType }
    : {
        'server-timing': answer.serverTiming,
        'content-type': answer.contentType,
        'inference-header-content-length': String(answer.jsonLength),
      };
}

/**
 * Collects the body; `done` runs once it has all arrived (a client that leaves first is heard by its hold). The
 * listeners stay on the request, which its connection keeps until the next one arrives: once the body is complete
 * they let go of it and of `done`, or an idle connection would keep the last request's body and answer alive (and
 * under load push them into the old generation).
 */
function readBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  let chunks: Buffer[] | undefined = [];
  let bytes = 0;
  let then: ((body: Buffer) => void) | undefined = done;
  req.on('data', (chunk: Buffer) => {
    chunks?.push(chunk);
    bytes += chunk.byteLength;
  });
  req.on('end', () => {
    const list = chunks ?? [];
    const finish = then;
    chunks = undefined;
    then = undefined;
    finish?.(list.length === 1 ? (list[0] as Buffer) : Buffer.concat(list, bytes));
  });
  req.on('error', () => {});
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by buildServer when the direct path serves inference. */
    inferDirect?: InferDirect;
  }
}
