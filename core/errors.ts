// One registry of every error slogate can answer with: a stable code, an HTTP status and whether a retry may help.
// Clients, tests and bench branch on `code`, never on message text.

export const ERROR_CATALOG = {
  SLOGATE_ERR_BAD_REQUEST: { status: 400, retryable: false, doc: 'The request is malformed (generic).' },
  SLOGATE_ERR_INVALID_JSON: {
    status: 400,
    retryable: false,
    doc: 'The body (or the JSON header of a binary body) is not valid JSON, or not a JSON object.',
  },
  SLOGATE_ERR_INVALID_TENSOR: {
    status: 400,
    retryable: false,
    doc: 'A tensor is malformed: wrong shape, data length not matching the shape, nested data not matching the shape, a non-finite value where none is allowed.',
  },
  SLOGATE_ERR_DATATYPE: {
    status: 400,
    retryable: false,
    doc: 'A tensor datatype is unknown, or cannot be converted to the type the model expects.',
  },
  SLOGATE_ERR_INPUT_MISMATCH: {
    status: 400,
    retryable: false,
    doc: 'An input the model needs is missing, an input is unknown or given twice, or a requested output does not exist.',
  },
  SLOGATE_ERR_BINARY_DATA: {
    status: 400,
    retryable: false,
    doc: 'The binary tensor extension is used inconsistently: header length, binary_data_size and body length disagree.',
  },
  SLOGATE_ERR_BAD_PARAMETER: {
    status: 400,
    retryable: false,
    doc: 'A request parameter (priority, timeout, binary_data_output, ...) has the wrong type or range.',
  },
  SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    retryable: false,
    doc: 'The Content-Type header is malformed, or names a type an admin endpoint does not accept (inference reads any body as JSON unless Inference-Header-Content-Length marks the binary extension).',
  },
  SLOGATE_ERR_BODY_TOO_LARGE: {
    status: 413,
    retryable: false,
    doc: "The body exceeds server.bodyLimitBytes, or an inference body exceeds its route's derived limit.",
  },
  SLOGATE_ERR_NOT_FOUND: { status: 404, retryable: false, doc: 'No such endpoint.' },
  SLOGATE_ERR_ROUTE_NOT_FOUND: { status: 404, retryable: false, doc: 'No route (V2 model name) of that name.' },
  SLOGATE_ERR_VARIANT_NOT_FOUND: {
    status: 404,
    retryable: false,
    doc: 'The route has no variant (V2 model version) of that name.',
  },
  SLOGATE_ERR_UNAUTHORIZED: {
    status: 401,
    retryable: false,
    doc: 'An admin endpoint was called without a bearer token.',
  },
  SLOGATE_ERR_FORBIDDEN: {
    status: 403,
    retryable: false,
    doc: 'An admin endpoint was called with a wrong token, or from a non-loopback address or Host while no token is set.',
  },
  SLOGATE_ERR_INVALID_POLICY: {
    status: 400,
    retryable: false,
    doc: 'An admin API body does not match its schema; every problem is listed.',
  },
  SLOGATE_ERR_NOT_READY: { status: 503, retryable: true, doc: 'The server or the model is still loading.' },
  SLOGATE_ERR_SHUTTING_DOWN: {
    status: 503,
    retryable: true,
    doc: 'The server is draining for shutdown and admits no new work.',
  },
  SLOGATE_ERR_OVERLOADED: {
    status: 503,
    retryable: true,
    doc: 'The gateway already holds server.maxBodyBytesInFlight of request bodies; refused before the body is read.',
  },
  SLOGATE_ERR_QUEUE_FULL: {
    status: 503,
    retryable: true,
    doc: "The variant's bounded queue is full; rejected at once.",
  },
  SLOGATE_ERR_DEADLINE_UNREACHABLE: {
    status: 503,
    retryable: true,
    doc: 'A queued request can no longer finish before its deadline, even alone; dropped before running.',
  },
  SLOGATE_ERR_SHED: {
    status: 429,
    retryable: true,
    doc: "Admission control rejected the request: its predicted completion misses the deadline on every allowed variant, or the route's admission rate is exceeded. Sheddable (negative priority) traffic goes first.",
  },
  SLOGATE_ERR_OTHER_WORK_LIMITED: {
    status: 429,
    retryable: true,
    doc: 'The status page, /metrics and unknown paths took more than `server.otherWorkShare` of the event loop over the last second; refused before any work, after a 200 ms pause that slows a client looping on them, so that inference keeps the loop.',
  },
  SLOGATE_ERR_CANCELLED: {
    status: 499,
    retryable: false,
    doc: 'The client went away; the queued request was removed (status only visible in logs and metrics).',
  },
  SLOGATE_ERR_REPLICA_UNAVAILABLE: {
    status: 503,
    retryable: true,
    doc: 'No replica could run the batch (all down, or the retry failed too).',
  },
  SLOGATE_ERR_BATCH_TIMEOUT: {
    status: 504,
    retryable: true,
    doc: 'The replica running the batch passed its timeout (runtime.batchTimeout); the replica was taken out of service.',
  },
  SLOGATE_ERR_INFERENCE_FAILED: {
    status: 500,
    retryable: false,
    doc: 'onnxruntime reported an error while running the model.',
  },
  SLOGATE_ERR_INTERNAL: { status: 500, retryable: false, doc: 'A bug: an unexpected error inside slogate.' },
  SLOGATE_ERR_CONFIG: {
    status: 500,
    retryable: false,
    doc: 'The configuration is invalid (start-up only; listed as path: message).',
  },
  SLOGATE_ERR_STORE: {
    status: 500,
    retryable: false,
    doc: "The model store's state file cannot be read or is not a store state, or an active revision's file is missing (start-up only).",
  },
  SLOGATE_ERR_INVALID_NAME: {
    status: 400,
    retryable: false,
    doc: "A model or variant name given to the model store is not 1-128 letters, digits, '.', '_' or '-' (or starts with '.').",
  },
  SLOGATE_ERR_REVISION_TOO_LARGE: {
    status: 413,
    retryable: false,
    doc: 'A model file offered as a revision is larger than store.maxFileBytes.',
  },
  SLOGATE_ERR_REVISION_NOT_FOUND: {
    status: 404,
    retryable: false,
    doc: 'The variant has no revision of that name, or no earlier revision to roll back to.',
  },
  SLOGATE_ERR_REVISION_REJECTED: {
    status: 409,
    retryable: false,
    doc: 'The revision failed its gates (or is active, or still gating) and cannot take the requested state.',
  },
  SLOGATE_ERR_DEPLOY_IN_PROGRESS: {
    status: 409,
    retryable: true,
    doc: 'Another revision of the variant is being gated or rolled out; the message names it.',
  },
  SLOGATE_ERR_ROLLOUT_NOT_FOUND: {
    status: 404,
    retryable: false,
    doc: 'The variant has no running rollout to pause, resume or abort.',
  },
  SLOGATE_ERR_MODEL_NOT_FOUND: { status: 404, retryable: false, doc: 'No model of that name in the configuration.' },
  SLOGATE_ERR_MODEL_UNLOADED: {
    status: 503,
    retryable: false,
    doc: "The model was unloaded through Triton's repository API (`.../unload`); it serves again after `.../load`.",
  },
  SLOGATE_ERR_VARIANT_REMOVED: {
    status: 503,
    retryable: true,
    doc: 'The variant is being removed (`slogate apply`, the config watch): what is queued on it finishes; a request that could go nowhere else gets this.',
  },
  SLOGATE_ERR_APPLY_IN_PROGRESS: {
    status: 409,
    retryable: true,
    doc: 'Another apply (`slogate apply`, the config watch, a repository load with a config) is running; try again once it is done.',
  },
  SLOGATE_ERR_APPLY_UNSUPPORTED: {
    status: 409,
    retryable: false,
    doc: 'Not changeable while running (a model added or removed, sections other than models and routes, remote replicas); restart.',
  },
  SLOGATE_ERR_NOT_ONNX: {
    status: 400,
    retryable: false,
    doc: 'A file offered as a revision is not an ONNX model onnxruntime can load; nothing changed.',
  },
  SLOGATE_ERR_SIGNATURE_MISMATCH: {
    status: 422,
    retryable: false,
    doc: "A revision's inputs or outputs differ from the model's signature (names, datatypes, shapes); rejected.",
  },
  SLOGATE_ERR_REVISION_PIN_MISMATCH: {
    status: 409,
    retryable: false,
    doc: "A revision's sha256 is not the variant's pinned `sha256`; refused before it is stored.",
  },
  SLOGATE_ERR_REVISION_HASH_MISMATCH: {
    status: 400,
    retryable: false,
    doc: 'Bytes sent to a runtime node as revision sha256:X do not hash to X; nothing was stored.',
  },
  SLOGATE_ERR_NODE_REVISION: {
    status: 502,
    retryable: false,
    doc: 'A runtime node could not receive or load a revision (unreachable, refused the upload, failed to load it); the message names the node. The deploy or rollback changed nothing: every replica serves the active revision.',
  },
  SLOGATE_ERR_GATE_FAILED: {
    status: 422,
    retryable: false,
    doc: 'A revision failed a gate (golden answers, accuracy or latency); rejected, the active revision serves on. The message names the gate and its numbers.',
  },
  SLOGATE_ERR_MODEL_LOAD: {
    status: 500,
    retryable: false,
    doc: 'A model file is missing, not ONNX, or its signature disagrees with its siblings (start-up only).',
  },
} as const satisfies Record<string, { status: number; retryable: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export interface SlogateErrorOptions {
  cause?: unknown;
  /** Suggested client back-off, sent as `Retry-After` (rounded up to whole seconds). */
  retryAfterMs?: number;
}

/** Plain-data form of an error; crosses worker and process boundaries. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
}

const LOAD_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SLOGATE_ERR_SHED',
  'SLOGATE_ERR_OVERLOADED',
  'SLOGATE_ERR_NOT_READY',
  'SLOGATE_ERR_DEADLINE_UNREACHABLE',
  'SLOGATE_ERR_QUEUE_FULL',
  'SLOGATE_ERR_CANCELLED',
  'SLOGATE_ERR_SHUTTING_DOWN',
]);

export class SlogateError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** The variant involved, when the error happened after one was chosen (for metrics labels). */
  variant: string | undefined;

  constructor(code: ErrorCode, message: string, options: SlogateErrorOptions = {}) {
    // A refusal under load says all it has to say in its code and message: no stack trace to capture, since under
    // overload refusals come by the thousand per second and capturing a stack costs more than the refusal itself.
    const limit = Error.stackTraceLimit;
    if (LOAD_REFUSALS.has(code)) Error.stackTraceLimit = 0;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'SlogateError';
    this.code = code;
    this.statusCode = ERROR_CATALOG[code].status;
    this.retryable = ERROR_CATALOG[code].retryable;
    this.retryAfterMs = options.retryAfterMs;
  }

  toData(): ErrorData {
    const data: ErrorData = { code: this.code, message: this.message };
    if (this.retryAfterMs !== undefined) data.retryAfterMs = this.retryAfterMs;
    return data;
  }

  static fromData(data: ErrorData): SlogateError {
    const code = isErrorCode(data.code) ? data.code : 'SLOGATE_ERR_INTERNAL';
    return new SlogateError(
      code,
      String(data.message),
      data.retryAfterMs === undefined ? {} : { retryAfterMs: data.retryAfterMs },
    );
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

export function isSlogateError(value: unknown): value is SlogateError {
  return value instanceof SlogateError;
}

/** Wraps anything thrown into a SlogateError; unknown errors become INTERNAL (500). */
export function toSlogateError(err: unknown, fallback: ErrorCode = 'SLOGATE_ERR_INTERNAL'): SlogateError {
  if (err instanceof SlogateError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SlogateError(fallback, message, { cause: err });
}
