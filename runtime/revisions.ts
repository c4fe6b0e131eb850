// What the deploy pipeline asks of the runtime for one candidate revision: load it beside the active one on every
// replica, run it (golden answers, the eval set, the latency sweep) without serving it, make it active, or drop it.
// Owns bytes and loading only; which gate runs and how results are judged is decided in policies/.
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Tensor, TensorSpec } from '../core/types.js';
import { countCorrect, round4 } from './accuracy.js';
import type { EvalSet } from './eval-set.js';
import type { LatencyProfiles, ProfilePoint } from './latency-profile.js';
import type { ModelInfo, ModelRepository, VariantInfo } from './model-repository.js';
import { hostKey, Profiler } from './profiler.js';
import type { BatchOutcome, BatchTask, Replica } from './replica.js';
import type { ReplicaPool } from './replica-pool.js';
import type { WireTensor } from './worker/messages.js';

export interface ReplicaLoad {
  readonly replica: string;
  /** Error code when it failed (SLOGATE_ERR_NOT_ONNX, ...). */
  readonly code?: string;
  readonly detail: string;
  readonly signature?: { inputs: TensorSpec[]; outputs: TensorSpec[] };
}

export interface CandidateFile {
  readonly model: string;
  readonly variant: string;
  /** `sha256:<hex>` */
  readonly revision: string;
  readonly path: string;
  readonly sizeBytes: number;
}

/** A latency sweep: service time points with the hop to the replicas, ms. */
export interface SweepResult {
  readonly points: ProfilePoint[];
  readonly hopMs: number;
}

export interface RevisionDeps {
  readonly config: Readonly<Config>;
  readonly pool: ReplicaPool;
  readonly repository: ModelRepository;
  readonly profiles: LatencyProfiles;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly provider: () => string;
  readonly intraOpThreads: number;
}

export class RuntimeRevisions {
  readonly #deps: RevisionDeps;

  constructor(deps: RevisionDeps) {
    this.#deps = deps;
  }

