// Every error leaves the gateway the same way: V2 error JSON {"error": "..."}, the catalog's status code, the
// stable code in the `x-slogate-error-code` header (the V2 schema stays unchanged), and Retry-After when it helps.
import type { FastifyError, FastifyReply } from 'fastify';
import type { ErrorCode } from '../core/errors.js';
import { SlogateError, toSlogateError } from '../core/errors.js';

export const ERROR_CODE_HEADER = 'x-slogate-error-code';

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
  reply
    .code(err.statusCode)
    .header(ERROR_CODE_HEADER, err.code)
    .header('content-type', 'application/json; charset=utf-8');
  if (err.retryAfterMs !== undefined)
    reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
  return reply.send(JSON.stringify({ error: err.message }));
}
