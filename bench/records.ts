// What happened to every request of a run, as parallel typed arrays (one slot per request, no per-request objects):
// the senders fill it, summarize() reads it. Strings (error codes, variants) are interned to small integers.

export class Interner {
  readonly #index = new Map<string, number>();
  /** Index 0 is the empty string: "none". */
  readonly names: string[] = [''];

  id(name: string): number {
    let i = this.#index.get(name);
    if (i === undefined) {
      i = this.names.push(name) - 1;
      this.#index.set(name, i);
    }
    return i;
  }
}

/** Status 0: no HTTP answer. These codes say why (they are the client's, never a server's). */
export const CLIENT_CODES = {
  timeout: 'CLIENT_TIMEOUT',
  connection: 'CLIENT_CONNECTION_ERROR',
  unanswered: 'CLIENT_UNANSWERED',
} as const;

export class RunRecords {
  readonly capacity: number;
  /** Requests recorded so far (open loop: the whole schedule, filled in up front). */
  n = 0;
  /** Scheduled send time (open loop) or actual send time (closed loop), ms from the start of the run. */
  readonly atMs: Float64Array;
  /** Actual send time minus scheduled time (NaN: not sent, or closed loop). */
  readonly lagMs: Float64Array;
  /** From `atMs` to the end of the response body (NaN: no response). */
  readonly latencyMs: Float64Array;
  readonly deadlineMs: Float64Array;
  readonly route: Uint16Array;
  /** HTTP status; 0 when no answer came (see `code`). */
  readonly status: Uint16Array;
  /** Interned `x-slogate-error-code` (or a CLIENT_CODES value); 0 = none. */
  readonly code: Uint16Array;
  /** Interned `model_version` of a 200 answer; 0 = not given. */
  readonly variant: Uint16Array;
  /** 1 right, 0 wrong, -1 not scored (no label known, or the answer had no readable output). */
  readonly correct: Int8Array;
  readonly codes = new Interner();
  readonly variants = new Interner();
  readonly routes: readonly string[];

  constructor(capacity: number, routes: readonly string[]) {
    this.capacity = capacity;
    this.routes = routes;
    this.atMs = new Float64Array(capacity);
    this.lagMs = new Float64Array(capacity).fill(Number.NaN);
    this.latencyMs = new Float64Array(capacity).fill(Number.NaN);
    this.deadlineMs = new Float64Array(capacity);
    this.route = new Uint16Array(capacity);
    this.status = new Uint16Array(capacity);
    this.code = new Uint16Array(capacity);
    this.variant = new Uint16Array(capacity);
    this.correct = new Int8Array(capacity).fill(-1);
  }

  /** Appends one request (closed loop); returns its slot, or -1 when full. */
  push(atMs: number, route: number, deadlineMs: number): number {
    if (this.n >= this.capacity) return -1;
    const i = this.n++;
    this.atMs[i] = atMs;
    this.route[i] = route;
    this.deadlineMs[i] = deadlineMs;
    return i;
  }

  /** Records the answer of slot i. */
  answer(
    i: number,
    status: number,
    latencyMs: number,
    code: string | undefined,
    variant: string | undefined,
    correct: number,
  ): void {
    this.status[i] = status;
    this.latencyMs[i] = latencyMs;
    this.code[i] = code === undefined || code === '' ? 0 : this.codes.id(code);
    this.variant[i] = variant === undefined || variant === '' ? 0 : this.variants.id(variant);
    this.correct[i] = correct;
  }

  /** Records that slot i got no HTTP answer. */
  noAnswer(i: number, clientCode: string): void {
    this.status[i] = 0;
    this.latencyMs[i] = Number.NaN;
    this.code[i] = this.codes.id(clientCode);
  }
}
