// Ordinary inference requests served straight from node:http, before Fastify routes them: a POST to an infer URL with
// a plain path, a declared length within the route's limit and a common media type. Fastify's routing, request and
// reply objects, hooks and body parser cost about as much event-loop time per request as the rest of the gateway's
// path; this path reads the body and writes the answer itself and shares everything else with the Fastify route
// (InferService). Anything else, including every request it is unsure of, is left to that route, which stays the
// reference: the same status, headers and body either way (test/integration/infer-direct.test.ts).
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { SlogateError } from '../../core/errors.js';
import { LOAD_REPORT_HEADER } from '../../runtime/load-report.js';
import { errorBody, errorHeaders, noteWithheld } from '../errors.js';
import { REQUEST_ID_HEADER } from '../request-id.js';
import type { WithheldErrors } from '../withheld-errors.js';
import { type BodyBudget, budgetFull, type RouteBodyLimits } from './body-limits.js';
import { decimalValue } from './codec.js';
import type { InferAnswer, InferService } from './infer-service.js';
import { type Closing, RequestHold } from './request-hold.js';

export interface InferDirectOptions {
  readonly service: InferService;
  readonly limits: RouteBodyLimits;
  readonly budget: BodyBudget;
  /** The same request ids as Fastify's (one counter for both paths), from the request's headers. */
  readonly requestId: (req: { headers: IncomingHttpHeaders }) => string;
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

/** A request as the sockets read it (direct-sockets.ts): what the direct path looks at. */
export interface DirectRequest {
  readonly url: string;
  readonly contentType: string | undefined;
  readonly jsonLength: string | undefined;
  readonly requestId: string | undefined;
}

/** Writes one whole answer: its status, headers and body. */
type WriteAnswer = (statusCode: number, headers: Record<string, string>, body: Buffer | string) => void;

/** One request on the direct path, whichever reads it and writes its answer. */
interface Exchange {
  readonly requestId: string;
  readonly url: string;
  readonly target: InferTarget;
  readonly length: number;
  readonly jsonLength: string | string[] | undefined;
  readonly write: WriteAnswer;
  /** Whether its answer has begun. */
  readonly sent: () => boolean;
  /** Gives up on the connection (an answer could not be written). */
  readonly abort: () => void;
}

/** An exchange read off a socket while it is served: its end (answered or not), and the client's leaving. */
export interface ServingExchange {
  readonly answered: Promise<void>;
  /** The connection closed: the work is cancelled if it still runs, and its body bytes released. */
  close(): void;
}

/** The request-id input of an exchange read off a socket, reused: ids are made from the sent header alone. */
const SENT_ID: { headers: IncomingHttpHeaders } = { headers: {} };

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
    if (headers['transfer-encoding'] !== undefined) return false;
    const declared = headers['content-length'];
    const length = declared === undefined ? -1 : decimalValue(declared, MAX_LENGTH_DIGITS);
    if (!this.#plain(headers['content-type'], length, target)) return false;
    this.taken++;
    const ex: Exchange = {
      requestId: this.#o.requestId(req),
      url: req.url ?? '',
      target,
      length,
      jsonLength: headers['inference-header-content-length'],
      write: (statusCode, answerHeaders, body) => {
        res.writeHead(statusCode, answerHeaders);
        res.end(body);
      },
      sent: () => res.headersSent,
      abort: () => res.destroy(),
    };
    try {
      const admitted = this.#admit(ex, res);
      if (admitted !== undefined) readBody(req, (body) => void this.#serve(ex, body, admitted));
    } catch (err) {
      this.#failed(ex, err);
    }
    return true;
  }

  /** Whether the sockets' reader may take this request (direct-sockets.ts): the kind take() serves. */
  takes(request: DirectRequest & { readonly bodyBytes: number }, target: InferTarget): boolean {
    return this.#plain(request.contentType, request.bodyBytes, target);
  }

  /**
   * Serves a request the sockets read whole, writing its answer with `write`. Undefined when it was answered at once
   * (a refusal), else the exchange while it is served.
   */
  serveRead(
    request: DirectRequest & { readonly bodyBytes: number },
    target: InferTarget,
    body: Buffer,
    write: WriteAnswer,
  ): ServingExchange | undefined {
    this.taken++;
    const connection = new SocketExchange();
    SENT_ID.headers[REQUEST_ID_HEADER] = request.requestId;
    const ex: Exchange = {
      requestId: this.#o.requestId(SENT_ID),
      url: request.url,
      target,
      length: request.bodyBytes,
      jsonLength: request.jsonLength,
      write: (statusCode, headers, payload) => {
        connection.writableEnded = true;
        write(statusCode, headers, payload);
      },
      sent: () => connection.writableEnded,
      abort: () => connection.close(),
    };
    try {
      const admitted = this.#admit(ex, connection);
      if (admitted === undefined) return undefined;
      const answered = this.#serve(ex, body, admitted).finally(() => connection.close());
      return { answered, close: () => connection.close() };
    } catch (err) {
      this.#failed(ex, err);
      connection.close();
      return undefined;
    }
  }

  #plain(type: string | undefined, length: number, target: InferTarget): boolean {
    if (type !== undefined && !PLAIN_MEDIA_TYPES.has(type)) return false;
    return length > 0 && length <= this.#o.limits.forRoute(target.route);
  }

