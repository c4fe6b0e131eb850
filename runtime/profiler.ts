// The start-up sweep: service time p50/p99 per variant for batch sizes 1, 2, 4, ... maxBatch, measured through the
// real replicas with every replica busy at once (as in production), within a time budget. Results are cached on
// disk keyed by the model file's hash and the host, so a restart on the same host is instant, until the cache ages out.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { env as ortEnv } from 'onnxruntime-node';
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { TensorSpec, TensorStorage } from '../core/types.js';
import type { ProfilePoint } from './latency-profile.js';
import type { ModelInfo, VariantInfo } from './model-repository.js';
import type { BatchTask } from './replica.js';
import type { ReplicaPool } from './replica-pool.js';
import { allocate } from './tensor.js';

export interface SweepOptions {
  readonly samples: number;
  readonly budgetMs: number;
  readonly cacheDir: string | undefined;
  /** Part of the cache key: what else shapes service time on this host. */
  readonly hostKey: string;
  /**
   * A cached profile older than this (by its file's modification time) is measured again: drivers, firmware and
   * neighbours change under an unchanged key. Undefined or 0: never.
   */
  readonly maxAgeMs?: number | undefined;
}

export interface VariantSweep {
  readonly model: string;
  readonly variant: string;
  readonly points: ProfilePoint[];
  readonly cached: boolean;
  /** Median hop (round trip minus the replica's busy time) seen while measuring, ms. */
  readonly hopMs: number;
}

/** Identifies this host's execution environment (CPU model, cores, onnxruntime, provider, threads, replicas). */
export function hostKey(parts: { provider: string; intraOpThreads: number; replicas: number }): string {
  const cpu = cpus()[0]?.model ?? 'unknown-cpu';
  const ort = ortEnv.versions.node ?? 'unknown';
  return `${cpu}|cores=${cpus().length}|ort=${ort}|provider=${parts.provider}|intraOp=${parts.intraOpThreads}|replicas=${parts.replicas}`;
}

export function batchSizes(maxBatch: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) out.push(b);
  out.push(maxBatch);
  return out;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Bumped when the way profiles are measured changes, so caches from older code are measured again. */
const PROFILE_FORMAT = 'v2';

function cacheFile(dir: string, v: VariantInfo, host: string, sizes: readonly number[], samples: number): string {
  const h = createHash('sha256')
    .update(`${PROFILE_FORMAT}|${v.sha256}|${host}|${sizes.join(',')}|${samples}`)
    .digest('hex')
    .slice(0, 24);
  return join(dir, `profile-${v.model}-${v.name}-${h}.json`);
}

const CachedPointSchema = z.object({
  rows: z.number().int().min(1),
  p50Ms: z.number().positive(),
  p99Ms: z.number().positive(),
  samples: z.number().int().min(1),
});

/**
 * A cached profile as written by this code: one point per batch size of its key, in order, with positive finite
 * times (a zero, negative or string time would make the engine plan with nonsense and drop every request).
 */
export function cachedProfileSchema(sizes: readonly number[]) {
  return z
    .object({ hopMs: z.number().min(0), points: z.array(CachedPointSchema) })
    .refine((f) => f.points.length === sizes.length && f.points.every((p, i) => p.rows === sizes[i]), {
      message: `points must be the batch sizes ${sizes.join(', ')}, in order`,
      path: ['points'],
    })
    .refine((f) => f.points.every((p) => p.p99Ms >= p.p50Ms), { message: 'p99Ms below p50Ms', path: ['points'] });
}