  /** Loads the candidate on every replica; each answers its signature or why it could not. */
  async load(c: CandidateFile): Promise<ReplicaLoad[]> {
    return Promise.all(
      this.#deps.pool.replicas.map(async (r): Promise<ReplicaLoad> => {
        if (r.revision === undefined)
          return { replica: r.id, code: 'SLOGATE_ERR_MODEL_LOAD', detail: `${r.kind} replica cannot load revisions` };
        try {
          const res = await r.revision({ kind: 'load', ...pick(c), path: c.path });
          if (!res.ok) return { replica: r.id, code: res.error.code, detail: res.error.message };
          if (res.kind !== 'load') return { replica: r.id, code: 'SLOGATE_ERR_INTERNAL', detail: 'unexpected reply' };
          return { replica: r.id, detail: 'loaded', signature: res.session };
        } catch (err) {
          return { replica: r.id, code: 'SLOGATE_ERR_REPLICA_UNAVAILABLE', detail: (err as Error).message };
        }
      }),
    );
  }

  /** Runs one batch on the candidate (queued behind serving batches on the replica, never refused for lack of a slot). */
  async run(c: CandidateFile, inputs: WireTensor[], rows: number): Promise<WireTensor[]> {
    const out = await this.#target(c.revision).run(() => ({
      model: c.model,
      variant: c.variant,
      inputs,
      rows,
      transfer: false,
      revision: c.revision,
    }));
    return out.outputs;
  }

  /** Accuracy of the candidate (or, without `c.revision` loaded, of `revision` undefined = active) on `set`. */
  async accuracy(c: CandidateFile | { model: string; variant: string; revision?: undefined }, set: EvalSet) {
    const m = this.#deps.repository.model(c.model);
    const sig = this.#deps.repository.signature(c.model);
    const rowsPer = sig.batchable ? Math.min(64, m.config.maxBatch) : 1;
    const target = this.#target(c.revision);
    const run = async (inputs: Tensor[], rows: number): Promise<readonly Tensor[]> => {
      const task: BatchTask = {
        model: c.model,
        variant: c.variant,
        inputs: inputs as WireTensor[],
        rows,
        transfer: false,
        revision: c.revision,
      };
      return (await target.run(() => task)).outputs;
    };
    // One batch at a time: the gates share the replicas with live traffic.
    const correct = await countCorrect(serial(run), c.model, sig, set, rowsPer);
    return round4(correct / set.count);
  }

  /** Latency sweep of the candidate and, under the same conditions, of the active revision. */
  async sweep(c: CandidateFile): Promise<{ candidate: SweepResult; active: SweepResult }> {
    const { config, clock, logger, repository } = this.#deps;
    const m = repository.model(c.model);
    const active = repository.variant(c.model, c.variant);
    const cand: VariantInfo = { ...active, path: c.path, sha256: c.revision.slice(7), sizeBytes: c.sizeBytes };
    const only = (v: VariantInfo): ModelInfo => ({ ...m, variants: new Map([[v.name, v]]) });
    const variantCount = [...repository.models.values()].reduce((n, x) => n + x.variants.size, 0);
    const options = {
      samples: config.runtime.profile.samples,
      budgetMs: Math.max(200, config.runtime.profile.budgetMs / Math.max(1, variantCount)),
      cacheDir: undefined,
      hostKey: hostKey({
        provider: this.#deps.provider(),
        intraOpThreads: this.#deps.intraOpThreads,
        replicas: this.#deps.pool.readySlots,
      }),
    };
    const profiler = (revision: string | undefined) => new Profiler(this.#target(revision), clock, logger);
    // The active revision is measured before and after the candidate and its faster sweep kept: a burst of
    // contention during one of them would otherwise make a slow candidate look no slower than the active one.
    const [a1] = await profiler(undefined).sweep([only(active)], options);
    const [b] = await profiler(c.revision).sweep([only(cand)], options, c.revision);
    const [a2] = await profiler(undefined).sweep([only(active)], options);
    if (a1 === undefined || a2 === undefined || b === undefined)
      throw new SlogateError('SLOGATE_ERR_INTERNAL', 'empty latency sweep');
    const a = largestServiceMs(a2) < largestServiceMs(a1) ? a2 : a1;
    return { candidate: { points: b.points, hopMs: b.hopMs }, active: { points: a.points, hopMs: a.hopMs } };
  }

  /**
   * Makes the candidate the variant's served revision: the engine's profile and the variant's identity (accuracy,
   * cache key) first, then every replica; batches already running finish on the old session.
   */
  async activate(c: CandidateFile, accuracy: number | undefined, points: readonly ProfilePoint[] | undefined) {
    const v = this.#deps.repository.variant(c.model, c.variant);
    if (points !== undefined && points.length > 0) this.#deps.profiles.replacePoints(c.model, c.variant, points);
    v.path = c.path;
    v.sha256 = c.revision.slice(7);
    v.sizeBytes = c.sizeBytes;
    v.accuracy = accuracy;
    const failures: string[] = [];
    for (const r of this.#deps.pool.replicas) {
      if (r.revision === undefined) continue;
      const res = await r.revision({ kind: 'activate', ...pick(c) }).catch((err: Error) => ({
        ok: false as const,
        error: { code: 'SLOGATE_ERR_REPLICA_UNAVAILABLE', message: err.message },
      }));
      if (!res.ok) failures.push(`${r.id}: ${res.error.message}`);
    }
    // A replica that missed it is being replaced, and its replacement loads the revision now active.
    if (failures.length > 0) this.#deps.logger.warn({ failures }, `activation of ${c.revision} missed replicas`);
  }

  /** Drops a candidate from every replica (after a failed gate). */
  async unload(c: CandidateFile): Promise<void> {
    await Promise.all(
      this.#deps.pool.replicas.map((r) =>
        r.revision === undefined ? undefined : r.revision({ kind: 'unload', ...pick(c) }).catch(() => undefined),
      ),
    );
  }

  /** Runs on the replicas that take revisions in turn, directly: a busy one queues the batch instead of refusing it. */
  #target(revision: string | undefined) {
    const takesRevisions = (r: Replica) => r.revision !== undefined;
    const target = this.#deps.pool.whileServing(takesRevisions);
    const replicas = () => this.#deps.pool.replicas.filter((r) => takesRevisions(r) && r.state === 'ready');
    return {
      get readySlots(): number {
        return Math.max(1, replicas().length);
      },
      run: (build: () => BatchTask): Promise<BatchOutcome> =>
        target.run(() => {
          const task = build();
          return revision === undefined ? task : { ...task, revision };
        }),
    };
  }
}

function largestServiceMs(s: { points: readonly ProfilePoint[]; hopMs: number }): number {
  const last = s.points.at(-1);
  return last === undefined ? Number.POSITIVE_INFINITY : last.p50Ms - s.hopMs;
}

function pick(c: { model: string; variant: string; revision: string }) {
  return { model: c.model, variant: c.variant, revision: c.revision };
}

/** Wraps an async function so calls run one after another. */
function serial<A extends unknown[], R>(fn: (...a: A) => Promise<R>): (...a: A) => Promise<R> {
  let tail: Promise<unknown> = Promise.resolve();
  return (...a: A) => {
    const next = tail.then(() => fn(...a));
    tail = next.catch(() => {});
    return next;
  };
}
