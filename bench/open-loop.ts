// The open-loop sender: fires every request of a precomputed schedule when its time comes, whatever the server is
// doing, so queueing shows up in the numbers (no coordinated omission). Latency is measured from the SCHEDULED send
// time; the sender's own lag (actual - scheduled) is recorded too, and a run whose sender fell behind is marked.
// Kept lean for a machine it shares with the server: bodies are pre-encoded, records are typed arrays.
import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.js';
import { encodeRequest, type Http1Handler, Http1Pool } from './http1-pool.js';
import type { RouteInputs } from './inputs.js';
import { CLIENT_CODES, RunRecords } from './records.js';
import type { Schedule } from './schedule.js';
import type { V2Body } from './v2-requests.js';
import { recordAnswer } from './v2-response.js';

export interface Progress {
  readonly elapsedS: number;
  readonly sent: number;
  readonly done: number;
  readonly inflight: number;
  /** Requests sent during the last second. */
  readonly rate: number;
  /** p99 of the 200 answers so far (ms, from the scheduled time). */
  readonly p99Ms: number;
  readonly errors: number;
}

export interface OpenLoopOptions {
  readonly url: string;
  readonly schedule: Schedule;
  /**
   * Sent first and not recorded; the schedule starts where it ends, with no pause between (a warm-up that does not
   * let the server go idle before the measured window). Its routes index `inputs` like the schedule's.
   */
  readonly leadIn?: Schedule | undefined;
  /** One per schedule route, same order. */
  readonly inputs: readonly RouteInputs[];
  /** An existing pool (warm connections); otherwise one is made and closed. */
  readonly pool?: Http1Pool | undefined;
  readonly maxConnections?: number;
  /** Per-request limit on waiting for headers and body. */
  readonly timeoutMs: number;
  /** After the last send, how long to wait for answers before counting the rest as client timeouts. */
  readonly drainMs: number;
  readonly onProgress?: ((p: Progress) => void) | undefined;
}

export interface OpenLoopResult {
  readonly records: RunRecords;
  /** Wall time from the first scheduled send to the last answer. */
  readonly wallMs: number;
  /** CPU the bench process used, as a fraction of one core over the run. */
  readonly senderCpu: number;
  /** Most requests in flight at once (at the connection limit, requests waited inside the client). */
  readonly peakInflight: number;
  readonly maxConnections: number;
}

export function makePool(url: string, connections: number, timeoutMs: number): Http1Pool {
  return new Http1Pool(url, { connections, timeoutMs });
}

/**
 * Opens up to `n` connections before the measured run. A load step would otherwise make the client set up dozens of
 * TCP connections at once, and that client-side stall would be timed as the server's latency.
 */
export function openConnections(pool: Http1Pool, n: number): Promise<void> {
  return pool.open(n);
}

/** Each body's request bytes, encoded once per server and path (a run's probes share them). */
const encoded = new WeakMap<V2Body, { key: string; bytes: Buffer }>();

function requestBytes(url: string, path: string, b: V2Body): Buffer {
  const key = `${url} ${path}`;
  const hit = encoded.get(b);
  if (hit?.key === key) return hit.bytes;
  const bytes = encodeRequest(url, 'POST', path, b.headers, b.body);
  encoded.set(b, { key, bytes });
  return bytes;
}

