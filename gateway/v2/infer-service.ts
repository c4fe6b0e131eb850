// One inference request from admission to its encoded answer, apart from HTTP: the Fastify route (infer.ts) and the
// direct path (infer-direct.ts) read the request their way and write the answer their way, and share all of this:
// gate -> parse -> gate -> router -> runtime -> encode, with Server-Timing and the SLO outcome recorded once.
import { ClientGone } from '../../core/cancel.js';
import type { Clock } from '../../core/clock.js';
import { SlogateError, toSlogateError } from '../../core/errors.js';
import type { Admitted } from '../../policies/admission.js';
import type { Gate } from '../../policies/admission-gate.js';
import type { RoutedResult, Router } from '../../policies/router.js';
import type { SloRecorder } from '../../policies/slo-recorder.js';
import { encodeLoadReport } from '../../runtime/load-report.js';
import type { Runtime } from '../../runtime/runtime.js';
import {
  encodeInferResponse,
  headerLength,
  type ParsedInferRequest,
  parseInferRequest,
  RequestPlans,
} from './codec.js';
import type { RequestHold } from './request-hold.js';
import { serverTiming } from './server-timing.js';

/** Who lets a request in, who records how it ended, and whether it shows in the request log and traces. */
export interface RequestPath {
  readonly gate: Gate;
  readonly recorder: SloRecorder;
  /** False for synthetic traffic (the start-up warm-up): no request log line, no trace. */
  readonly observed: boolean;
}

export interface InferServiceOptions {
  readonly router: Router;
  readonly runtime: Runtime;
  readonly clock: Clock;
  /** The admission gate and outcome recorder requests go through now (the start-up warm-up has its own). */
  readonly requestPath: () => RequestPath;
}

/** A request whose body has arrived. */
export interface InferCall {
  readonly routeName: string;
  readonly version: string | undefined;
  readonly arrivalMs: number;
  readonly body: unknown;
  /** The Inference-Header-Content-Length header as sent. */
  readonly jsonLengthHeader: string | string[] | undefined;
  /** Where the client's leaving is heard while the work runs. */
  readonly hold: RequestHold;
}

/** A served request's answer. */
export interface InferAnswer {
  readonly body: Buffer | string;
  readonly contentType: string;
  /** Set for the binary extension: the JSON header's length. */
  readonly jsonLength: number | undefined;
  readonly serverTiming: string;
}

const MAX_PRIORITY = 1000;
const JSON_TYPE = 'application/json; charset=utf-8';
const BINARY_TYPE = 'application/octet-stream';
/** The load report on answers is at most this old (ms). */
const REPORT_EVERY_MS = 1;

export class InferService {
  readonly #router: Router;
  readonly #runtime: Runtime;
  readonly #clock: Clock;
  readonly #requestPath: () => RequestPath;
  readonly #plans = new RequestPlans();
  #reportAtMs = Number.NEGATIVE_INFINITY;
  #report = '';

  constructor(opts: InferServiceOptions) {
    this.#router = opts.router;
    this.#runtime = opts.runtime;
    this.#clock = opts.clock;
    this.#requestPath = opts.requestPath;
  }

  /** The request path's clock (ms): arrival times are read from it. */
  now(): number {
    return this.#clock.now();
  }

  /**
   * Admission before the body is read: the SLO clock starts when the request does, and a request refused here costs
   * almost nothing. Undefined when admitted (or the route is unknown: the handler answers that); else the refusal,
   * already recorded.
   */
  admit(routeName: string | undefined, pinned: boolean, arrivalMs: number): SlogateError | undefined {
    const route = routeName === undefined ? undefined : this.#router.routes.get(routeName);
    if (route === undefined) return undefined;
    const { gate, recorder } = this.#requestPath();
    // The request has just arrived: its arrival is the check's now.
    const admission = gate.check({ route, arrivalMs, stage: 'before-body', pinned, nowMs: arrivalMs });
    if (admission.admitted) return undefined;
    const refusal = admission.refusal;
    recorder.record({
      route: route.name,
      statusCode: refusal.statusCode,
      totalMs: this.#clock.now() - arrivalMs,
      errorCode: refusal.code,
    });
    return refusal;
  }

