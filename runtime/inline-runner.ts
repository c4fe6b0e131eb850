// Batches cheaper than their own hand-off run on the main thread: a round trip to a worker thread costs two
// cross-thread wake-ups, more CPU than a few rows of a small model. Only a variant's active revision runs here
// (candidates, shadows and gates stay on the worker), on CPU, one intra-op thread; its session loads on a later turn
// of the event loop the first time a batch qualifies, and the worker serves until it is ready. A batch runs in the
// turn it is dispatched in (runtime/worker/ort-direct.ts), where the binding allows. Nothing preempts a run on the
// main thread, so a graph whose run time its input values set (onnx-ops.ts) never runs here, and a run far past the
// bound sends the variant's later batches to the worker.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type * as Ort from 'onnxruntime-node';
import { SlogateError } from '../core/errors.js';
import { PairMap } from '../core/pair-map.js';
import { hasDataDependentCost } from './onnx-ops.js';
import type { BatchOutcome, BatchTask } from './replica.js';
import type { WireTensor } from './worker/messages.js';
import type { Outputs } from './worker/ort-direct.js';

type OrtModule = typeof import('./worker/ort-tensors.js') &
  typeof import('./worker/ort-direct.js') & { ort: typeof Ort };

/** A loaded session: the direct one, or the public API's where the binding has another shape. */
interface InlineSession {
  /** Its run answers on the calling thread before returning (the direct session). */
  readonly sync: boolean;
  run(feeds: Record<string, Ort.Tensor>, outputs: readonly string[] | undefined): Outputs | Promise<Outputs>;
  release(): void;
}

type Loaded = Entry & { session: InlineSession };

interface Entry {
  readonly model: string;
  readonly variant: string;
  readonly path: string;
  session?: InlineSession;
  /** Batches running on it now: a replaced session is released after its last one. */
  runs: number;
  /** Replaced, or barred after a runaway run: nothing more runs on it. */
  retired: boolean;
}

/** A run this many times the bound (and at least RUNAWAY_FLOOR_MS) was not the cheap batch it was predicted to be. */
const RUNAWAY_FACTOR = 50;
const RUNAWAY_FLOOR_MS = 10;

export interface InlineOptions {
  /** A run longer than this bars its variant (default: 50 times the bound, at least 10 ms). */
  readonly runawayMs?: number;
  /** Told of each variant barred, with the run that barred it. */
  readonly onBarred?: (model: string, variant: string, ms: number) => void;
}

export class InlineRunner {
  /** Largest predicted batch time that runs inline. */
  readonly maxMs: number;
  /** Batches run inline so far. */
  batches = 0;
  /** Variants sent back to the worker for good after a runaway run, as model/variant. */
  readonly barred: string[] = [];
  readonly #runawayMs: number;
  readonly #entries = new PairMap<Entry>();
  #ort: Promise<OrtModule> | undefined;
  /** The modules once loaded: a session is only ever set after them. */
  #loaded: OrtModule | undefined;
  #closed = false;

  readonly #onBarred: ((model: string, variant: string, ms: number) => void) | undefined;

  constructor(maxMs: number, options: InlineOptions = {}) {
    this.maxMs = maxMs;
    this.#runawayMs = options.runawayMs ?? Math.max(RUNAWAY_FLOOR_MS, maxMs * RUNAWAY_FACTOR);
    this.#onBarred = options.onBarred;
  }

