// Every error leaves the gateway the same way: V2 error JSON {"error": "..."}, the catalog's status code, the
// stable code in the `x-slogate-error-code` header (the V2 schema stays unchanged), and Retry-After when it helps.
import type { FastifyError, FastifyReply } from 'fastify';
import { clipText } from '../core/describe-value.js';
import type { ErrorCode } from '../core/errors.js';
import { ERROR_CATALOG, SlogateError, toSlogateError } from '../core/errors.js';
import type { WithheldErrors } from './withheld-errors.js';

export const ERROR_CODE_HEADER = 'x-slogate-error-code';

/** Longest message a client gets; longer ones (an echoed URL, say) are cut. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

/**
 * Codes whose message can carry worker stack traces, runtime-node addresses or file paths: the client gets the
 * catalog's text and its request id, the log gets the message.
 */
const WITHHELD: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SLOGATE_ERR_INTERNAL',
  'SLOGATE_ERR_INFERENCE_FAILED',
  'SLOGATE_ERR_REPLICA_UNAVAILABLE',
  'SLOGATE_ERR_CONFIG',
  'SLOGATE_ERR_MODEL_LOAD',
]);

/** What the client reads in `{"error": ...}`. */
export function publicMessage(err: SlogateError, requestId: string): string {
  if (!WITHHELD.has(err.code)) return clipText(err.message, MAX_ERROR_MESSAGE_CHARS);
  return `${ERROR_CATALOG[err.code].doc} Request id ${requestId}; the details are in the server log.`;
}

/** Maps Fastify's own errors (body limit, media type, JSON syntax) onto slogate codes. */
export function fromFastifyError(err: unknown): SlogateError {
  if (err instanceof SlogateError) return err;
  const fe = err as Partial<FastifyError>;
  const map: Record<string, ErrorCode> = {
    FST_ERR_CTP_BODY_TOO_LARGE: 'SLOGATE_ERR_BODY_TOO_LARGE',
    FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SLOGATE_ERR_BAD_REQUEST',
    FST_ERR_CTP_EMPTY_JSON_BODY: 'SLOGATE_ERR_INVALID_JSON',
    FST_ERR_CTP_INVALID_JSON_BODY: 'SLOGATE_ERR_INVALID_JSON',
    FST_ERR_CTP_EMPTY_TYPE: 'SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_CTP_INVALID_TYPE: 'SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
    FST_ERR_BAD_URL: 'SLOGATE_ERR_BAD_REQUEST',
    FST_ERR_ASYNC_CONSTRAINT: 'SLOGATE_ERR_BAD_REQUEST',
  };
  const code = fe.code === undefined ? undefined : map[fe.code];
  if (code !== undefined) return new SlogateError(code, fe.message ?? code, { cause: err });
  if (fe instanceof SyntaxError || (typeof fe.statusCode === 'number' && fe.statusCode === 400))
    return new SlogateError('SLOGATE_ERR_BAD_REQUEST', fe.message ?? 'bad request', { cause: err });
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
    return new SlogateError('SLOGATE_ERR_BAD_REQUEST', fe.message ?? 'bad request', { cause: err });
  return toSlogateError(err);
}

export function sendError(reply: FastifyReply, err: SlogateError): FastifyReply {
  const requestId = String(reply.request.id);
  const req = reply.request;
  noteWithheld(err, { requestId, method: req.method, url: req.url }, reply.log, reply.server.withheldErrors);
  reply.code(err.statusCode).headers(errorHeaders(err));
  return reply.send(errorBody(err, requestId));
}

/** The headers of an error's answer: its code, the JSON content type, and Retry-After when it helps. */
export function errorHeaders(err: SlogateError): Record<string, string> {
  const headers: Record<string, string> = {
    [ERROR_CODE_HEADER]: err.code,
    'content-type': 'application/json; charset=utf-8',
  };
  if (err.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
  return headers;
}

/** The V2 error body. */
export function errorBody(err: SlogateError, requestId: string): string {
  return JSON.stringify({ error: publicMessage(err, requestId) });
}

/** A withheld error's detail goes to the log and to the status page's list, never to the client. */
export function noteWithheld(
  err: SlogateError,
  request: { readonly requestId: string; readonly method: string; readonly url: string },
  log: { error(obj: object, msg: string): void },
  withheld: WithheldErrors | undefined,
): void {
  if (!WITHHELD.has(err.code)) return;
  log.error({ code: err.code, detail: err.message }, `${err.code} answered without its detail: ${err.message}`);
  withheld?.record({ ...request, code: err.code, detail: err.message });
}
