// The batching scheduler: one bounded EDF queue per variant, all sharing the replica pool. When a replica slot is
// free it asks each queue's batch policy "send now or wait", sends the most urgent ready batch, drops requests that
// can no longer make their deadline, and arms one timer for the next moment something must happen.
import type { Clock, TimerHandle } from '../core/clock.js';
import { SlogateError, toSlogateError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { PairMap } from '../core/pair-map.js';
import type { TraceSpan, TracingHooks } from '../core/tracing.js';
import type { Tensor, TensorStorage } from '../core/types.js';
import { variantKey } from '../core/types.js';
import type { BatchKnobs, QueueState } from './batch-policy.js';
import { planBatch } from './batch-policy.js';
import { type BatchTimeoutKnobs, batchTimeoutMs } from './batch-timeout.js';
import type { LatencyProfiles } from './latency-profile.js';
import type { BatchOutcome, BatchTask, ReplicaFault } from './replica.js';
import { BatchTimeoutFault, type ReplicaPool, type RunOptions } from './replica-pool.js';
import type { QueueItem } from './request-queue.js';
import { EdfQueue } from './request-queue.js';
import { ShadowGate } from './shadow-gate.js';
import { rowSize, splitRows, stackRows } from './tensor.js';
import { agreeingRows, type RevisionRole, type TrafficSplit } from './traffic-split.js';
import type { SubmitRequest, SubmitResult } from './types.js';

/** What one executed batch tells the world (profiles, metrics, the engine). */
export interface BatchObservation {
  readonly model: string;
  readonly variant: string;
  readonly rows: number;
  readonly requests: number;
  readonly serviceMs: number;
  /** Replica busy time plus the hop (see SubmitResult.computeMs). */
  readonly computeMs: number;
  readonly inferMs: number;
  readonly replicaId: string;
  /** It ran on the main thread, not the replica's worker (inline-runner.ts). */
  readonly inline: boolean;
}

export interface SchedulerEvents {
  /** A request left a queue without running. */
  onDrop?(
    model: string,
    variant: string,
    code:
      | 'SLOGATE_ERR_DEADLINE_UNREACHABLE'
      | 'SLOGATE_ERR_QUEUE_FULL'
      | 'SLOGATE_ERR_CANCELLED'
      | 'SLOGATE_ERR_SHUTTING_DOWN'
      | 'SLOGATE_ERR_VARIANT_REMOVED',
  ): void;
  onQueued?(model: string, variant: string, queueMs: number): void;
  onBatch?(obs: BatchObservation): void;
  /** Requests moved from one variant's queue to another's ('deadline': rescued from a drop; 'switch': a policy move). */
  onMove?(model: string, from: string, to: string, reason: 'deadline' | 'switch', count: number): void;
}

export interface VariantQueueStats {
  readonly model: string;
  readonly variant: string;
  readonly knobs: BatchKnobs;
  readonly queued: number;
  readonly queuedRows: number;
  readonly batches: number;
  readonly rowsServed: number;
  readonly dropped: number;
  readonly rejected: number;
}

interface Pending extends QueueItem {
  readonly req: SubmitRequest;
  readonly enqueuedMs: number;
  resolve: (r: SubmitResult) => void;
  reject: (e: SlogateError) => void;
  onAbort: (() => void) | undefined;
  /** Its wait span while traced. */
  wait: TraceSpan | undefined;
}

class VariantQueue {
  readonly queue = new EdfQueue<Pending>();
  batches = 0;
  rowsServed = 0;
  dropped = 0;
  rejected = 0;
  /** Batches of this variant running on replicas now. */
  running = 0;
  /** Being removed: nothing new is queued or moved here; what is queued and running finishes. */
  closing = false;
  constructor(
    readonly model: string,
    readonly variant: string,
    public knobs: BatchKnobs,
    readonly batchable: boolean,
  ) {}
}

export interface SchedulerOptions {
  readonly clock: Clock;
  readonly pool: ReplicaPool;
  readonly profiles: LatencyProfiles;
  /** Bound of each variant's queue, in rows. */
  readonly maxQueueRows: number;
  readonly events?: SchedulerEvents;
  /** Tracing hooks; absent = untraced (nothing is called). */
  readonly tracing?: TracingHooks | undefined;
  /** Where a failing observer (event, profile, tracing) is reported; it never stops a batch from being answered. */
  readonly logger?: Logger | undefined;
  /** When a running batch counts as hung (batch-timeout.ts); absent: batches run without a time limit. */
  readonly batchTimeout?: BatchTimeoutKnobs | undefined;
  /** Candidate revisions and their canary and shadow shares (rollouts); absent: every batch runs the active one. */
  readonly split?: TrafficSplit | undefined;
}

/** Longest queue (requests, all variants) that backlogMs(beforeMs) scans exactly. */
const MAX_BACKLOG_SCAN = 512;

/** Requests to set aside while looking for batch-mates of the same shape (bounds the scan). */
const MAX_SHAPE_SKIPS = 32;

export class Scheduler {
  readonly #clock: Clock;
  readonly #pool: ReplicaPool;
  readonly #profiles: LatencyProfiles;
  readonly #maxQueueRows: number;
  readonly #events: SchedulerEvents;
  readonly #tracing: TracingHooks | undefined;
  readonly #logger: Logger;
  readonly #batchTimeout: BatchTimeoutKnobs | undefined;
  readonly #split: TrafficSplit | undefined;
  readonly #shadowGate = new ShadowGate();
  /** Every variant's queue, by `model/variant` (iterated on every pump). */
  readonly #queues = new Map<string, VariantQueue>();
  /** The same queues by model and variant, for lookups per request. */
  readonly #byName = new PairMap<VariantQueue>();
  #seq = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #pumping = false;
  #repump = false;
  /** A pump is due at the end of this event-loop turn (submit under a clock with afterTurn). */
  #pumpDue = false;
  #inflight = 0;
  #accepting = true;
  #idleWaiters: (() => void)[] = [];

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock;
    this.#pool = options.pool;
    this.#profiles = options.profiles;
    this.#maxQueueRows = options.maxQueueRows;
    this.#logger = options.logger ?? silentLogger;
    this.#events = guardEvents(options.events ?? {}, (what, err) => this.#observerFailed(what, err));
    this.#tracing = options.tracing;
    this.#batchTimeout = options.batchTimeout;
    this.#split = options.split;
    this.#pool.on('slot-free', () => this.pump());
  }

  addVariant(model: string, variant: string, knobs: BatchKnobs, batchable: boolean): void {
    const vq = new VariantQueue(model, variant, knobs, batchable);
    this.#queues.set(variantKey(model, variant), vq);
    this.#byName.set(model, variant, vq);
  }

  /**
   * Stops queueing to a variant and waits (at most timeoutMs) until what is queued and running on it is answered,
   * then forgets it. Requests still queued at the timeout are refused with SLOGATE_ERR_VARIANT_REMOVED.
   */
  async removeVariant(model: string, variant: string, timeoutMs: number): Promise<boolean> {
    const vq = this.#byName.get(model, variant);
    if (vq === undefined) return true;
    vq.closing = true;
    this.pump();
    const deadline = this.#clock.now() + timeoutMs;
    while ((vq.queue.size > 0 || vq.running > 0) && this.#clock.now() < deadline)
      await new Promise<void>((resolve) => this.#clock.setTimer(resolve, Math.min(10, deadline - this.#clock.now())));
    const drained = vq.queue.size === 0 && vq.running === 0;
    for (let p = vq.queue.shift(); p !== undefined; p = vq.queue.shift()) {
      this.#detach(p);
      this.#events.onDrop?.(vq.model, vq.variant, 'SLOGATE_ERR_VARIANT_REMOVED');
      p.reject(
        new SlogateError('SLOGATE_ERR_VARIANT_REMOVED', `${model}/${variant} was removed before this request ran`),
      );
    }
    if (this.#byName.get(model, variant) === vq) {
      this.#queues.delete(variantKey(model, variant));
      this.#byName.delete(model, variant);
    }
    return drained;
  }

  setKnobs(model: string, variant: string, knobs: BatchKnobs): void {
    const q = this.#queue(model, variant);
    q.knobs = knobs;
    this.pump();
  }

  knobs(model: string, variant: string): BatchKnobs {
    return this.#queue(model, variant).knobs;
  }

  #queue(model: string, variant: string): VariantQueue {
    const q = this.#byName.get(model, variant);
    if (q === undefined) throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `no variant ${model}/${variant}`);
    return q;
  }

  /**
   * Moves up to `fraction` of a tag's queued requests from one variant's queue to another's (latest deadlines first:
   * they would wait longest). The policy calls this when it shifts a route away from a variant, so the backlog
   * built on the old choice is not left to miss its deadlines. Returns how many moved.
   */
  migrate(model: string, from: string, to: string, tag: string, fraction: number): number {
    const src = this.#byName.get(model, from);
    const dst = this.#byName.get(model, to);
    if (src === undefined || dst === undefined || dst.closing || src === dst || fraction <= 0) return 0;
    const mine = src.queue.values().filter((p) => p.req.tag === tag && p.req.pinned !== true);
    const n = Math.min(mine.length, Math.ceil(mine.length * Math.min(1, fraction)));
    if (n === 0) return 0;
    mine.sort((a, b) => b.deadlineAtMs - a.deadlineAtMs);
    for (const p of mine.slice(0, n)) {
      src.queue.remove(p);
      dst.queue.push(p);
    }
    this.#events.onMove?.(model, from, to, 'switch', n);
    this.pump();
    return n;
  }

  /** Rows queued for a variant (admission control reads it). */
  queuedRows(model: string, variant: string): number {
    return this.#queue(model, variant).queue.rows;
  }

  /** Rows queued over every variant (each answer's load report reads it). */
  totalQueuedRows(): number {
    let rows = 0;
    for (const vq of this.#queues.values()) rows += vq.queue.rows;
    return rows;
  }

  /**
   * Estimated time to work off what is queued (ms, spread over the ready replicas), at each variant's batch limit.
   * With `beforeMs`, only requests whose deadline is not later (EDF runs those first) count; that scan is O(queued).
   */
  backlogMs(beforeMs?: number): number {
    // The exact scan is for short queues; with a long one the total is a close enough (conservative) answer.
    if (beforeMs !== undefined) {
      let queued = 0;
      for (const vq of this.#queues.values()) queued += vq.queue.size;
      if (queued > MAX_BACKLOG_SCAN) return this.backlogMs();
    }
    let ms = 0;
    for (const vq of this.#queues.values()) {
      let rows = vq.queue.rows;
      if (rows === 0) continue;
      if (beforeMs !== undefined) {
        rows = 0;
        for (const p of vq.queue.values()) if (p.deadlineAtMs <= beforeMs) rows += p.rows;
        if (rows === 0) continue;
      }
      const b = Math.max(1, Math.min(vq.knobs.maxBatch, rows));
      ms += (rows / b) * this.#profiles.serviceMs(vq.model, vq.variant, b, 'p50');
    }
    return ms / Math.max(1, this.#pool.readySlots);
  }

  get inflightBatches(): number {
    return this.#inflight;
  }

  /** Enqueues a request; resolves with its outputs, rejects with a SlogateError. */
  submit(req: SubmitRequest): Promise<SubmitResult> {
    const vq = this.#queue(req.model, req.variant);
    const now = this.#clock.now();
    if (this.#split !== undefined) this.#shadowGate.noteArrival(now);
    if (vq.closing)
      return Promise.reject(
        new SlogateError('SLOGATE_ERR_VARIANT_REMOVED', `${req.model}/${req.variant} is being removed`, {
          retryAfterMs: 100,
        }),
      );
    if (!this.#accepting)
      return Promise.reject(
        new SlogateError('SLOGATE_ERR_SHUTTING_DOWN', 'the server is shutting down', { retryAfterMs: 1000 }),
      );
    if (req.signal?.aborted === true)
      return Promise.reject(new SlogateError('SLOGATE_ERR_CANCELLED', 'the client went away'));
    if (vq.queue.rows + req.rows > this.#maxQueueRows) {
      vq.rejected++;
      this.#events.onDrop?.(req.model, req.variant, 'SLOGATE_ERR_QUEUE_FULL');
      return Promise.reject(
        new SlogateError(
          'SLOGATE_ERR_QUEUE_FULL',
          `queue of ${req.model}/${req.variant} is full (${vq.queue.rows} rows queued, limit ${this.#maxQueueRows})`,
          {
            retryAfterMs: this.#drainEstimateMs(vq),
          },
        ),
      );
    }
    return new Promise<SubmitResult>((resolve, reject) => {
      const item: Pending = {
        req,
        deadlineAtMs: req.deadlineAtMs,
        priority: req.priority,
        seq: this.#seq++,
        rows: req.rows,
        heapIndex: -1,
        enqueuedMs: now,
        resolve,
        reject,
        onAbort: undefined,
        wait: undefined,
      };
      const tr = this.#tracing;
      if (tr !== undefined)
        item.wait = tr.queued(req.trace ?? tr.current(), {
          model: req.model,
          variant: req.variant,
          rows: req.rows,
          priority: req.priority,
          tag: req.tag,
        });
      if (req.signal !== undefined) {
        const onAbort = () => {
          if (vq.queue.remove(item)) {
            this.#events.onDrop?.(req.model, req.variant, 'SLOGATE_ERR_CANCELLED');
            this.#traceDrop(item, 'SLOGATE_ERR_CANCELLED');
            reject(new SlogateError('SLOGATE_ERR_CANCELLED', 'the client went away'));
            this.#notifyIdle();
          }
        };
        item.onAbort = onAbort;
        req.signal.addEventListener('abort', onAbort, { once: true });
      }
      vq.queue.push(item);
      this.#pumpAfterTurn();
    });
  }

  /**
   * A submit's dispatch waits for the rest of the event-loop turn: every request read in the same turn goes out in
   * one batch, instead of the first alone and the rest after it, so fewer batches pay the model's fixed cost per
   * run. A clock without afterTurn (tests, the simulator) dispatches at once.
   */
  #pumpAfterTurn(): void {
    const afterTurn = this.#clock.afterTurn;
    if (afterTurn === undefined) {
      this.pump();
      return;
    }
    if (this.#pumpDue) return;
    this.#pumpDue = true;
    afterTurn.call(this.#clock, () => {
      this.#pumpDue = false;
      this.pump();
    });
  }

  #drainEstimateMs(vq: VariantQueue): number {
    const b = Math.max(1, vq.knobs.maxBatch);
    const per = this.#profiles.serviceMs(vq.model, vq.variant, b, 'p50');
    const slots = Math.max(1, this.#pool.readySlots);
    return Math.max(100, Math.ceil(((vq.queue.rows / b) * per) / slots));
  }

  /** Dispatches every batch that should go now; arms a timer for the next decision point. */
  pump(): void {
    if (this.#pumping) {
      this.#repump = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#repump = false;
        this.#pumpOnce();
      } while (this.#repump);
    } finally {
      this.#pumping = false;
    }
  }

  #pumpOnce(): void {
    let now = this.#clock.now();
    let wakeAt = Number.POSITIVE_INFINITY;
    for (;;) {
      for (const vq of this.#queues.values()) this.#dropExpired(vq, now);
      if (this.#pool.freeSlots === 0) break;
      let best: VariantQueue | undefined;
      let bestRows = 0;
      let bestUrgency = Number.POSITIVE_INFINITY;
      wakeAt = Number.POSITIVE_INFINITY;
      for (const vq of this.#queues.values()) {
        const head = vq.queue.peek();
        if (head === undefined) continue;
        const svc = (rows: number) => this.#profiles.serviceMs(vq.model, vq.variant, rows, 'p99', now);
        const plan = planBatch(
          queueState(vq, head),
          vq.batchable ? vq.knobs : { maxBatch: head.rows, maxQueueDelayMs: 0 },
          now,
          svc,
        );
        if (plan.action === 'wait') {
          wakeAt = Math.min(wakeAt, plan.untilMs);
          continue;
        }
        // Across variants: the batch whose head must start soonest goes first (least laxity).
        const urgency = head.deadlineAtMs - svc(plan.rows);
        if (urgency < bestUrgency) {
          best = vq;
          bestRows = plan.rows;
          bestUrgency = urgency;
        }
      }
      if (best === undefined) break;
      this.#dispatch(best, bestRows, now);
      // An inline batch has run by now.
      now = this.#clock.now();
    }
    // Wake up for the next planned send, or when a queued head would become hopeless (to answer it promptly).
    for (const vq of this.#queues.values()) {
      const head = vq.queue.peek();
      if (head !== undefined)
        wakeAt = Math.min(
          wakeAt,
          head.deadlineAtMs - this.#profiles.serviceMs(vq.model, vq.variant, head.rows, 'p50', now),
        );
    }
    this.#arm(wakeAt, now);
    this.#notifyIdle();
  }

  #arm(atMs: number, now: number): void {
    if (atMs === Number.POSITIVE_INFINITY) return;
    if (this.#timer !== undefined && this.#timerAt <= atMs) return;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timerAt = atMs;
    // A small slack so the timer fires after (not just before) the moment it waits for.
    this.#timer = this.#clock.setTimer(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(0, atMs - now) + 0.05,
    );
  }

  #dropExpired(vq: VariantQueue, now: number): void {
    for (;;) {
      const head = vq.queue.peek();
      if (head === undefined) return;
      const alone = this.#profiles.serviceMs(vq.model, vq.variant, head.rows, 'p50', now);
      if (now + alone <= head.deadlineAtMs) return;
      vq.queue.shift();
      const fb = head.req.fallbackVariant;
      const fq = fb === undefined || fb === vq.variant ? undefined : this.#byName.get(vq.model, fb);
      if (
        fq !== undefined &&
        !fq.closing &&
        now + this.#profiles.serviceMs(fq.model, fq.variant, head.rows, 'p50', now) <= head.deadlineAtMs
      ) {
        fq.queue.push(head);
        this.#events.onMove?.(vq.model, vq.variant, fq.variant, 'deadline', 1);
        continue;
      }
      vq.dropped++;
      this.#detach(head);
      this.#traceDrop(head, 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
      this.#events.onDrop?.(vq.model, vq.variant, 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
      head.reject(
        withVariant(
          vq.variant,
          new SlogateError(
            'SLOGATE_ERR_DEADLINE_UNREACHABLE',
            `request to ${vq.model}/${vq.variant} can no longer finish before its deadline (needs ~${alone.toFixed(2)} ms, ${Math.max(0, head.deadlineAtMs - now).toFixed(2)} ms left)`,
            {
              retryAfterMs: 1000,
            },
          ),
        ),
      );
    }
  }

  #traceDrop(item: Pending, code: string): void {
    if (item.wait !== undefined) this.#tracing?.dropped(item.wait, code);
    item.wait = undefined;
  }

  #detach(item: Pending): void {
    if (item.onAbort !== undefined) item.req.signal?.removeEventListener('abort', item.onAbort);
    item.onAbort = undefined;
  }

  #take(vq: VariantQueue, rows: number): Pending[] {
    const head = vq.queue.shift() as Pending;
    const batch = [head];
    if (!vq.batchable) return batch;
    let total = head.rows;
    const skipped: Pending[] = [];
    while (total < rows && skipped.length < MAX_SHAPE_SKIPS) {
      const next = vq.queue.peek();
      if (next === undefined || total + next.rows > rows) break;
      vq.queue.shift();
      if (!sameTrailingShapes(next.req.inputs, head.req.inputs)) {
        skipped.push(next);
        continue;
      }
      batch.push(next);
      total += next.rows;
    }
    for (const s of skipped) vq.queue.push(s);
    return batch;
  }

  /**
   * A batch's predicted time on its replica, without the hop (a local replica runs it inline when small); unknown for
   * a variant not yet profiled, and withheld during a rollout, whose evidence compares revisions on the same path.
   */
  #expectedComputeMs(vq: VariantQueue, rows: number): number | undefined {
    const now = this.#clock.now();
    if (!this.#profiles.hasPoints(vq.model, vq.variant, now) || this.#split?.get(vq.model, vq.variant) !== undefined)
      return undefined;
    return Math.max(0, this.#profiles.serviceMs(vq.model, vq.variant, rows, 'p50', now) - this.#profiles.hopMs);
  }

  #dispatch(vq: VariantQueue, rows: number, now: number): void {
    let batch = this.#take(vq, rows);
    let batchRows = 0;
    for (const p of batch) {
      this.#detach(p);
      batchRows += p.rows;
      this.#events.onQueued?.(vq.model, vq.variant, now - p.enqueuedMs);
    }
    vq.batches++;
    vq.rowsServed += batchRows;
    vq.running++;
    this.#inflight++;
    const wanted = unionOutputs(batch);
    const candidate = this.#split?.pickCanary(vq.model, vq.variant);
    const buildFor = (revision: string | undefined) => (): BatchTask => {
      const first = batch[0] as Pending;
      const inputs = first.req.inputs.map((t, i) => {
        const data =
          batch.length === 1
            ? t.data
            : stackRows(
                t.datatype,
                batch.map((p) => (p.req.inputs[i] as Tensor).data),
              );
        return {
          name: t.name,
          datatype: t.datatype,
          shape: batch.length === 1 ? [...t.shape] : [batchRows, ...t.shape.slice(1)],
          data,
        };
      });
      // Stacked buffers belong to this batch alone: they may move to the worker. A lone request's must stay for a retry.
      return {
        model: vq.model,
        variant: vq.variant,
        inputs,
        outputs: wanted,
        rows: batchRows,
        transfer: batch.length > 1,
        deadlineAtMs: batch.reduce((d, p) => Math.min(d, p.deadlineAtMs), Number.POSITIVE_INFINITY),
        revision,
        expectedMs: this.#expectedComputeMs(vq, batchRows),
      };
    };
    const tr = this.#tracing;
    let span: TraceSpan | undefined;
    if (tr !== undefined)
      this.#guard('tracing', () => {
        span = tr.dispatched(
          { model: vq.model, variant: vq.variant, rows: batchRows, requests: batch.length },
          batch.map((p) => p.wait),
        );
      });
    const t0 = this.#clock.now();
    let build = buildFor(candidate);
    if (candidate === undefined) {
      const task = build();
      if (this.#ranNow(vq, batch, task, batchRows, t0, span)) return;
      build = firstThen(task, build);
    }
    const limits = this.#limits(
      vq,
      () => batch,
      (kept) => {
        batch = kept;
        batchRows = kept.reduce((n, p) => n + p.rows, 0);
      },
    );
    this.#pool.run(build, limits).then(
      (outcome) =>
        this.#completed(vq, batch, outcome, batchRows, t0, span, candidate === undefined ? 'active' : 'candidate'),
      (err: unknown) =>
        candidate === undefined
          ? this.#failed(vq, batch, err, span)
          : this.#candidateFailed(vq, () => batch, err, buildFor(undefined), span),
    );
  }

  /** Runs the batch now when it runs inline (ReplicaPool.runNow) and answers it; false leaves it to the pool's run. */
  #ranNow(
    vq: VariantQueue,
    batch: Pending[],
    task: BatchTask,
    batchRows: number,
    t0: number,
    span: TraceSpan | undefined,
  ): boolean {
    let outcome: BatchOutcome | undefined;
    try {
      outcome = this.#pool.runNow(task);
    } catch (err) {
      this.#failed(vq, batch, err, span);
      return true;
    }
    if (outcome === undefined) return false;
    this.#completed(vq, batch, outcome, batchRows, t0, span, 'active');
    return true;
  }

  /**
   * A canary batch failed on the candidate: the failure is evidence for the rollout, never the clients' problem. The
   * batch runs again on the active revision, queued on a replica even if every slot is busy (its slot was taken).
   */
  #candidateFailed(
    vq: VariantQueue,
    current: () => Pending[],
    err: unknown,
    build: () => BatchTask,
    span: TraceSpan | undefined,
  ): void {
    const batch = current();
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    const failure = toSlogateError(err);
    const code = failure.code;
    // A shutdown is nobody's fault: not evidence against the candidate.
    if (code !== 'SLOGATE_ERR_SHUTTING_DOWN')
      this.#guard('traffic split', () =>
        this.#split?.reportBatch({
          model: vq.model,
          variant: vq.variant,
          role: 'candidate',
          rows,
          requests: batch.length,
          computeMs: undefined,
          error: code,
          detail: failureDetail(failure.message),
        }),
      );
    const r = this.#pool.pick() ?? this.#pool.replicas.find((x) => x.state === 'ready');
    if (r === undefined || batch.length === 0) {
      this.#failed(vq, batch, err, span);
      return;
    }
    const t0 = this.#clock.now();
    this.#pool.runOn(r, build()).then(
      (outcome) => this.#completed(vq, batch, outcome, rows, t0, span, 'active'),
      (err2: unknown) => this.#failed(vq, batch, err2, span),
    );
  }

  /**
   * Runs a copy of an active batch on the candidate when a slot is free, nothing waits and the gate expects few live
   * arrivals during it (shadow-gate.ts); otherwise the shadow run is dropped (counted). The answers are compared row
   * by row.
   */
  #shadow(vq: VariantQueue, batch: Pending[], active: BatchOutcome, activeComputeMs: number, rows: number): void {
    const split = this.#split;
    const revision = split?.pickShadow(vq.model, vq.variant);
    if (split === undefined || revision === undefined) return;
    const base = { model: vq.model, variant: vq.variant, rows, activeComputeMs };
    const first = active.outputs[0];
    let waiting = false;
    for (const q of this.#queues.values()) if (q.queue.size > 0) waiting = true;
    const shadowMs = this.#profiles.serviceMs(vq.model, vq.variant, rows, 'p50');
    if (
      first === undefined ||
      waiting ||
      this.#pool.freeSlots === 0 ||
      !this.#shadowGate.admits(this.#clock.now(), shadowMs)
    ) {
      split.reportShadow({ ...base, outcome: 'dropped', agreedRows: 0, computeMs: undefined });
      return;
    }
    const head = batch[0] as Pending;
    const inputs = head.req.inputs.map((t, i) => ({
      name: t.name,
      datatype: t.datatype,
      shape: batch.length === 1 ? [...t.shape] : [rows, ...t.shape.slice(1)],
      data:
        batch.length === 1
          ? t.data
          : stackRows(
              t.datatype,
              batch.map((p) => (p.req.inputs[i] as Tensor).data),
            ),
    }));
    const task: BatchTask = {
      model: vq.model,
      variant: vq.variant,
      inputs,
      outputs: [first.name],
      rows,
      // Kept, not moved: the pool retries a batch whose replica failed with the same task.
      transfer: false,
      revision,
    };
    const t0 = this.#clock.now();
    this.#pool
      .run(() => task)
      .then(
        (out) => {
          const o = out.outputs.find((x) => x.name === first.name);
          const agreed = o === undefined ? 0 : agreeingRows(first.data as Float32Array, o.data as Float32Array, rows);
          const computeMs = Math.min(this.#clock.now() - t0, out.workerMs + this.#profiles.hopMs);
          split.reportShadow({ ...base, outcome: 'compared', agreedRows: agreed, computeMs });
        },
        (err: unknown) =>
          split.reportShadow({
            ...base,
            outcome: 'compared',
            agreedRows: 0,
            computeMs: undefined,
            error: toSlogateError(err).code,
            detail: failureDetail(toSlogateError(err).message),
          }),
      );
  }

  /**
   * The batch's time limit, when batches have one: each attempt gets batchTimeoutMs() from its start. After a timeout,
   * requests whose deadline has passed are answered with BATCH_TIMEOUT, and only the others are retried.
   */
  #limits(vq: VariantQueue, current: () => Pending[], keep: (kept: Pending[]) => void): RunOptions {
    const knobs = this.#batchTimeout;
    if (knobs === undefined) return {};
    return {
      timeoutMs: () => {
        const batch = current();
        const rows = batch.reduce((n, p) => n + p.rows, 0);
        const latestDeadlineAtMs = batch.reduce((t, p) => Math.max(t, p.deadlineAtMs), Number.NEGATIVE_INFINITY);
        const nowMs = this.#clock.now();
        const p99Ms = this.#profiles.serviceMs(vq.model, vq.variant, rows, 'p99', nowMs);
        return batchTimeoutMs({ nowMs, latestDeadlineAtMs, p99Ms }, knobs);
      },
      beforeRetry: (fault: ReplicaFault) => {
        if (!(fault instanceof BatchTimeoutFault)) return true;
        const now = this.#clock.now();
        const kept: Pending[] = [];
        for (const p of current()) {
          if (p.deadlineAtMs > now) kept.push(p);
          else
            p.reject(
              withVariant(
                vq.variant,
                new SlogateError(
                  'SLOGATE_ERR_BATCH_TIMEOUT',
                  `${fault.message}; the request's deadline has passed, so it is not retried`,
                  { retryAfterMs: 1000 },
                ),
              ),
            );
        }
        keep(kept);
        return kept.length > 0;
      },
    };
  }

  /**
   * A batch came back: observers learn from it, then every request is answered. Whatever throws on the way is
   * contained: observers are skipped with a log line, and requests the delivery did not reach get INTERNAL.
   */
  #completed(
    vq: VariantQueue,
    batch: Pending[],
    outcome: BatchOutcome,
    batchRows: number,
    t0: number,
    span: TraceSpan | undefined,
    role: RevisionRole = 'active',
  ): void {
    try {
      const serviceMs = this.#clock.now() - t0;
      // Profiles learn from the replica's own busy time (plus the usual hop), not from how long the main thread took
      // to read the result: event-loop delay is the gateway's overhead, not the variant's service time. An inline
      // batch had no hop, but profiles describe the worker's path, which larger batches take.
      const hopMs = this.#profiles.hopMs;
      const computeMs =
        outcome.inline === true ? outcome.workerMs + hopMs : Math.min(serviceMs, outcome.workerMs + hopMs);
      this.#guard('latency profile', () => this.#profiles.observe(vq.model, vq.variant, batchRows, computeMs));
      this.#events.onBatch?.({
        model: vq.model,
        variant: vq.variant,
        rows: batchRows,
        requests: batch.length,
        serviceMs,
        computeMs,
        inferMs: outcome.inferMs,
        replicaId: outcome.replicaId,
        inline: outcome.inline === true,
      });
      if (this.#split !== undefined)
        this.#guard('traffic split', () =>
          this.#split?.reportBatch({
            model: vq.model,
            variant: vq.variant,
            role,
            rows: batchRows,
            requests: batch.length,
            computeMs,
          }),
        );
      const tr = this.#tracing;
      if (span !== undefined && tr !== undefined)
        this.#guard('tracing', () => {
          const provider = this.#pool.replicas.find((r) => r.id === outcome.replicaId)?.provider;
          tr.ran(span, { replicaId: outcome.replicaId, provider, inferMs: outcome.inferMs, computeMs });
        });
      this.#deliver(vq, batch, outcome.outputs, {
        serviceMs,
        computeMs,
        inferMs: outcome.inferMs,
        batchRows,
        replicaId: outcome.replicaId,
        t0,
        role,
      });
      if (role === 'active' && this.#split !== undefined)
        this.#guard('shadow', () => this.#shadow(vq, batch, outcome, computeMs, batchRows));
    } catch (err) {
      this.#logger.error(
        { err, variant: variantKey(vq.model, vq.variant) },
        'scheduler: a batch could not be delivered',
      );
      // Requests already answered ignore this (a promise settles once).
      const e = withVariant(vq.variant, new SlogateError('SLOGATE_ERR_INTERNAL', 'the batch could not be delivered'));
      for (const p of batch) p.reject(e);
    } finally {
      vq.running--;
      this.#inflight--;
      this.#notifyIdle();
    }
  }

  #failed(vq: VariantQueue, batch: Pending[], err: unknown, span: TraceSpan | undefined): void {
    const e = withVariant(vq.variant, toSlogateError(err));
    const tr = this.#tracing;
    if (span !== undefined && tr !== undefined)
      this.#guard('tracing', () => tr.ran(span, { error: { code: e.code, message: e.message } }));
    for (const p of batch) p.reject(e);
    vq.running--;
    this.#inflight--;
    this.#notifyIdle();
  }

  /** Runs an observer; its failure is logged and skipped. */
  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#observerFailed(what, err);
    }
  }

  #observerFailed(what: string, err: unknown): void {
    this.#logger.error({ err, observer: what }, `scheduler: ${what} failed; skipped`);
  }

  #deliver(
    vq: VariantQueue,
    batch: Pending[],
    outputs: readonly { name: string; datatype: Tensor['datatype']; shape: number[]; data: TensorStorage }[],
    info: {
      serviceMs: number;
      computeMs: number;
      inferMs: number;
      batchRows: number;
      replicaId: string;
      t0: number;
      role: RevisionRole;
    },
  ): void {
    const split = new Map<string, TensorStorage[]>();
    if (batch.length > 1) {
      const rows = batch.map((p) => p.rows);
      for (const o of outputs) split.set(o.name, splitRows(o.data, rowSize(o.shape), rows));
    }
    batch.forEach((p, i) => {
      const names = p.req.outputs ?? outputs.map((o) => o.name);
      const mine: Tensor[] = [];
      for (const name of names) {
        const o = outputs.find((x) => x.name === name);
        if (o === undefined) {
          p.reject(new SlogateError('SLOGATE_ERR_INTERNAL', `model returned no output '${name}'`));
          return;
        }
        const data = batch.length > 1 ? ((split.get(name) as TensorStorage[])[i] as TensorStorage) : o.data;
        const shape = batch.length > 1 ? [p.rows, ...o.shape.slice(1)] : o.shape;
        mine.push({ name, datatype: o.datatype, shape, data });
      }
      p.resolve({
        outputs: mine,
        model: vq.model,
        variant: vq.variant,
        queueMs: info.t0 - p.enqueuedMs,
        serviceMs: info.serviceMs,
        computeMs: info.computeMs,
        inferMs: info.inferMs,
        batchRows: info.batchRows,
        replicaId: info.replicaId,
        revision: info.role,
      });
    });
  }

  stats(): VariantQueueStats[] {
    return [...this.#queues.values()].map((vq) => ({
      model: vq.model,
      variant: vq.variant,
      knobs: vq.knobs,
      queued: vq.queue.size,
      queuedRows: vq.queue.rows,
      batches: vq.batches,
      rowsServed: vq.rowsServed,
      dropped: vq.dropped,
      rejected: vq.rejected,
    }));
  }

  /** Stops admitting; resolves when every queued and running request is answered, or rejects what is left after timeoutMs. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.#accepting = false;
    this.pump();
    if (this.#idle()) return true;
    const done = await new Promise<boolean>((resolve) => {
      const t = this.#clock.setTimer(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        this.#clock.clearTimer(t);
        resolve(true);
      });
    });
    if (!done) {
      for (const vq of this.#queues.values()) {
        for (let p = vq.queue.shift(); p !== undefined; p = vq.queue.shift()) {
          this.#detach(p);
          this.#events.onDrop?.(vq.model, vq.variant, 'SLOGATE_ERR_SHUTTING_DOWN');
          this.#traceDrop(p, 'SLOGATE_ERR_SHUTTING_DOWN');
          p.reject(
            new SlogateError('SLOGATE_ERR_SHUTTING_DOWN', 'the server shut down before this request could run', {
              retryAfterMs: 1000,
            }),
          );
        }
      }
    }
    return done;
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  #idle(): boolean {
    if (this.#inflight > 0) return false;
    for (const vq of this.#queues.values()) if (vq.queue.size > 0) return false;
    return true;
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#idle()) return;
    const ws = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of ws) w();
  }

  close(): void {
    this.#accepting = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}

function queueState(vq: VariantQueue, head: Pending): QueueState {
  return {
    rows: vq.queue.rows,
    headRows: head.rows,
    headArrivalMs: head.req.arrivalMs,
    headDeadlineMs: head.deadlineAtMs,
  };
}

/** Whether every input has the same trailing dimensions: requests stack only with requests of the same shape. */
function sameTrailingShapes(a: readonly Tensor[], b: readonly Tensor[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = (a[i] as Tensor).shape;
    const y = (b[i] as Tensor).shape;
    if (x.length !== y.length) return false;
    for (let d = 1; d < x.length; d++) if (x[d] !== y[d]) return false;
  }
  return true;
}