/** Random inputs of `rows` rows for a signature (variable non-batch dimensions become 1). */
export function syntheticInputs(
  inputs: readonly TensorSpec[],
  rows: number,
): { name: string; datatype: TensorSpec['datatype']; shape: number[]; data: TensorStorage }[] {
  return inputs.map((spec) => {
    const shape = spec.shape.map((d, i) => (i === 0 ? rows : d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = allocate(spec.datatype, n);
    if (data instanceof Float32Array || data instanceof Float64Array)
      for (let i = 0; i < n; i++) data[i] = Math.random();
    else if (Array.isArray(data)) for (let i = 0; i < n; i++) data[i] = new Uint8Array([120]);
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
}

/** What the profiler runs batches on: the replica pool, or the replicas that loaded a candidate revision. */
export type ProfileTarget = Pick<ReplicaPool, 'run' | 'readySlots'>;

export class Profiler {
  readonly #pool: ProfileTarget;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(pool: ProfileTarget, clock: Clock, logger: Logger = silentLogger) {
    this.#pool = pool;
    this.#clock = clock;
    this.#logger = logger;
  }

  /**
   * Sweeps every variant of the given models (using cached results where the key matches). With `revision`, the
   * batches run that loaded revision of each variant instead of its active one (a candidate's latency gate).
   */
  async sweep(models: readonly ModelInfo[], options: SweepOptions, revision?: string): Promise<VariantSweep[]> {
    const out: VariantSweep[] = [];
    const todo: { m: ModelInfo; v: VariantInfo; sizes: number[] }[] = [];
    const fromCache: { m: ModelInfo; v: VariantInfo; sizes: number[] }[] = [];
    for (const m of models) {
      const sizes = m.signature?.batchable === true ? batchSizes(m.config.maxBatch) : [1];
      for (const v of m.variants.values()) {
        const cached =
          options.cacheDir === undefined
            ? undefined
            : this.#readCache(
                cacheFile(options.cacheDir, v, options.hostKey, sizes, options.samples),
                sizes,
                options.maxAgeMs,
              );
        if (cached !== undefined) {
          out.push({ model: m.name, variant: v.name, points: cached.points, cached: true, hopMs: cached.hopMs });
          fromCache.push({ m, v, sizes });
        } else todo.push({ m, v, sizes });
      }
    }
    // Cached variants are not measured, but their sessions are as cold as any: the first runs of each shape allocate
    // and plan, and served cold they would enter the online profile as stalls. Two rounds per shape on every replica.
    for (const c of fromCache) await this.#warm(c.m, c.v, c.sizes, 2, revision);
    const pointCount = todo.reduce((n, t) => n + t.sizes.length, 0);
    const perPointMs = pointCount === 0 ? 0 : options.budgetMs / pointCount;
    // Warm the workers' own code paths (message handling, tensor conversion) before the first measured point, or the
    // first variant measured looks slower than it is.
    const first = todo[0];
    if (first !== undefined) await this.#warm(first.m, first.v, [1], 50, revision);
    for (const t of todo) {
      let points: ProfilePoint[] = [];
      const hops: number[] = [];
      for (const rows of t.sizes)
        points.push(
          await this.#measure(t.m, t.v, rows, { samples: options.samples, budgetMs: perPointMs, revision }, hops),
        );
      points = smoothProfile(points);
      hops.sort((a, b) => a - b);
      const hopMs = round(quantile(hops, 0.5));
      out.push({ model: t.m.name, variant: t.v.name, points, cached: false, hopMs });
      if (options.cacheDir !== undefined)
        this.#writeCache(
          options.cacheDir,
          cacheFile(options.cacheDir, t.v, options.hostKey, t.sizes, options.samples),
          points,
          hopMs,
        );
    }
    return out;
  }

  /** Runs every shape `rounds` times on every replica at once (results discarded). */
  async #warm(m: ModelInfo, v: VariantInfo, sizes: readonly number[], rounds: number, revision?: string) {
    const sig = m.signature;
    if (sig === undefined) return;
    for (const rows of sizes) {
      const inputs = syntheticInputs(sig.inputs, rows);
      const build = (): BatchTask => ({ model: m.name, variant: v.name, inputs, rows, transfer: false, revision });
      const slots = Math.max(1, this.#pool.readySlots);
      for (let i = 0; i < rounds; i++) await Promise.all(Array.from({ length: slots }, () => this.#pool.run(build)));
    }
  }

  /**
   * Service time of one batch size: the replica's own busy time plus the hop, with every replica busy at once.
   * Timing the replica rather than the round trip keeps hiccups of this process's event loop out of the profile.
   */
  async #measure(
    m: ModelInfo,
    v: VariantInfo,
    rows: number,
    run: { samples: number; budgetMs: number; revision: string | undefined },
    hops: number[],
  ): Promise<ProfilePoint> {
    const { samples, budgetMs, revision } = run;
    const sig = m.signature;
    if (sig === undefined) throw new Error(`model ${m.name} has no signature yet`);
    const inputs = syntheticInputs(sig.inputs, rows);
    const build = (): BatchTask => ({ model: m.name, variant: v.name, inputs, rows, transfer: false, revision });
    // Warm-up on every replica (all slots at once, three rounds): the first runs of a new shape allocate, plan and,
    // on CUDA, search convolution algorithms, per session. Warming one replica would leave that cost in the others'
    // samples.
    await this.#warm(m, v, [rows], 3, revision);
    const busy: number[] = [];
    const trips: number[] = [];
    const start = this.#clock.now();
    const parallel = Math.max(1, this.#pool.readySlots);
    while (busy.length < samples && (busy.length < 5 || this.#clock.now() - start < budgetMs)) {
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          const t0 = this.#clock.now();
          const r = await this.#pool.run(build);
          const trip = this.#clock.now() - t0;
          busy.push(r.workerMs);
          trips.push(trip);
          hops.push(Math.max(0, trip - r.workerMs));
        }),
      );
    }
    trips.sort((a, b) => a - b);
    busy.sort((a, b) => a - b);
    const hop = Math.max(0, quantile(trips, 0.5) - quantile(busy, 0.5));
    const times = busy.map((b) => b + hop);
    return { rows, p50Ms: round(quantile(times, 0.5)), p99Ms: round(quantile(times, 0.99)), samples: times.length };
  }

  /** The cached profile, or undefined to measure: no file, one too old (logged), or one unreadable or invalid (logged). */
  #readCache(
    file: string,
    sizes: readonly number[],
    maxAgeMs: number | undefined,
  ): { points: ProfilePoint[]; hopMs: number } | undefined {
    let text: string;
    let ageMs: number;
    try {
      ageMs = Date.now() - statSync(file).mtimeMs;
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    if (maxAgeMs !== undefined && maxAgeMs > 0 && ageMs > maxAgeMs) {
      const hours = (ageMs / 3_600_000).toFixed(1);
      this.#logger.info({ file, ageMs, maxAgeMs }, `profile cache ${file} is ${hours} hours old; measuring again`);
      return undefined;
    }
    let problem: string;
    try {
      const parsed = cachedProfileSchema(sizes).safeParse(JSON.parse(text));
      if (parsed.success) return { points: parsed.data.points, hopMs: parsed.data.hopMs };
      problem = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    } catch (err) {
      problem = `not JSON (${(err as Error).message})`;
    }
    this.#logger.warn({ file, problem }, `profile cache ${file} is invalid (${problem}); measuring again`);
    return undefined;
  }

  #writeCache(dir: string, file: string, points: ProfilePoint[], hopMs: number): void {
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ hopMs, points }, null, 1)}\n`);
      renameSync(tmp, file);
    } catch {
      // A read-only cache directory only costs a re-profile at the next start.
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Makes a measured profile consistent: service time does not shrink with batch size (p50 made non-decreasing), and a
 * p99 spike at one size (one stall among few samples) is capped by the p99 of every larger size; p99 >= p50.
 */
export function smoothProfile(points: readonly ProfilePoint[]): ProfilePoint[] {
  const pts = [...points].sort((a, b) => a.rows - b.rows);
  const out = pts.map((p) => ({ ...p }));
  for (let i = 1; i < out.length; i++)
    (out[i] as ProfilePoint).p50Ms = Math.max((out[i] as ProfilePoint).p50Ms, (out[i - 1] as ProfilePoint).p50Ms);
  for (let i = out.length - 2; i >= 0; i--)
    (out[i] as ProfilePoint).p99Ms = Math.min((out[i] as ProfilePoint).p99Ms, (out[i + 1] as ProfilePoint).p99Ms);
  for (const p of out) p.p99Ms = Math.max(p.p99Ms, p.p50Ms);
  return out;
}
