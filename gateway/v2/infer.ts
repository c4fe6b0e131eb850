// POST /v2/models/{route}[/versions/{variant}]/infer, in its own encapsulated plugin: bodies arrive as raw
// buffers (JSON or the binary tensor extension, told apart by Inference-Header-Content-Length), then
// gate -> parse -> gate -> router -> runtime -> encode, with Server-Timing and the SLO outcome recorded once per
// request. The gate and the recorder come from the current RequestPath (the live one, or the warm-up's).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClientGone } from '../../core/cancel.js';
import type { Clock } from '../../core/clock.js';
import { SlogateError, toSlogateError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import type { Gate } from '../../policies/admission-gate.js';
import type { RoutedResult, Router } from '../../policies/router.js';
import type { SloRecorder } from '../../policies/slo-recorder.js';
import { encodeLoadReport, LOAD_REPORT_HEADER, type NodeLoad } from '../../runtime/load-report.js';
import type { Runtime } from '../../runtime/runtime.js';
import { fromFastifyError, sendError } from '../errors.js';
import { type BodyBudget, installBodyLimits, type RouteBodyLimits } from './body-limits.js';
import { encodeInferResponse, headerLength, parseInferRequest, RequestPlans } from './codec.js';

export interface InferPluginOptions {
  readonly router: Router;
  readonly runtime: Runtime;
  readonly clock: Clock;
  readonly bodyLimitBytes: number;
  /** The admission gate and outcome recorder requests go through now (the start-up warm-up has its own). */
  readonly requestPath: () => RequestPath;
  /** Per-route body limits and the budget of body bytes held at once (none: only bodyLimitBytes applies). */
  readonly bodyLimits?: { readonly limits: RouteBodyLimits; readonly budget: BodyBudget };
}

/** Who lets a request in, who records how it ended, and whether it shows in the request log and traces. */
export interface RequestPath {
  readonly gate: Gate;
  readonly recorder: SloRecorder;
  /** False for synthetic traffic (the start-up warm-up): no request log line, no trace. */
  readonly observed: boolean;
}

interface InferParams {
  route: string;
  version?: string;
}

const MAX_PRIORITY = 1000;

export async function inferPlugin(app: FastifyInstance, opts: InferPluginOptions): Promise<void> {
  const { router, runtime, clock } = opts;
  const plans = new RequestPlans();
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
  // Callback hooks on the request path: an async hook costs a promise and a microtask per request.
  app.decorateRequest('arrivalMs', 0);
  app.addHook('onRequest', (req, reply, done) => {
    const arrivalMs = clock.now();
    (req as FastifyRequest & { arrivalMs: number }).arrivalMs = arrivalMs;
    const params = req.params as Partial<InferParams>;
    const route = params.route === undefined ? undefined : router.routes.get(params.route);
    if (route === undefined) return done();
    const { gate, recorder } = opts.requestPath();
    const admission = gate.check({ route, arrivalMs, stage: 'before-body', pinned: params.version !== undefined });
    if (admission.admitted) return done();
    const refusal = admission.refusal;
    recorder.record({
      route: route.name,
      statusCode: refusal.statusCode,
      totalMs: clock.now() - arrivalMs,
      errorCode: refusal.code,
    });
    sendError(reply, refusal); // answered here: the chain stops (done is not called)
  });

  app.setErrorHandler((err, req, reply) => {
    const e = fromFastifyError(err);
    const params = req.params as Partial<InferParams> | undefined;
    if (params?.route !== undefined)
      opts
        .requestPath()
        .recorder.record({ route: params.route, statusCode: e.statusCode, totalMs: 0, errorCode: e.code });
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
      const signature = runtime.signature(route.model.name);
      const parsed = parseInferRequest(body, jsonLength, signature, route.model.config.allowNonFinite, plans);
      if (parsed.rows > route.model.config.maxBatch) {
        throw new SlogateError(
          'SLOGATE_ERR_INVALID_TENSOR',
          `batch of ${parsed.rows} rows exceeds the model's maxBatch ${route.model.config.maxBatch}`,
        );
      }
      const { timeoutMs, priority } = scheduleParameters(parsed.parameters);
      const admission = opts
        .requestPath()
        .gate.check({ route, arrivalMs, stage: 'after-body', pinned: version !== undefined, priority, timeoutMs });
      if (!admission.admitted) throw admission.refusal;
      // Not an AbortController: see ClientGone (a per-request EventTarget ends up in the old generation).
      const gone = new ClientGone();
      const onClose = () => {
        if (!reply.raw.writableEnded) gone.abort();
      };
      reply.raw.once('close', onClose);
      let result: RoutedResult;
      try {
        result = await router.infer({
          route: routeName,
          pinnedVariant: version,
          inputs: parsed.inputs,
          rows: parsed.rows,
          outputs: parsed.outputs?.map((o) => o.name),
          arrivalMs,
          admitted: admission,
          signal: gone,
        });
      } finally {
        reply.raw.removeListener('close', onClose);
      }
      variant = result.variant;
      const outputs: Tensor[] = result.outputs;
      const flags =
        parsed.outputs === undefined ? outputs.map(() => parsed.binaryOutput) : parsed.outputs.map((o) => o.binary);
      // A best-effort answer (a deadline it could never meet) says so in its parameters and Server-Timing.
      const bestEffort = result.bestEffort === true;
      const encoded = encodeInferResponse(
        routeName,
        result.variant,
        parsed.id,
        outputs,
        flags,
        bestEffort ? { slogate_best_effort: true } : undefined,
      );
      const totalMs = clock.now() - arrivalMs;
      reply.header(
        'server-timing',
        `queue;dur=${result.queueMs.toFixed(3)}, infer;dur=${result.inferMs.toFixed(3)}, total;dur=${totalMs.toFixed(3)}${bestEffort ? ', best-effort' : ''}`,
      );
      if (encoded.jsonLength !== undefined) {
        reply
          .header('inference-header-content-length', String(encoded.jsonLength))
          .header('content-type', 'application/octet-stream');
      } else {
        reply.header('content-type', 'application/json');
      }
      opts.requestPath().recorder.record({ route: routeName, variant, statusCode: 200, totalMs, result, bestEffort });
      return reply.code(200).send(encoded.body);
    } catch (err) {
      const e = toSlogateError(err);
      if (e.code === 'SLOGATE_ERR_INTERNAL') req.log.error({ err }, 'inference failed unexpectedly');
      opts.requestPath().recorder.record({
        route: routeName,
        variant: variant ?? e.variant,
        statusCode: e.statusCode,
        totalMs: clock.now() - arrivalMs,
        errorCode: e.code,
      });
      return sendError(reply, e);
    }
  };

  // Every inference answer, success or refusal, carries this process's load, so gateways sharing it as a runtime
  // node see what everyone else's work left (runtime/load-report.ts).
  // The header is encoded again only when the load changed since the last answer.
  let lastLoad: NodeLoad | undefined;
  let lastReport = '';
  app.addHook('onSend', (_req, reply, payload, done) => {
    const load = runtime.loadReport();
    if (lastLoad === undefined || !sameLoad(load, lastLoad)) {
      lastReport = encodeLoadReport(load);
      lastLoad = load;
    }
    reply.header(LOAD_REPORT_HEADER, lastReport);
    done(null, payload);
  });
  app.post<{ Params: InferParams }>('/v2/models/:route/infer', handler);
  app.post<{ Params: InferParams }>('/v2/models/:route/versions/:version/infer', handler);
}

function sameLoad(a: NodeLoad, b: NodeLoad): boolean {
  return (
    a.busySlots === b.busySlots &&
    a.totalSlots === b.totalSlots &&
    a.queuedRows === b.queuedRows &&
    a.queueWaitMs === b.queueWaitMs &&
    a.serviceCorrection === b.serviceCorrection
  );
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
