// POST /v2/models/{route}[/versions/{variant}]/infer as a Fastify route, in its own encapsulated plugin: bodies arrive
// as raw buffers (JSON or the binary tensor extension, told apart by Inference-Header-Content-Length), and
// InferService does the rest. Ordinary requests on a real socket take the direct path (infer-direct.ts) instead;
// this route serves the rest (inject, chunked bodies, unusual media types, limits) and is the reference for both.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SlogateError } from '../../core/errors.js';
import { LOAD_REPORT_HEADER } from '../../runtime/load-report.js';
import { fromFastifyError, sendError } from '../errors.js';
import { type BodyBudget, installBodyLimits, type RouteBodyLimits } from './body-limits.js';
import type { InferService } from './infer-service.js';
import { type HoldingRequest, RequestHold } from './request-hold.js';

export interface InferPluginOptions {
  readonly service: InferService;
  readonly bodyLimitBytes: number;
  /** Per-route body limits and the budget of body bytes held at once. */
  readonly bodyLimits: { readonly limits: RouteBodyLimits; readonly budget: BodyBudget };
}

interface InferParams {
  route: string;
  version?: string;
}

type InferRequest = FastifyRequest & HoldingRequest & { arrivalMs: number };

export async function inferPlugin(app: FastifyInstance, opts: InferPluginOptions): Promise<void> {
  const { service } = opts;
  app.removeAllContentTypeParsers();
  // Every media type arrives as a buffer and is read as JSON unless Inference-Header-Content-Length marks the binary
  // extension: clients that forget the Content-Type (curl -d sends form-urlencoded) still work, and a body that is not
  // JSON fails as invalid JSON (400). Syntactically broken Content-Type headers are refused by Fastify (415).
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimitBytes }, (_req, body, done) =>
    done(null, body),
  );
  installBodyLimits(app, opts.bodyLimits.limits, opts.bodyLimits.budget);

  // Arrival time and admission come before the body is read and parsed (InferService.admit).
  // Callback hooks on the request path: an async hook costs a promise and a microtask per request.
  app.decorateRequest('arrivalMs', 0);
  app.addHook('onRequest', (req, reply, done) => {
    const arrivalMs = service.now();
    (req as InferRequest).arrivalMs = arrivalMs;
    const params = req.params as Partial<InferParams>;
    const refusal = service.admit(params.route, params.version !== undefined, arrivalMs);
    if (refusal === undefined) return done();
    sendError(reply, refusal); // answered here: the chain stops (done is not called)
  });

  app.setErrorHandler((err, req, reply) => {
    const e = fromFastifyError(err);
    const params = req.params as Partial<InferParams> | undefined;
    if (params?.route !== undefined) service.recordEarlyError(params.route, e);
    return sendError(reply, e);
  });

  const handler = async (req: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) => {
    const answer = await service.infer({
      routeName: req.params.route,
      version: req.params.version,
      arrivalMs: (req as InferRequest).arrivalMs,
      body: req.body,
      jsonLengthHeader: req.headers['inference-header-content-length'],
      hold: (req as InferRequest).hold ?? new RequestHold(reply.raw, undefined, 0),
    });
    if (answer instanceof SlogateError) {
      if (answer.code === 'SLOGATE_ERR_INTERNAL') req.log.error({ err: answer }, 'inference failed unexpectedly');
      return sendError(reply, answer);
    }
    reply.header('server-timing', answer.serverTiming).header('content-type', answer.contentType);
    if (answer.jsonLength !== undefined) reply.header('inference-header-content-length', String(answer.jsonLength));
    return reply.code(200).send(answer.body);
  };

  // Every inference answer, success or refusal, carries this process's load (InferService.loadReport).
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header(LOAD_REPORT_HEADER, service.loadReport());
    done(null, payload);
  });
  app.post<{ Params: InferParams }>('/v2/models/:route/infer', handler);
  app.post<{ Params: InferParams }>('/v2/models/:route/versions/:version/infer', handler);
}
