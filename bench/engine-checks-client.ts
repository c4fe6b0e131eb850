// The small HTTP client the engine checks (engine-checks.ts) share: eval-set bodies with their labels, one V2 infer
// call scored and timed, an open-loop sender at a fixed rate, closed-loop floods, and the admin reads they poll.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { type EvalSet, readEvalSet } from '../runtime/eval-set.js';

export interface Answer {
  readonly status: number;
  readonly clientMs: number;
  readonly variant?: string;
  readonly serverMs?: number;
  readonly queueMs?: number;
  readonly inferMs?: number;
  readonly correct: number;
  readonly scored: number;
}

/** Bodies of `rows` consecutive eval rows, cycling through the set, with their labels. */
export class EvalBodies {
  readonly #set: EvalSet;
  #cursor = 0;

  constructor(path: string) {
    this.#set = readEvalSet(path);
  }

  next(rows: number): { json: string; labels: number[] } {
    const s = this.#set;
    const data: number[] = [];
    const labels: number[] = [];
    for (let r = 0; r < rows; r++) {
      const i = this.#cursor++ % s.count;
      labels.push(s.labels[i] as number);
      for (let k = 0; k < s.features; k++) data.push(s.data[i * s.features + k] as number);
    }
    const json = JSON.stringify({
      inputs: [{ name: 'pixels', shape: [rows, s.features], datatype: 'FP32', data }],
      outputs: [{ name: 'label' }],
    });
    return { json, labels };
  }
}

const timing = (h: string | undefined, name: string) => {
  const m = h?.match(new RegExp(`${name};dur=([0-9.]+)`));
  return m === null || m === undefined ? undefined : Number(m[1]);
};

/** One infer call; latency from `startMs` (the scheduled send time in an open loop). */
export async function infer(
  pool: Pool,
  path: string,
  body: { json: string; labels: readonly number[] },
  startMs = performance.now(),
): Promise<Answer> {
  try {
    const res = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body.json,
    });
    const text = await res.body.text();
    const clientMs = performance.now() - startMs;
    if (res.statusCode !== 200) return { status: res.statusCode, clientMs, correct: 0, scored: 0 };
    const st = String(res.headers['server-timing'] ?? '');
    const out = JSON.parse(text) as { model_version: string; outputs: { data: number[] }[] };
    const got = out.outputs[0]?.data ?? [];
    let correct = 0;
    body.labels.forEach((label, r) => {
      if (got[r] === label) correct++;
    });
    return {
      status: 200,
      clientMs,
      variant: out.model_version,
      serverMs: timing(st, 'total'),
      queueMs: timing(st, 'queue'),
      inferMs: timing(st, 'infer'),
      correct,
      scored: body.labels.length,
    };
  } catch {
    return { status: 0, clientMs: performance.now() - startMs, correct: 0, scored: 0 };
  }
}

/** Sends 1-row requests at `rps` (evenly spaced) for `durationMs`; every answer, latency from its scheduled time. */
export async function openLoop(
  pool: Pool,
  path: string,
  bodies: EvalBodies,
  rps: number,
  durationMs: number,
): Promise<Answer[]> {
  const answers: Promise<Answer>[] = [];
  const start = performance.now();
  const gapMs = 1000 / rps;
  let next = start;
  while (next < start + durationMs) {
    const now = performance.now();
    while (next <= now && next < start + durationMs) {
      answers.push(infer(pool, path, bodies.next(1), next));
      next += gapMs;
    }
    await sleep(1);
  }
  return Promise.all(answers);
}

/** `connections` loops each sending its next request when the last is answered, until `untilMs`; returns the count. */
export async function closedLoop(
  url: string,
  connections: number,
  untilMs: number,
  send: (pool: Pool) => Promise<unknown>,
): Promise<number> {
  const pool = new Pool(url, { connections });
  let n = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < untilMs) {
        await send(pool).catch(() => undefined);
        n++;
      }
    }),
  );
  await pool.close();
  return n;
}

/** A GET whose body is read and dropped (the floods). */
export async function get(pool: Pool, path: string): Promise<number> {
  const res = await pool.request({ path, method: 'GET' });
  await res.body.dump();
  return res.statusCode;
}

export async function getJson<T>(pool: Pool, path: string): Promise<T> {
  const res = await pool.request({ path, method: 'GET' });
  return (await res.body.json()) as T;
}

export interface RouteDecision {
  readonly variants: readonly { variant: string; share: number }[];
  readonly admissionRps: number | null;
  readonly inputs: { readonly capacityRps: number; readonly overheadMs: number };
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export const fmt = (x: number | undefined, digits = 2) =>
  x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
