// Closed-loop load (N connections, each sending its next request when the last answer arrives) through autocannon:
// the peak-throughput view. Bounded by duration and a request cap; stops by itself. Closed loops hide queueing
// (a slow answer delays the next send), so SLO numbers come from the open loop; this one measures peak throughput.
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Histogram } from './histogram.js';
import type { RouteInputs } from './inputs.js';
import type { Progress } from './open-loop.js';
import { CLIENT_CODES, RunRecords } from './records.js';
import { readAnswer } from './v2-response.js';

export interface ClosedLoopOptions {
  readonly url: string;
  readonly path: string;
  readonly bodies: readonly { body: Buffer; headers: Record<string, string> }[];
  readonly connections: number;
  readonly durationS: number;
  readonly maxRequests?: number;
}

export interface ClosedLoopResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const r = await autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    ...(o.maxRequests !== undefined ? { amount: o.maxRequests } : {}),
    method: 'POST',
    requests: o.bodies.map((b) => ({ method: 'POST', path: o.path, body: b.body, headers: b.headers })),
  });
  return {
    requests: r.requests.total,
    rps: r.requests.average,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
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
 * both report the same way. Latency is autocannon's (from the write of the request: a closed loop has no schedule).
 * The inputs must ask for JSON outputs: autocannon hands bodies over as text.
 */
export async function closedLoopRecorded(o: RecordedClosedLoopOptions): Promise<RecordedClosedLoopResult> {
  const rec = new RunRecords(o.maxRequests + o.connections, [o.inputs.route]);
  const live = new Histogram();
  let pending: { k: number; status: number; body: string; headers: Record<string, unknown> } | undefined;
  const requests = o.inputs.bodies.map((b, k) => ({
    method: 'POST' as const,
    path: o.inputs.path,
    body: b.body,
    headers: b.headers,
    onResponse: (status: number, body: string, _ctx: object, headers: unknown) => {
      pending = { k, status, body, headers: (headers ?? {}) as Record<string, unknown> };
    },
  }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let errors = 0;
  let lastSent = 0;
  const inst = autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    amount: o.maxRequests,
    timeout: Math.max(1, Math.ceil(o.timeoutMs / 1000)),
    requests,
  }) as unknown as autocannon.Instance & Promise<autocannon.Result>;
  inst.on('response', (_client, statusCode, _bytes, responseTime) => {
    const p = pending;
    pending = undefined;
    const now = performance.now() - t0;
    const i = rec.push(Math.max(0, now - responseTime), 0, o.deadlineMs);
    if (i < 0) return;
    const code = headerValue(p?.headers, 'x-slogate-error-code');
    if (statusCode !== 200 || p === undefined) {
      errors++;
      rec.answer(i, statusCode, responseTime, code, undefined, -1);
      return;
    }
    const hl = headerValue(p.headers, 'inference-header-content-length');
    const answer = readAnswer(Buffer.from(p.body, 'utf8'), hl === undefined ? undefined : Number(hl), o.inputs.scoring);
    const label = o.inputs.labels[p.k] ?? -1;
    rec.answer(
      i,
      200,
      responseTime,
      code,
      answer.variant,
      label < 0 || answer.predicted === undefined ? -1 : answer.predicted === label ? 1 : 0,
    );
    live.record(responseTime);
  });
  inst.on('reqError', (err: { code?: string } | undefined) => {
    errors++;
    const i = rec.push(performance.now() - t0, 0, o.deadlineMs);
    if (i >= 0)
      rec.noAnswer(
        i,
        err?.code === 'ETIMEDOUT' || /timeout/i.test(String(err)) ? CLIENT_CODES.timeout : CLIENT_CODES.connection,
      );
  });
  // With a request cap autocannon ignores the duration: stop it at the duration ourselves.
  const stopTimer = setTimeout(() => inst.stop(), o.durationS * 1000);
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
  try {
    await inst;
  } finally {
    clearTimeout(stopTimer);
    clearInterval(progressTimer);
  }
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  return { records: rec, wallMs, senderCpu: (c.user + c.system) / 1000 / Math.max(1, wallMs) };
}

function headerValue(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  for (const [k, v] of Object.entries(headers))
    if (k.toLowerCase() === name) return Array.isArray(v) ? String(v[0]) : String(v);
  return undefined;
}
