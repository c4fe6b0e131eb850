// One JSON log line per answered request when server.requestLog is on (off by default: it costs a write on the hot
// path): method, URL, status, time, the route and error code, the request id (pino's reqId, from x-request-id when
// the client sent one) and, when traced, the trace id.
import type { FastifyInstance } from 'fastify';
import { ERROR_CODE_HEADER } from '../errors.js';
import type { Tracing } from '../tracing.js';

export function installRequestLog(app: FastifyInstance, tracing?: Tracing, skip: () => boolean = () => false): void {
  app.addHook('onResponse', (req, reply, done) => {
    if (skip()) {
      done();
      return;
    }
    const code = reply.getHeader(ERROR_CODE_HEADER);
    const route = (req.params as { route?: unknown } | undefined)?.route;
    req.log.info(
      {
        method: req.method,
        url: req.url,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 1000) / 1000,
        ...(typeof route === 'string' ? { route } : {}),
        ...(typeof code === 'string' ? { code } : {}),
        ...tracing?.logFields(req),
      },
      'request',
    );
    done();
  });
}