  /** Admission, then the body's bytes in the budget: the arrival and hold, or undefined once a refusal is answered. */
  #admit(ex: Exchange, closes: Closing): { arrivalMs: number; hold: RequestHold } | undefined {
    const { service } = this.#o;
    const arrivalMs = service.now();
    const refusal = service.admit(ex.target.route, ex.target.version !== undefined, arrivalMs);
    if (refusal !== undefined) {
      this.#answerError(ex, refusal);
      return undefined;
    }
    if (!this.#o.budget.tryReserve(ex.length)) {
      const e = budgetFull(this.#o.budget);
      service.recordEarlyError(ex.target.route, e);
      this.#answerError(ex, e);
      return undefined;
    }
    return { arrivalMs, hold: new RequestHold(closes, this.#o.budget, ex.length) };
  }

  /** A fault of the gateway's own: logged, answered 500 when nothing was sent yet; the process goes on. */
  #failed(ex: Exchange, err: unknown): void {
    this.#o.log.error({ err, reqId: ex.requestId }, 'inference failed unexpectedly');
    try {
      if (!ex.sent()) this.#answerError(ex, new SlogateError('SLOGATE_ERR_INTERNAL', 'the direct path failed'));
    } catch {
      ex.abort();
    }
  }

  async #serve(ex: Exchange, body: Buffer, admitted: { arrivalMs: number; hold: RequestHold }): Promise<void> {
    try {
      const answer = await this.#o.service.infer({
        routeName: ex.target.route,
        version: ex.target.version,
        arrivalMs: admitted.arrivalMs,
        body,
        jsonLengthHeader: ex.jsonLength,
        hold: admitted.hold,
      });
      if (answer instanceof SlogateError) {
        if (answer.code === 'SLOGATE_ERR_INTERNAL')
          this.#o.log.error({ err: answer, reqId: ex.requestId }, 'inference failed unexpectedly');
        this.#answerError(ex, answer);
      } else this.#answer(ex, 200, answerHeaders(answer), answer.body);
    } catch (err) {
      this.#failed(ex, err);
    }
  }

  #answerError(ex: Exchange, err: SlogateError): void {
    noteWithheld(err, { requestId: ex.requestId, method: 'POST', url: ex.url }, this.#o.log, this.#o.withheld);
    this.#answer(ex, err.statusCode, errorHeaders(err), errorBody(err, ex.requestId));
  }

  /** Writes an answer with the headers every inference answer carries (as the Fastify route's hooks add them). */
  #answer(ex: Exchange, statusCode: number, headers: Record<string, string>, body: Buffer | string): void {
    headers[REQUEST_ID_HEADER] = ex.requestId;
    if (!this.#o.admitting()) headers.connection = 'close';
    headers[LOAD_REPORT_HEADER] = this.#o.service.loadReport();
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    ex.write(statusCode, headers, body);
  }
}

/** The close of a request read off a socket, told once: when its answer is written, or its connection closes. */
class SocketExchange {
  writableEnded = false;
  #listener: (() => void) | undefined;

  on(_event: 'close', listener: () => void): this {
    this.#listener = listener;
    return this;
  }

  close(): void {
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
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