  /** Serves the call: its answer, or the error to answer with (recorded either way; never throws). */
  async infer(call: InferCall): Promise<InferAnswer | SlogateError> {
    let variant: string | undefined;
    try {
      const { parsed, admission, nowMs } = this.#parseAndAdmit(call);
      // Not an AbortController: see ClientGone (a per-request EventTarget ends up in the old generation).
      const gone = new ClientGone();
      call.hold.watch(gone);
      let result: RoutedResult;
      try {
        result = await this.#router.infer({
          route: call.routeName,
          pinnedVariant: call.version,
          inputs: parsed.inputs,
          rows: parsed.rows,
          outputs: parsed.outputs?.map((o) => o.name),
          arrivalMs: call.arrivalMs,
          nowMs,
          admitted: admission,
          signal: gone,
        });
      } finally {
        call.hold.watch(undefined);
      }
      variant = result.variant;
      return this.#answer(call, parsed, result);
    } catch (err) {
      const e = toSlogateError(err);
      this.#requestPath().recorder.record({
        route: call.routeName,
        variant: variant ?? e.variant,
        statusCode: e.statusCode,
        totalMs: this.#clock.now() - call.arrivalMs,
        errorCode: e.code,
      });
      return e;
    }
  }

  /**
   * The body parsed into tensors, its rows and parameters checked, and admission after the body (throws refusals);
   * `nowMs` is the clock read for that admission, which the router goes on with.
   */
  #parseAndAdmit(call: InferCall): { parsed: ParsedInferRequest; admission: Admitted; nowMs: number } {
    const { routeName, version } = call;
    const route = this.#router.route(routeName);
    if (version !== undefined && !route.allowed.includes(version))
      throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `model '${routeName}' has no version '${version}'`);
    const body = call.body;
    if (!Buffer.isBuffer(body) || body.byteLength === 0)
      throw new SlogateError('SLOGATE_ERR_INVALID_JSON', 'request body is empty');
    const jsonLength = headerLength(call.jsonLengthHeader, body.byteLength);
    const signature = this.#runtime.signature(route.model.name);
    const parsed = parseInferRequest(body, jsonLength, signature, route.model.config.allowNonFinite, this.#plans);
    if (parsed.rows > route.model.config.maxBatch) {
      throw new SlogateError(
        'SLOGATE_ERR_INVALID_TENSOR',
        `batch of ${parsed.rows} rows exceeds the model's maxBatch ${route.model.config.maxBatch}`,
      );
    }
    const { timeoutMs, priority } = scheduleParameters(parsed.parameters);
    const nowMs = this.#clock.now();
    const admission = this.#requestPath().gate.check({
      route,
      arrivalMs: call.arrivalMs,
      stage: 'after-body',
      pinned: version !== undefined,
      priority,
      timeoutMs,
      nowMs,
    });
    if (!admission.admitted) throw admission.refusal;
    return { parsed, admission, nowMs };
  }

  /** The served request's encoded answer, with Server-Timing; its outcome recorded. */
  #answer(call: InferCall, parsed: ParsedInferRequest, result: RoutedResult): InferAnswer {
    const outputs = result.outputs;
    const flags =
      parsed.outputs === undefined ? outputs.map(() => parsed.binaryOutput) : parsed.outputs.map((o) => o.binary);
    // A best-effort answer (a deadline it could never meet) says so in its parameters and Server-Timing.
    const bestEffort = result.bestEffort === true;
    const encoded = encodeInferResponse(
      call.routeName,
      result.variant,
      parsed.id,
      outputs,
      flags,
      bestEffort ? { slogate_best_effort: true } : undefined,
    );
    const atMs = this.#clock.now();
    const totalMs = atMs - call.arrivalMs;
    const timing = serverTiming(result.queueMs, result.inferMs, totalMs, bestEffort);
    this.#requestPath().recorder.record({
      route: call.routeName,
      variant: result.variant,
      statusCode: 200,
      totalMs,
      atMs,
      result,
      bestEffort,
    });
    const contentType = encoded.jsonLength === undefined ? JSON_TYPE : BINARY_TYPE;
    return { body: encoded.body, contentType, jsonLength: encoded.jsonLength, serverTiming: timing };
  }

  /** Records a request that failed before its handler ran (a body too large, a broken media type). */
  recordEarlyError(routeName: string, e: SlogateError): void {
    this.#requestPath().recorder.record({ route: routeName, statusCode: e.statusCode, totalMs: 0, errorCode: e.code });
  }

  /**
   * This process's load for every inference answer, success or refusal, so gateways sharing it as a runtime node see
   * what everyone else's work left (runtime/load-report.ts). Measured at most once per millisecond: the answers of one
   * batch leave together and share it.
   */
  loadReport(): string {
    const now = this.#clock.now();
    if (now - this.#reportAtMs >= REPORT_EVERY_MS) {
      this.#report = encodeLoadReport(this.#runtime.loadReport());
      this.#reportAtMs = now;
    }
    return this.#report;
  }
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
