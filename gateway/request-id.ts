// Request ids: a client's `x-request-id` when it is a plausible id (1-128 visible ASCII characters), else one made
// here, so a hostile header can neither bloat every log line of its request (Node accepts headers up to 16 KiB) nor
// carry control characters into logs, terminals and trace backends.
import type { IncomingHttpHeaders } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';
export const MAX_REQUEST_ID_CHARS = 128;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export function isValidRequestId(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length > 0 && value.length <= MAX_REQUEST_ID_CHARS && VISIBLE_ASCII.test(value)
  );
}

/**
 * Fastify's request-id options: the header is read here rather than by Fastify (which takes it verbatim). Ids made
 * here keep Fastify's form, `req-` and a per-server counter in base 36.
 */
export function requestIdOptions(): {
  requestIdHeader: false;
  genReqId: (req: { headers: IncomingHttpHeaders }) => string;
} {
  let next = 0;
  return {
    requestIdHeader: false,
    genReqId: (req) => {
      const sent = req.headers[REQUEST_ID_HEADER];
      if (isValidRequestId(sent)) return sent;
      next = (next + 1) & 0x7fffffff; // stays a small integer, as Fastify's own counter does
      return `req-${next.toString(36)}`;
    },
  };
}
