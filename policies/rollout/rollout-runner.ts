// Runs the rollouts: a candidate that passed its gates is shadowed, then serves the canary steps, then is promoted,
// each move decided by decideRollout() on a tick; a crossed threshold rolls it back at once. Applies decisions to the
// runtime's traffic split, the model store (revision state, history) and the metrics; keeps a bounded history.
import type { Clock, TimerHandle } from '../../core/clock.js';
import { SlogateError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { RolloutPolicy } from '../../core/rollout-config.js';
import { variantKey } from '../../core/types.js';
import type { LatencyProfiles, ProfilePoint } from '../../runtime/latency-profile.js';
import type { ModelStore } from '../../runtime/model-store.js';
import type { CandidateFile, RuntimeRevisions } from '../../runtime/revisions.js';
import type { TrafficSplit } from '../../runtime/traffic-split.js';
import { decideRollout, type RolloutDecision, type RolloutSnapshot } from './decide-rollout.js';
import { RolloutEvidence } from './evidence.js';

/** How often rollouts are judged. */
export const ROLLOUT_TICK_MS = 250;
/** Finished rollouts kept for the admin API and the status page. */
export const ROLLOUT_HISTORY = 20;
/** Events kept per rollout. */
const EVENTS_PER_ROLLOUT = 50;

export type RolloutEvent = 'started' | 'advanced' | 'promoted' | 'rolled-back' | 'aborted';
export type RolloutState = 'running' | 'promoting' | 'promoted' | 'rolled-back' | 'aborted';

export interface RolloutRuntime {
  readonly split: TrafficSplit;
  readonly revisions: RuntimeRevisions;
  readonly profiles: LatencyProfiles;
}

export interface RolloutRunnerDeps {
  readonly runtime: RolloutRuntime;
  readonly store: ModelStore;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Wall clock for the recorded times (ms since the epoch). */
  readonly wallNow?: () => number;
  /** The variants that may roll out: their series exist at zero before the first rollout (rate() needs them). */
  readonly variants?: readonly { model: string; variant: string }[];
}

export interface RolloutStart {
  readonly candidate: CandidateFile;
  readonly policy: RolloutPolicy;
  readonly previous: string | undefined;
  readonly accuracy: number | undefined;
  /** The gates' latency sweep of both revisions: the engine plans with the slower while the rollout runs. */
  readonly candidatePoints: readonly ProfilePoint[] | undefined;
  readonly activePoints: readonly ProfilePoint[] | undefined;
}

interface Rollout extends RolloutStart {
  state: RolloutState;
  phase: 'shadow' | 'canary';
  step: number;
  phaseStartedMs: number;
  paused: boolean;
  readonly evidence: RolloutEvidence;
  readonly startedAt: string;
  finishedAt?: string;
  reason: string;
  readonly events: { at: string; event: RolloutEvent | 'paused' | 'resumed'; reason: string }[];
}

export class RolloutRunner {
  readonly #d: RolloutRunnerDeps;
  readonly #wallNow: () => number;
  /** Running rollouts by variant key. */
  readonly #running = new Map<string, Rollout>();
  readonly #history: Rollout[] = [];
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: RolloutRunnerDeps) {
    this.#d = deps;
    this.#wallNow = deps.wallNow ?? Date.now;
    deps.runtime.split.listen({
      onBatch: (b) => this.#running.get(variantKey(b.model, b.variant))?.evidence.onBatch(b),
      onShadow: (s) => {
        const m = deps.metrics.shadowRequests;
        if (s.outcome === 'dropped') m.labels(s.model, s.variant, 'dropped').inc(s.rows);
        else {
          m.labels(s.model, s.variant, 'compared').inc(s.rows);
          m.labels(s.model, s.variant, 'agreed').inc(s.agreedRows);
        }
        this.#running.get(variantKey(s.model, s.variant))?.evidence.onShadow(s);
      },
    });
    const variants = deps.variants ?? [];
    for (const { model, variant } of variants) {
      for (const e of ['started', 'advanced', 'promoted', 'rolled-back', 'aborted'])
        deps.metrics.rolloutEvents.labels(model, variant, e).inc(0);
      for (const o of ['compared', 'agreed', 'dropped']) deps.metrics.shadowRequests.labels(model, variant, o).inc(0);
    }
    deps.metrics.onCollect(deps.metrics.rolloutPhase, () => {
      deps.metrics.rolloutPhase.reset();
      for (const { model, variant } of variants) deps.metrics.rolloutPhase.labels(model, variant).set(0);
      for (const r of this.#running.values())
        deps.metrics.rolloutPhase.labels(r.candidate.model, r.candidate.variant).set(r.phase === 'shadow' ? 1 : 2);
    });
    deps.metrics.onCollect(deps.metrics.rolloutShare, () => {
      deps.metrics.rolloutShare.reset();
      for (const { model, variant } of variants) {
        deps.metrics.rolloutShare.labels(model, variant, 'active').set(1);
        deps.metrics.rolloutShare.labels(model, variant, 'candidate').set(0);
      }
      for (const r of this.#running.values()) {
        const share = this.#canaryShare(r);
        deps.metrics.rolloutShare.labels(r.candidate.model, r.candidate.variant, 'candidate').set(share);
        deps.metrics.rolloutShare.labels(r.candidate.model, r.candidate.variant, 'active').set(1 - share);
      }
    });
  }

  /** Starts the rollout of a candidate already loaded on every replica (its load gate passed). */
  start(s: RolloutStart): void {
    const { model, variant, revision } = s.candidate;
    const key = variantKey(model, variant);
    if (this.#running.has(key))
      throw new SlogateError('SLOGATE_ERR_DEPLOY_IN_PROGRESS', `${key}: a rollout is already running`);
    const shadow = s.policy.shadowPercent > 0;
    const r: Rollout = {
      ...s,
      state: 'running',
      phase: shadow ? 'shadow' : 'canary',
      step: 0,
      phaseStartedMs: this.#d.clock.now(),
      paused: false,
      evidence: new RolloutEvidence(s.policy.minRequests),
      startedAt: this.#wall(),
      reason: 'started',
      events: [],
    };
    this.#d.store.markRollout(model, variant, revision, 'canary', {
      who: 'slogate',
      why: `rollout: ${shadow ? `shadow ${s.policy.shadowPercent}%` : `canary ${s.policy.steps[0]}%`}`,
    });
    this.#running.set(key, r);
    const slower = slowerOf(s.candidatePoints, s.activePoints);
    if (slower !== undefined) this.#d.runtime.profiles.replacePoints(model, variant, slower);
    this.#applyShares(r);
    this.#event(
      r,
      'started',
      `${r.phase === 'shadow' ? `shadow ${s.policy.shadowPercent}%` : `canary ${s.policy.steps[0]}%`} of ${revision}`,
    );
    this.#arm();
  }

  /** Judges every running rollout once (the timer calls it; tests call it on the manual clock). */
  async tick(): Promise<void> {
    for (const r of [...this.#running.values()]) {
      if (r.state !== 'running') continue;
      const d = decideRollout(this.#snapshot(r));
      r.reason = d.reason;
      await this.#apply(r, d);
    }
  }

  pause(model: string, variant: string, paused: boolean): void {
    const r = this.#get(model, variant);
    if (r.paused === paused) return;
    r.paused = paused;
    this.#event(r, paused ? 'paused' : 'resumed', 'by the admin API');
  }

  /** Rolls the candidate back now. */
  async abort(model: string, variant: string, who: string): Promise<void> {
    await this.#rollBack(this.#get(model, variant), 'aborted', `aborted by ${who}`);
  }

  /** Running rollouts (with the snapshot their next decision is made from) and the finished ones, newest first. */
  list() {
    const view = (r: Rollout) => ({
      model: r.candidate.model,
      variant: r.candidate.variant,
      revision: r.candidate.revision,
      previous: r.previous ?? null,
      state: r.state,
      phase: r.phase,
      step: r.step,
      canaryPercent: Math.round(this.#canaryShare(r) * 1000) / 10,
      shadowPercent: r.phase === 'shadow' ? r.policy.shadowPercent : 0,
      paused: r.paused,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt ?? null,
      reason: r.reason,
      policy: r.policy,
      events: r.events,
    });
    return {
      running: [...this.#running.values()].map((r) => {
        const snapshot = this.#snapshot(r);
        return { ...view(r), next: decideRollout(snapshot), snapshot };
      }),
      finished: [...this.#history].reverse().map(view),
    };
  }

  /** For the engine's decision reason: the variant's rollout and the profile it plans with. */
  note(model: string, variant: string): string | undefined {
    const r = this.#running.get(variantKey(model, variant));
    if (r === undefined) return undefined;
    const share = r.phase === 'shadow' ? `shadow ${r.policy.shadowPercent}%` : `${r.policy.steps[r.step]}% canary`;
    const c = r.candidatePoints?.at(-1);
    const a = r.activePoints?.find((p) => p.rows === c?.rows);
    // In shadow the variant's replicas also run that share of its batches on the candidate: the engine counts it.
    const extra = r.phase === 'shadow' ? `, ${r.policy.shadowPercent}% more work on its replicas` : '';
    if (c === undefined || a === undefined) return `${variant} at ${share}${extra}`;
    const slower = c.p99Ms >= a.p99Ms ? `the candidate's ${c.p99Ms.toFixed(1)}` : `the active's ${a.p99Ms.toFixed(1)}`;
    return `${variant} at ${share}: planning with ${slower} ms at batch ${c.rows}${extra}`;
  }

  /** One row per running rollout, then the finished ones, for the status page: shares, evidence, what comes next. */
  statusRows(): {
    variant: string;
    revision: string;
    state: string;
    share: string;
    evidence: string;
    reason: string;
  }[] {
    const { running, finished } = this.list();
    const row = (r: (typeof finished)[number], evidence: string, reason: string) => ({
      variant: variantKey(r.model, r.variant),
      revision: r.revision.slice(0, 19),
      state: r.paused ? 'paused' : r.state,
      share: r.phase === 'shadow' ? `shadow ${r.shadowPercent}%` : `canary ${r.canaryPercent}%`,
      evidence,
      reason,
    });
    return [
      ...running.map((r) => {
        const { candidate: c, shadow: s } = r.snapshot;
        const ev = `${c.requests} requests, ${c.errors} errors${r.phase === 'shadow' ? `; ${s.agreedRows}/${s.comparedRows} rows agree, ${s.dropped} dropped` : ''}`;
        return row(r, ev, `${r.next.action}: ${r.next.reason}`);
      }),
      ...finished.map((r) => row(r, '', r.reason)),
    ];
  }

  /** Whether the variant is in a rollout (a second deploy waits for it to finish). */
  running(model: string, variant: string): boolean {
    return this.#running.has(variantKey(model, variant));
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#d.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed || this.#running.size === 0) return;
    this.#timer = this.#d.clock.setTimer(() => {
      this.#timer = undefined;
      this.tick()
        .catch((err: unknown) => this.#d.logger.error({ err }, 'rollout tick failed'))
        .finally(() => this.#arm());
    }, ROLLOUT_TICK_MS);
  }

  #snapshot(r: Rollout): RolloutSnapshot {
    return {
      nowMs: this.#d.clock.now(),
      policy: r.policy,
      phase: r.phase,
      step: r.step,
      phaseStartedMs: r.phaseStartedMs,
      paused: r.paused,
      candidate: r.evidence.candidate(),
      active: r.evidence.active(),
      shadow: r.evidence.shadow(),
      unservable: r.evidence.unservable(),
    };
  }

  async #apply(r: Rollout, d: RolloutDecision): Promise<void> {
    switch (d.action) {
      case 'wait':
        return;
      case 'roll-back':
        return this.#rollBack(r, 'rolled-back', d.reason);
      case 'advance':
        if (r.phase === 'shadow') r.phase = 'canary';
        else r.step++;
        r.phaseStartedMs = this.#d.clock.now();
        r.evidence.reset();
        this.#applyShares(r);
        this.#event(r, 'advanced', `${d.reason}; now canary ${r.policy.steps[r.step]}%`);
        return;
      case 'promote':
        return this.#promote(r, d.reason);
    }
  }

  async #promote(r: Rollout, reason: string): Promise<void> {
    const { candidate: c } = r;
    r.state = 'promoting';
    try {
      await this.#d.runtime.revisions.activate(c, r.accuracy, r.candidatePoints);
      this.#d.store.activate(c.model, c.variant, c.revision, { who: 'slogate', why: `rollout promoted: ${reason}` });
    } catch (err) {
      r.state = 'running';
      await this.#rollBack(r, 'rolled-back', `promotion failed: ${(err as Error).message}`);
      return;
    }
    this.#d.runtime.split.set(c.model, c.variant, undefined);
    this.#finish(r, 'promoted', reason);
  }

  /** Candidate traffic to 0 first, then the bookkeeping: nothing after this line may reach the candidate. */
  async #rollBack(r: Rollout, event: 'rolled-back' | 'aborted', reason: string): Promise<void> {
    if (r.state !== 'running') return;
    const { candidate: c } = r;
    this.#d.runtime.split.set(c.model, c.variant, undefined);
    if (r.activePoints !== undefined && r.activePoints.length > 0)
      this.#d.runtime.profiles.replacePoints(c.model, c.variant, r.activePoints);
    this.#finish(r, event, reason);
    try {
      this.#d.store.markRollout(c.model, c.variant, c.revision, 'rolled-back', { who: 'slogate', why: reason });
    } catch (err) {
      this.#d.logger.error({ err }, `rollout of ${c.revision}: the store did not record the rollback`);
    }
    await this.#d.runtime.revisions.unload(c);
  }

  #finish(r: Rollout, event: 'promoted' | 'rolled-back' | 'aborted', reason: string): void {
    r.state = event;
    r.reason = reason;
    r.finishedAt = this.#wall();
    this.#running.delete(variantKey(r.candidate.model, r.candidate.variant));
    this.#history.push(r);
    if (this.#history.length > ROLLOUT_HISTORY) this.#history.shift();
    this.#event(r, event, reason);
  }

  #applyShares(r: Rollout): void {
    const { model, variant, revision } = r.candidate;
    this.#d.runtime.split.set(model, variant, {
      revision,
      canaryShare: this.#canaryShare(r),
      shadowShare: r.phase === 'shadow' ? r.policy.shadowPercent / 100 : 0,
    });
  }

  #canaryShare(r: Rollout): number {
    if (r.state !== 'running' && r.state !== 'promoting') return 0;
    return r.phase === 'canary' ? (r.policy.steps[r.step] ?? 0) / 100 : 0;
  }

  #event(r: Rollout, event: RolloutEvent | 'paused' | 'resumed', reason: string): void {
    const { model, variant, revision } = r.candidate;
    r.events.push({ at: this.#wall(), event, reason });
    if (r.events.length > EVENTS_PER_ROLLOUT) r.events.shift();
    if (event !== 'paused' && event !== 'resumed') this.#d.metrics.rolloutEvents.labels(model, variant, event).inc();
    const log = event === 'rolled-back' || event === 'aborted' ? 'warn' : 'info';
    this.#d.logger[log](
      { model, variant, revision, event, reason },
      `rollout ${event} for ${model}/${variant} ${revision}: ${reason}`,
    );
  }

  #get(model: string, variant: string): Rollout {
    const r = this.#running.get(variantKey(model, variant));
    if (r === undefined)
      throw new SlogateError('SLOGATE_ERR_ROLLOUT_NOT_FOUND', `${model}/${variant} has no running rollout`);
    return r;
  }

  #wall(): string {
    return new Date(this.#wallNow()).toISOString();
  }
}

/** Point by point, the slower of two profiles over the same batch sizes (either alone when the other is missing). */
export function slowerOf(
  a: readonly ProfilePoint[] | undefined,
  b: readonly ProfilePoint[] | undefined,
): ProfilePoint[] | undefined {
  if (a === undefined || a.length === 0) return b === undefined ? undefined : [...b];
  if (b === undefined || b.length === 0) return [...a];
  return a.map((p) => {
    const q = b.find((x) => x.rows === p.rows);
    return q === undefined ? p : { ...p, p50Ms: Math.max(p.p50Ms, q.p50Ms), p99Ms: Math.max(p.p99Ms, q.p99Ms) };
  });
}
