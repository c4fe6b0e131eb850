// POST /v2/models/{route}[/versions/{variant}]/infer, in its own encapsulated plugin: bodies arrive as raw
// buffers (JSON or the binary tensor extension, told apart by Inference-Header-Content-Length), then
// parse -> router -> runtime -> encode, with Server-Timing and the SLO outcome recorded once per request.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClientGone } from '../../core/cancel.js';
import type { Clock } from '../../core/clock.js';
import { SlogateError, toSlogateError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import type { Router } from '../../policies/router.js';
import type { SubmitResult } from '../../runtime/batcher.js';
import type { Runtime } from '../../runtime/runtime.js';
import { fromFastifyError, sendError } from '../errors.js';
import { type BodyBudget, installBodyLimits, type RouteBodyLimits } from './body-limits.js';
import { encodeInferResponse, headerLength, parseInferRequest } from './codec.js';

export interface InferPluginOptions {
  readonly router: Router;
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly bodyLimitBytes: number;
  /** True while the start-up warm-up runs (see warmup.ts): its requests are neither admitted nor accounted. */
  readonly warming?: () => boolean;
  /** Per-route body limits and the budget of body bytes held at once (none: only bodyLimitBytes applies). */
  readonly bodyLimits?: { readonly limits: RouteBodyLimits; readonly budget: BodyBudget };
}

interface InferParams {
  route: string;
  version?: string;
}

const MAX_PRIORITY = 1000;

export async function inferPlugin(app: FastifyInstance, opts: InferPluginOptions): Promise<void> {
  const { router, runtime, clock } = opts;
  const warming = opts.warming ?? (() => false);
  const record = (
    route: string,
    variant: string | undefined,
    status: number,
    ms: number,
    code?: string,
    result?: SubmitResult,
  ) => {
    if (!warming()) router.record(route, variant, status, ms, code, result);
  };
  app.removeAllContentTypeParsers();
  // Every media type arrives as a buffer and is read as JSON unless Inference-Header-Content-Length marks the binary
  // extension: clients that forget the Content-Type (curl -d sends form-urlencoded) still work, and a body that is not
  // JSON fails as invalid JSON (400). Syntactically broken Content-Type headers are refused by Fastify (415).
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimitBytes }, (_req, body, done) =>
    done(null, body),
  );
  if (opts.bodyLimits !== undefined) installBodyLimits(app, opts.bodyLimits.limits, opts.bodyLimits.budget);

  // Arrival time and admission come before the body is read and parsed: the SLO clock starts when the request does,
  // and a request admission refuses costs almost nothing (parsing is the gateway's biggest per-request cost).
  app.decorateRequest('arrivalMs', 0);
  app.addHook('onRequest', async (req, reply) => {
    const arrivalMs = clock.now();
    (req as FastifyRequest & { arrivalMs: number }).arrivalMs = arrivalMs;
    const params = req.params as Partial<InferParams>;
    const route = params.route === undefined ? undefined : router.routes.get(params.route);
    if (route === undefined || warming()) return;
    const refusal = router.admit(route, arrivalMs, params.version !== undefined);
    if (refusal !== undefined) {
      record(route.name, undefined, refusal.statusCode, clock.now() - arrivalMs, refusal.code);
      return sendError(reply, refusal);
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const e = fromFastifyError(err);
    const params = req.params as Partial<InferParams> | undefined;
    if (params?.route !== undefined) record(params.route, undefined, e.statusCode, 0, e.code);
    return sendError(reply, e);
  });

  const handler = async (req: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) => {
    const arrivalMs = (req as FastifyRequest & { arrivalMs: number }).arrivalMs;
    const { route: routeName, version } = req.params;
    let variant: string | undefined;
    try {
      const route = router.route(routeName);
      if (version !== undefined && !route.allowed.includes(version))
        throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `model '${routeName}' has no version '${version}'`);
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.byteLength === 0)
        throw new SlogateError('SLOGATE_ERR_INVALID_JSON', 'request body is empty');
      const jsonLength = headerLength(req.headers['inference-header-content-length'], body.byteLength);
      const signature = runtime.repository.signature(route.model.name);
      const parsed = parseInferRequest(body, jsonLength, signature, route.model.config.allowNonFinite);
      if (parsed.rows > route.model.config.maxBatch) {
        throw new SlogateError(
          'SLOGATE_ERR_INVALID_TENSOR',
          `batch of ${parsed.rows} rows exceeds the model's maxBatch ${route.model.config.maxBatch}`,
        );
      }
      const { timeoutMs, priority } = scheduleParameters(parsed.parameters);
      // Not an AbortController: see ClientGone (a per-request EventTarget ends up in the old generation).
      const gone = new ClientGone();
      const onClose = () => {
        if (!reply.raw.writableEnded) gone.abort();
      };
      reply.raw.once('close', onClose);
      let result: SubmitResult;
      try {
        result = await router.infer({
          route: routeName,
          pinnedVariant: version,
          inputs: parsed.inputs,
          rows: parsed.rows,
          outputs: parsed.outputs?.map((o) => o.name),
          arrivalMs,
          timeoutMs,
          priority,
          signal: gone,
          admitted: true,
          uncounted: warming(),
        });
      } finally {
        reply.raw.removeListener('close', onClose);
      }
      variant = result.variant;
      const outputs: Tensor[] = result.outputs;
      const flags =
        parsed.outputs === undefined ? outputs.map(() => parsed.binaryOutput) : parsed.outputs.map((o) => o.binary);
      const encoded = encodeInferResponse(routeName, result.variant, parsed.id, outputs, flags);
      const totalMs = clock.now() - arrivalMs;
      reply.header(
        'server-timing',
        `queue;dur=${result.queueMs.toFixed(3)}, infer;dur=${result.inferMs.toFixed(3)}, total;dur=${totalMs.toFixed(3)}`,
      );
      if (encoded.jsonLength !== undefined) {
        reply
          .header('inference-header-content-length', String(encoded.jsonLength))
          .header('content-type', 'application/octet-stream');
      } else {
        reply.header('content-type', 'application/json');
      }
      record(routeName, variant, 200, totalMs, undefined, result);
      return reply.code(200).send(encoded.body);
    } catch (err) {
      const e = toSlogateError(err);
      if (e.code === 'SLOGATE_ERR_INTERNAL') req.log.error({ err }, 'inference failed unexpectedly');
      record(routeName, variant ?? e.variant, e.statusCode, clock.now() - arrivalMs, e.code);
      return sendError(reply, e);
    }
  };

  app.post<{ Params: InferParams }>('/v2/models/:route/infer', handler);
  app.post<{ Params: InferParams }>('/v2/models/:route/versions/:version/infer', handler);
}

/** Triton's schedule-policy parameters: `timeout` in microseconds, `priority` (higher first; negative = sheddable). */
export function scheduleParameters(p: Readonly<Record<string, unknown>>): {
  timeoutMs: number | undefined;
  priority: number | undefined;
} {
  let timeoutMs: number | undefined;
  let priority: number | undefined;
  if (p.timeout !== undefined) {
    if (typeof p.timeout !== 'number' || !Number.isInteger(p.timeout) || p.timeout <= 0)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_PARAMETER',
        "parameter 'timeout' must be a positive integer (microseconds)",
      );
    timeoutMs = p.timeout / 1000;
  }
  if (p.priority !== undefined) {
    if (typeof p.priority !== 'number' || !Number.isInteger(p.priority) || Math.abs(p.priority) > MAX_PRIORITY)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_PARAMETER',
        `parameter 'priority' must be an integer within +-${MAX_PRIORITY}`,
      );
    priority = p.priority;
  }
  return { timeoutMs, priority };
}