function unionOutputs(batch: readonly Pending[]): string[] | undefined {
  const names = new Set<string>();
  for (const p of batch) {
    if (p.req.outputs === undefined) return undefined;
    for (const n of p.req.outputs) names.add(n);
  }
  return [...names];
}

function withVariant(variant: string, e: SlogateError): SlogateError {
  e.variant = variant;
  return e;
}

/** The events with every callback guarded: an observer that throws (a metric given NaN) is reported and skipped. */
function guardEvents(events: SchedulerEvents, failed: (what: string, err: unknown) => void): SchedulerEvents {
  const guarded: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(events) as [string, ((...args: unknown[]) => void) | undefined][]) {
    if (typeof fn !== 'function') continue;
    guarded[name] = (...args: unknown[]) => {
      try {
        fn(...args);
      } catch (err) {
        failed(name, err);
      }
    };
  }
  return guarded as SchedulerEvents;
}

/** A candidate failure's message as the rollout keeps it: bounded. */
const FAILURE_DETAIL_CHARS = 400;

function failureDetail(message: string): string {
  return message.length <= FAILURE_DETAIL_CHARS ? message : `${message.slice(0, FAILURE_DETAIL_CHARS)}...`;
}

/** `task` for the first attempt, then a fresh build for each retry (the first attempt may have moved its buffers). */
function firstThen(task: BatchTask, build: () => BatchTask): () => BatchTask {
  let first: BatchTask | undefined = task;
  return () => {
    const t = first ?? build();
    first = undefined;
    return t;
  };
}