export function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const { schedule } = o;
  const n = schedule.atMs.length;
  const lead = o.leadIn;
  const leadN = lead?.atMs.length ?? 0;
  const leadMs = lead?.durationMs ?? 0;
  let nextLead = 0;
  const rec = new RunRecords(n, schedule.routes);
  rec.n = n;
  rec.atMs.set(schedule.atMs);
  rec.route.set(schedule.route);
  rec.deadlineMs.set(schedule.deadlineMs);
  const maxConnections = o.maxConnections ?? 256;
  const pool = o.pool ?? makePool(o.url, maxConnections, o.timeoutMs);
  const bodyIndex = new Uint32Array(o.inputs.length);
  // Encoded before the first send: the sender's per-request work stays an array lookup.
  const requests = o.inputs.map((inp) => inp.bodies.map((b) => requestBytes(o.url, inp.path, b)));
  const live = new Histogram();
  let next = 0;
  let done = 0;
  let inflight = 0;
  let peakInflight = 0;
  let errors = 0;
  let finished = false;
  let lastSecondSent = 0;
  let cpu0 = process.cpuUsage();
  // The measured schedule's time zero; the lead-in runs before it.
  const t0 = performance.now() + 20 + leadMs;

  return new Promise<OpenLoopResult>((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(progressTimer);
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      for (let i = 0; i < n; i++)
        if (rec.status[i] === 0 && rec.code[i] === 0)
          rec.noAnswer(i, i < next ? CLIENT_CODES.timeout : CLIENT_CODES.unanswered);
      const wallMs = performance.now() - t0;
      const c = process.cpuUsage(cpu0);
      const close = o.pool === undefined ? pool.destroy() : Promise.resolve();
      void close.then(() =>
        resolve({
          records: rec,
          wallMs,
          senderCpu: (c.user + c.system) / 1000 / Math.max(1, wallMs),
          peakInflight,
          maxConnections,
        }),
      );
    };
    const settle = () => {
      inflight--;
      done++;
      if (next >= n && inflight === 0) finish();
    };

    /** The index of route r's next body (its bodies are sent in turn). */
    const nextBody = (r: number): number => {
      const k = (bodyIndex[r] as number) % (o.inputs[r] as RouteInputs).bodies.length;
      bodyIndex[r] = (bodyIndex[r] as number) + 1;
      return k;
    };

    const sendLeadIn = (i: number) => {
      const r = (lead as Schedule).route[i] as number;
      const request = requests[r]?.[nextBody(r)];
      if (request === undefined) return;
      inflight++;
      let settled = false;
      const end = () => {
        if (settled) return;
        settled = true;
        settle();
      };
      pool.dispatch(request, { onResponse: end, onError: end });
    };

    const send = (i: number, nowMs: number) => {
      if (i === 0 && leadN > 0) cpu0 = process.cpuUsage();
      const at = schedule.atMs[i] as number;
      rec.lagMs[i] = nowMs - at;
      const r = schedule.route[i] as number;
      const inp = o.inputs[r] as RouteInputs;
      const k = nextBody(r);
      const request = requests[r]?.[k];
      if (request === undefined) return;
      inflight++;
      if (inflight > peakInflight) peakInflight = inflight;
      let settled = false;
      const end = (fn: () => void) => {
        if (settled) return;
        settled = true;
        if (!finished) fn();
        settle();
      };
      const handler: Http1Handler = {
        onResponse: (res) =>
          end(() => {
            const latency = performance.now() - t0 - at;
            if (recordAnswer(rec, i, res, latency, inp.scoring, inp.labels[k] as number)) live.record(latency);
            else errors++;
          }),
        onError: (kind) =>
          end(() => {
            errors++;
            rec.noAnswer(i, kind === 'timeout' ? CLIENT_CODES.timeout : CLIENT_CODES.connection);
          }),
      };
      pool.dispatch(request, handler);
    };

    const tick = () => {
      if (finished) return;
      const now = performance.now() - t0;
      while (nextLead < leadN && ((lead as Schedule).atMs[nextLead] as number) - leadMs <= now) sendLeadIn(nextLead++);
      if (nextLead >= leadN) while (next < n && (schedule.atMs[next] as number) <= now) send(next++, now);
      if (nextLead < leadN || next < n) {
        const due =
          nextLead < leadN ? ((lead as Schedule).atMs[nextLead] as number) - leadMs : (schedule.atMs[next] as number);
        // Timers fire no earlier than asked and about 1 ms late at best: aim at the floor and fire what is due.
        setTimeout(tick, Math.max(0, Math.floor(due - (performance.now() - t0))));
      } else {
        drainTimer = setTimeout(finish, o.drainMs);
        if (inflight === 0) finish();
      }
    };

    const progressTimer = setInterval(() => {
      o.onProgress?.({
        elapsedS: (performance.now() - t0) / 1000,
        sent: next,
        done,
        inflight,
        rate: next - lastSecondSent,
        p99Ms: live.quantileMs(0.99),
        errors,
      });
      lastSecondSent = next;
    }, 1000);
    progressTimer.unref();
    if (n === 0) {
      finish();
      return;
    }
    setTimeout(tick, 20);
  });
}