  /** Whether `task` runs inline now on the variant's active file `path` (else it goes to a worker). */
  accepts(task: BatchTask, path: string): boolean {
    if (this.#closed || task.revision !== undefined || task.expectedMs === undefined || task.expectedMs > this.maxMs)
      return false;
    const entry = this.#entries.get(task.model, task.variant);
    if (entry?.path === path) return entry.session !== undefined && !entry.retired;
    if (entry !== undefined) this.#retire(entry);
    this.#load(task.model, task.variant, path);
    return false;
  }

  /**
   * Runs an accepted batch before returning, when its session answers synchronously (the direct one); undefined
   * otherwise, and run() serves it. Throws what run() rejects with.
   */
  runNow(task: BatchTask, replicaId: string): BatchOutcome | undefined {
    const entry = this.#entries.get(task.model, task.variant) as Loaded;
    if (!entry.session.sync) return undefined;
    // Counted before the run: a session retired meanwhile is released only after it.
    entry.runs++;
    try {
      const start = performance.now();
      const feeds = this.#feeds(task);
      const t0 = performance.now();
      let results: Outputs;
      try {
        results = entry.session.run(feeds, task.outputs) as Outputs;
      } catch (err) {
        throw inferenceFailed(task, err);
      }
      return this.#outcome(entry, replicaId, start, t0, results);
    } finally {
      this.#settled(entry);
    }
  }

  async run(task: BatchTask, replicaId: string): Promise<BatchOutcome> {
    const now = this.runNow(task, replicaId);
    if (now !== undefined) return now;
    const entry = this.#entries.get(task.model, task.variant) as Loaded;
    entry.runs++;
    try {
      const start = performance.now();
      const feeds = this.#feeds(task);
      const t0 = performance.now();
      let results: Outputs;
      try {
        results = await entry.session.run(feeds, task.outputs);
      } catch (err) {
        throw inferenceFailed(task, err);
      }
      return this.#outcome(entry, replicaId, start, t0, results);
    } finally {
      this.#settled(entry);
    }
  }

  #feeds(task: BatchTask): Record<string, Ort.Tensor> {
    const m = this.#loaded as OrtModule;
    const feeds: Record<string, Ort.Tensor> = {};
    for (const t of task.inputs) feeds[t.name] = m.toOrt(t);
    return feeds;
  }

  #outcome(entry: Loaded, replicaId: string, start: number, t0: number, results: Outputs): BatchOutcome {
    const inferMs = performance.now() - t0;
    if (inferMs > this.#runawayMs) this.#bar(entry, inferMs);
    const m = this.#loaded as OrtModule;
    const outputs: WireTensor[] = [];
    for (const name in results) outputs.push(m.fromOrt(name, results[name] as Ort.OnnxValue));
    this.batches++;
    return { outputs, inferMs, workerMs: performance.now() - start, replicaId, inline: true as const };
  }

  #settled(entry: Loaded): void {
    entry.runs--;
    if (entry.retired && entry.runs === 0) entry.session.release();
  }

  #load(model: string, variant: string, path: string): void {
    const entry: Entry = { model, variant, path, runs: 0, retired: false };
    this.#entries.set(model, variant, entry);
    this.#ort ??= Promise.all([
      import('./worker/ort-tensors.js'),
      import('./worker/ort-direct.js'),
      import('onnxruntime-node'),
    ]).then(([t, d, ort]) => {
      this.#loaded = { ...t, ...d, ort };
      return this.#loaded;
    });
    void this.#ort.then(openSession.bind(null, path)).then(
      (session) => {
        if (session === undefined) return;
        if (this.#entries.get(model, variant) === entry && !this.#closed) entry.session = session;
        else session.release();
      },
      // A file the main thread cannot load stays on the worker, which reports its own errors.
      () => {},
    );
  }

  /** Keeps the entry, so its file is not loaded again, but runs nothing more on it. */
  #bar(entry: Entry, ms: number): void {
    if (entry.retired) return;
    entry.retired = true;
    this.barred.push(`${entry.model}/${entry.variant}`);
    this.#onBarred?.(entry.model, entry.variant, ms);
  }

  #retire(entry: Entry): void {
    this.#entries.delete(entry.model, entry.variant);
    // A barred session was released after its last run.
    if (entry.retired) return;
    entry.retired = true;
    if (entry.runs === 0) entry.session?.release();
  }

  /** Releases every session; nothing runs inline after. */
  close(): void {
    this.#closed = true;
    for (const entry of [...this.#entries.values()]) this.#retire(entry);
  }
}

/**
 * Loads on a later turn of the event loop (a load blocks its thread): the direct session, else the public one;
 * undefined for a graph whose run time its input values set.
 */
async function openSession(path: string, m: OrtModule): Promise<InlineSession | undefined> {
  if (hasDataDependentCost(await readFile(path))) return undefined;
  const options = m.sessionOptions(1, { cuda: false });
  await nextTurn();
  const direct = m.openDirectSession(path, options);
  if (direct !== undefined) return { sync: true, run: direct.run, release: direct.release };
  const session = await m.ort.InferenceSession.create(path, options);
  return {
    sync: false,
    run: (feeds, outputs) => (outputs === undefined ? session.run(feeds) : session.run(feeds, outputs)),
    release: () => void session.release().catch(() => {}),
  };
}

function inferenceFailed(task: BatchTask, err: unknown): SlogateError {
  return new SlogateError('SLOGATE_ERR_INFERENCE_FAILED', `${task.model}/${task.variant}: ${(err as Error).message}`);
}
