// Closed-loop load (N connections, each sending its next request when the last answer arrives) through the bench's
// own HTTP/1.1 client: the peak-throughput view. Bounded by duration and a request cap; stops by itself. Closed loops
// hide queueing (a slow answer delays the next send), so SLO numbers come from the open loop; this one measures peak
// throughput.
import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.js';
import { encodeRequest, type Http1Failure, Http1Pool } from './http1-pool.js';
import type { Http1Response } from './http1-response.js';
import type { RouteInputs } from './inputs.js';
import type { Progress } from './open-loop.js';
import { CLIENT_CODES, RunRecords } from './records.js';
import { recordAnswer } from './v2-response.js';

export interface ClosedLoopOptions {
  readonly url: string;
  readonly path: string;
  readonly bodies: readonly { body: Buffer; headers: Record<string, string> }[];
  readonly connections: number;
  readonly durationS: number;
  readonly maxRequests?: number;
  /** A request unanswered this long (ms) counts as an error; 10 s unless given. */
  readonly timeoutMs?: number;
  /** Latencies are recorded here (runs measured in parts add up); a new histogram unless given. */
  readonly latency?: Histogram;
}

export interface ClosedLoopResult {
  readonly requests: number;
  readonly rps: number;
  /** From the first send to the last answer. */
  readonly wallMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

interface Lanes {
  readonly url: string;
  readonly requests: readonly Buffer[];
  readonly connections: number;
  readonly durationS: number;
  readonly maxRequests: number;
  readonly timeoutMs: number;
  /** Called as a request (body `k`) leaves, `atMs` after the start; returns what its answer is handed back with. */
  sent(k: number, atMs: number): number;
  answered(token: number, response: Http1Response, latencyMs: number): void;
  failed(token: number, kind: Http1Failure): void;
}

/**
 * Runs `connections` lanes, each sending its next request once its last is answered (or failed), until the duration
 * is up or `maxRequests` have left; resolves with the wall time (ms) once every lane's last answer is in.
 */
async function runLanes(o: Lanes): Promise<number> {
  const pool = new Http1Pool(o.url, { connections: o.connections, timeoutMs: o.timeoutMs });
  await pool.open(o.connections);
  const t0 = performance.now();
  const endAt = t0 + o.durationS * 1000;
  let sent = 0;
  try {
    await new Promise<void>((done) => {
      let live = o.connections;
      const next = (): void => {
        const now = performance.now();
        if (now >= endAt || sent >= o.maxRequests) {
          if (--live === 0) done();
          return;
        }
        const k = sent++ % o.requests.length;
        const token = o.sent(k, now - t0);
        pool.dispatch(o.requests[k] as Buffer, {
          onResponse: (response) => {
            o.answered(token, response, performance.now() - now);
            next();
          },
          onError: (kind) => {
            o.failed(token, kind);
            next();
          },
        });
      };
      for (let c = 0; c < o.connections; c++) next();
    });
    return performance.now() - t0;
  } finally {
    await pool.destroy();
  }
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const latency = o.latency ?? new Histogram();
  let answered = 0;
  let errors = 0;
  let non2xx = 0;
  const wallMs = await runLanes({
    url: o.url,
    requests: o.bodies.map((b) => encodeRequest(o.url, 'POST', o.path, b.headers, b.body)),
    connections: o.connections,
    durationS: o.durationS,
    maxRequests: o.maxRequests ?? Number.POSITIVE_INFINITY,
    timeoutMs: o.timeoutMs ?? 10_000,
    sent: () => 0,
    answered: (_t, response, ms) => {
      answered++;
      if (response.status < 200 || response.status > 299) non2xx++;
      latency.record(ms);
    },
    failed: () => {
      errors++;
    },
  });
  return {
    requests: answered,
    rps: (answered * 1000) / Math.max(1, wallMs),
    wallMs,
    p50Ms: latency.quantileMs(0.5),
    p90Ms: latency.quantileMs(0.9),
    p99Ms: latency.quantileMs(0.99),
    errors,
    non2xx,
  };
}

export interface RecordedClosedLoopOptions {
  readonly url: string;
  readonly inputs: RouteInputs;
  readonly connections: number;
  readonly durationS: number;
  readonly maxRequests: number;
  /** On-time bound of each answer (ms from its send). */
  readonly deadlineMs: number;
  readonly timeoutMs: number;
  readonly onProgress?: ((p: Progress) => void) | undefined;
}

export interface RecordedClosedLoopResult {
  readonly records: RunRecords;
  readonly wallMs: number;
  readonly senderCpu: number;
}

/**
 * The closed loop with every answer recorded like the open loop's (status, error code, variant, correctness), so
 * both report the same way. Latency runs from the request's send: a closed loop has no schedule.
 */
export async function closedLoopRecorded(o: RecordedClosedLoopOptions): Promise<RecordedClosedLoopResult> {
  const rec = new RunRecords(o.maxRequests, [o.inputs.route]);
  const live = new Histogram();
  const labels = new Int16Array(o.maxRequests);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let errors = 0;
  let lastSent = 0;
  const progressTimer = setInterval(() => {
    o.onProgress?.({
      elapsedS: (performance.now() - t0) / 1000,
      sent: rec.n,
      done: rec.n,
      inflight: o.connections,
      rate: rec.n - lastSent,
      p99Ms: live.quantileMs(0.99),
      errors,
    });
    lastSent = rec.n;
  }, 1000);
  progressTimer.unref();
  let wallMs: number;
  try {
    wallMs = await runLanes({
      url: o.url,
      requests: o.inputs.bodies.map((b) => encodeRequest(o.url, 'POST', o.inputs.path, b.headers, b.body)),
      connections: o.connections,
      durationS: o.durationS,
      maxRequests: o.maxRequests,
      timeoutMs: o.timeoutMs,
      sent: (k, atMs) => {
        const i = rec.push(atMs, 0, o.deadlineMs);
        if (i >= 0) labels[i] = o.inputs.labels[k] ?? -1;
        return i;
      },
      answered: (i, response, ms) => {
        if (i < 0) return;
        if (recordAnswer(rec, i, response, ms, o.inputs.scoring, labels[i] ?? -1)) live.record(ms);
        else errors++;
      },
      failed: (i, kind) => {
        errors++;
        if (i >= 0) rec.noAnswer(i, kind === 'timeout' ? CLIENT_CODES.timeout : CLIENT_CODES.connection);
      },
    });
  } finally {
    clearInterval(progressTimer);
  }
  const c = process.cpuUsage(cpu0);
  return { records: rec, wallMs, senderCpu: (c.user + c.system) / 1000 / Math.max(1, wallMs) };
}
