// One path behind every way in (admin API, CLI): a candidate revision is stored, gated in order (gatePlan), and
// becomes active only when every gate passes; a failure rejects it and leaves what serves untouched. Rollback returns
// a variant to an earlier revision that passed its gates.
import { readFile } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Config } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { RolloutSetting } from '../core/rollout-config.js';
import type { ModelSignature } from '../core/types.js';
import { variantKey } from '../core/types.js';
import { loadEvalSet } from '../runtime/eval-set.js';
import { GoldenFiles } from '../runtime/golden-file.js';
import type { GateResult, ModelStore, RevisionRecord } from '../runtime/model-store.js';
import { revisionOf } from '../runtime/model-store.js';
import type { CandidateFile, RuntimeRevisions, SweepResult } from '../runtime/revisions.js';
import {
  type GateName,
  type GoldenAnswer,
  gatePlan,
  judgeAccuracy,
  judgeGolden,
  judgeLatency,
  judgeLoad,
  type Verdict,
} from './revision-gates.js';
import type { RolloutRunner } from './rollout/rollout-runner.js';

/** What the pipeline needs of the runtime. */
export interface DeployRuntime {
  readonly state: string;
  readonly revisions: RuntimeRevisions;
  signature(model: string): ModelSignature;
  model(name: string): {
    variants: ReadonlyMap<string, { accuracy: number | undefined; sha256: string; path: string }>;
  };
}

export interface DeployRequest {
  readonly model: string;
  readonly variant: string;
  readonly bytes: Uint8Array;
  /** Where the bytes came from (admin upload, a file), for the history. */
  readonly source: string;
  readonly who: string;
  readonly why: string;
  /** Overrides the model's rollout policy for this deploy. */
  readonly rollout?: RolloutSetting | undefined;
}

export interface DeployOutcome {
  readonly model: string;
  readonly variant: string;
  readonly revision: string;
  /** rollout: the gates passed and a rollout started (GET /admin/rollouts follows it). */
  readonly result: 'active' | 'unchanged' | 'rejected' | 'rolled-back' | 'rollout';
  readonly previous?: string | undefined;
  readonly gates: readonly GateResult[];
  readonly ms: number;
}

export interface DeployerDeps {
  readonly config: Readonly<Config>;
  readonly store: ModelStore;
  readonly runtime: DeployRuntime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Runs rollouts (policies/rollout/); absent: every deploy switches right after its gates. */
  readonly rollouts?: RolloutRunner | undefined;
}

/** Latency sweeps at most before a candidate is judged slower: the best ratio counts. */
const LATENCY_SWEEPS = 3;

interface GateContext {
  readonly c: CandidateFile;
  accuracy?: number;
  sweep?: { candidate: SweepResult; active: SweepResult };
}

export class Deployer {
  readonly #d: DeployerDeps;
  readonly #now: () => number;
  readonly #golden = new GoldenFiles();

  constructor(deps: DeployerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => performance.now());
    // Parsed now, before traffic, rather than during the first deploy; a file that fails here fails its gate later.
    for (const mc of Object.values(deps.config.models))
      if (mc.golden !== undefined)
        try {
          this.#golden.read(mc.golden);
        } catch {}
    deps.metrics.onCollect(deps.metrics.revisionInfo, () => {
      deps.metrics.revisionInfo.reset();
      for (const v of deps.store.variants())
        for (const r of v.revisions) deps.metrics.revisionInfo.labels(v.model, v.variant, r.revision, r.state).set(1);
    });
  }

  /** Stores the bytes as a candidate and runs every gate; resolves once it is active, or throws why not. */
  async deploy(req: DeployRequest): Promise<DeployOutcome> {
    const started = this.#now();
    const { store, metrics } = this.#d;
    try {
      this.#checkTarget(req.model, req.variant);
      this.#checkPin(req.model, req.variant, revisionOf(req.bytes));
    } catch (err) {
      metrics.deploys.labels(req.model, req.variant, 'refused').inc();
      throw err;
    }
    let added: ReturnType<ModelStore['add']>;
    try {
      await this.#adoptServed(req.model, req.variant);
      added = store.add(req.model, req.variant, req.bytes, req.source, { who: req.who, why: req.why });
    } catch (err) {
      metrics.deploys.labels(req.model, req.variant, 'refused').inc();
      throw err;
    }
    const view = (result: DeployOutcome['result'], previous?: string): DeployOutcome => ({
      model: req.model,
      variant: req.variant,
      revision: added.revision,
      result,
      previous,
      gates: this.#record(req.model, req.variant, added.revision)?.gates ?? [],
      ms: Math.round(this.#now() - started),
    });
    if (added.unchanged) {
      metrics.deploys.labels(req.model, req.variant, 'unchanged').inc();
      return view('unchanged');
    }
    const c: CandidateFile = {
      model: req.model,
      variant: req.variant,
      revision: added.revision,
      path: added.path,
      sizeBytes: req.bytes.byteLength,
    };
    const previous = store.activeRevision(req.model, req.variant) ?? this.#configRevision(req.model, req.variant);
    const ctx: GateContext = { c };
    const failed = await this.#runGates(ctx).catch((err: unknown) => {
      // Never left `gating`: that would refuse every later deploy of the variant until a restart.
      store.reject(req.model, req.variant, c.revision, { who: 'slogate', why: `gates aborted: ${String(err)}` });
      throw err;
    });
    if (failed !== undefined) {
      store.reject(req.model, req.variant, c.revision, { who: 'slogate', why: `gate ${failed.gate} failed` });
      await this.#d.runtime.revisions.unload(c);
      metrics.deploys.labels(req.model, req.variant, 'rejected').inc();
      this.#d.logger.warn(
        { model: req.model, variant: req.variant, revision: c.revision, gate: failed.gate, detail: failed.detail },
        `revision ${c.revision} of ${req.model}/${req.variant} rejected by the ${failed.gate} gate: ${failed.detail}`,
      );
      throw new SlogateError(
        failed.code ?? 'SLOGATE_ERR_GATE_FAILED',
        `${req.model}/${req.variant}: revision ${c.revision} failed the ${failed.gate} gate: ${failed.detail}`,
      );
    }
    const policy = req.rollout ?? this.#d.config.models[req.model]?.rollout ?? 'immediate';
    if (policy !== 'immediate' && this.#d.rollouts !== undefined) {
      this.#d.rollouts.start({
        candidate: c,
        policy,
        previous,
        accuracy: ctx.accuracy ?? store.gateValue(c.model, c.variant, c.revision, 'accuracy'),
        candidatePoints: ctx.sweep?.candidate.points,
        activePoints: ctx.sweep?.active.points,
      });
      metrics.deploys.labels(req.model, req.variant, 'rollout').inc();
      return view('rollout', previous);
    }
    await this.#switchTo(c, previous, { who: req.who, why: req.why }, 'activate', ctx);
    metrics.deploys.labels(req.model, req.variant, 'active').inc();
    return view('active', previous);
  }

  /** Returns the variant to `to`, or to the revision active before the current one; it is loaded and swept again. */
  async rollback(model: string, variant: string, to: string | undefined, who: string): Promise<DeployOutcome> {
    const started = this.#now();
    const { store, metrics } = this.#d;
    this.#checkTarget(model, variant);
    const target = store.rollbackTarget(model, variant, to);
    const rec = this.#record(model, variant, target) as RevisionRecord;
    const c: CandidateFile = { model, variant, revision: target, path: store.fileOf(target), sizeBytes: rec.sizeBytes };
    if (this.#d.config.models[model]?.variants[variant]?.sha256 !== undefined) this.#checkPin(model, variant, target);
    const previous = store.activeRevision(model, variant);
    const ctx: GateContext = { c };
    const load = await this.#gate('load', ctx);
    if (!load.passed)
      throw new SlogateError(load.code ?? 'SLOGATE_ERR_MODEL_LOAD', `${model}/${variant}: ${load.detail}`);
    ctx.accuracy = store.gateValue(model, variant, target, 'accuracy');
    ctx.sweep = await this.#d.runtime.revisions.sweep(c);
    await this.#switchTo(
      c,
      previous,
      { who, why: to === undefined ? 'rollback' : `rollback to ${to}` },
      'rollback',
      ctx,
    );
    metrics.deploys.labels(model, variant, 'rolled-back').inc();
    return {
      model,
      variant,
      revision: target,
      result: 'rolled-back',
      previous,
      gates: rec.gates,
      ms: Math.round(this.#now() - started),
    };
  }

  /** The model's variants with their active revision, kept revisions, gate results and history. */
  describe(model: string) {
    const mc = this.#d.config.models[model];
    if (mc === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    const served = this.#d.runtime.model(model).variants;
    const variants = Object.keys(mc.variants).map((name) => {
      const d = this.#d.store.describe(model, name);
      const v = served.get(name);
      return {
        variant: name,
        active: d.active ?? `sha256:${v?.sha256 ?? ''}`,
        fromStore: d.active !== undefined,
        accuracy: v?.accuracy ?? null,
        pinned: mc.variants[name]?.sha256 ?? null,
        revisions: d.revisions,
      };
    });
    return { model, variants, history: this.#d.store.history(model) };
  }

  /** Per variant: the revision served and the latest deploy with its gates, for the status page. */
  statusRows(): { variant: string; active: string; latest: string; state: string; gates: string }[] {
    const short = (r: string | undefined) => (r === undefined ? '' : r.slice(0, 19));
    const rows: { variant: string; active: string; latest: string; state: string; gates: string }[] = [];
    for (const [model, mc] of Object.entries(this.#d.config.models))
      for (const variant of Object.keys(mc.variants)) {
        const d = this.#d.store.describe(model, variant);
        const latest = [...d.revisions].sort((a, b) => (a.addedAt < b.addedAt ? -1 : 1)).at(-1);
        const served = `sha256:${this.#d.runtime.model(model).variants.get(variant)?.sha256 ?? ''}`;
        rows.push({
          variant: variantKey(model, variant),
          active: short(served),
          latest: short(latest?.revision),
          state: latest?.state ?? '',
          gates: (latest?.gates ?? [])
            .map((g) => `${g.gate} ${g.passed ? 'passed' : `FAILED: ${g.detail}`}`)
            .join('; '),
        });
      }
    return rows;
  }

  /** Every model and variant with its state, as Triton's repository index lists them. */
  index(): { name: string; version: string; state: 'READY' | 'LOADING' | 'UNAVAILABLE'; reason: string }[] {
    const ready = this.#d.runtime.state === 'ready';
    const out: { name: string; version: string; state: 'READY' | 'LOADING' | 'UNAVAILABLE'; reason: string }[] = [];
    for (const [model, mc] of Object.entries(this.#d.config.models))
      for (const variant of Object.keys(mc.variants)) {
        const gating = this.#d.store.describe(model, variant).revisions.find((r) => r.state === 'gating');
        const served = `sha256:${this.#d.runtime.model(model).variants.get(variant)?.sha256 ?? ''}`;
        if (!ready)
          out.push({ name: model, version: variant, state: 'UNAVAILABLE', reason: `server ${this.#d.runtime.state}` });
        else if (gating !== undefined)
          out.push({
            name: model,
            version: variant,
            state: 'LOADING',
            reason: `serving ${served}; gating ${gating.revision}`,
          });
        else out.push({ name: model, version: variant, state: 'READY', reason: `serving ${served}` });
      }
    return out;
  }

  async #runGates(ctx: GateContext): Promise<(Verdict & { gate: GateName }) | undefined> {
    const mc = this.#d.config.models[ctx.c.model];
    for (const gate of gatePlan({ golden: mc?.golden !== undefined, evalSet: mc?.eval !== undefined })) {
      const v = await this.#gate(gate, ctx);
      if (!v.passed) return { ...v, gate };
    }
    return undefined;
  }

  /** Runs one gate, records and logs its result; a gate that throws fails with the error's message. */
  async #gate(gate: GateName, ctx: GateContext): Promise<Verdict> {
    let v: Verdict;
    try {
      v = await this.#measure(gate, ctx);
    } catch (err) {
      const e = err as SlogateError;
      v = {
        passed: false,
        detail: e.message,
        code: gate === 'load' ? 'SLOGATE_ERR_MODEL_LOAD' : 'SLOGATE_ERR_GATE_FAILED',
      };
    }
    const { c } = ctx;
    const result: Omit<GateResult, 'at'> = { gate, passed: v.passed, detail: v.detail };
    this.#d.store.recordGate(
      c.model,
      c.variant,
      c.revision,
      v.value === undefined ? result : { ...result, value: v.value },
    );
    this.#d.logger.info(
      { model: c.model, variant: c.variant, revision: c.revision, gate, passed: v.passed, detail: v.detail },
      `gate ${gate} ${v.passed ? 'passed' : 'failed'} for ${c.model}/${c.variant} ${c.revision}: ${v.detail}`,
    );
    return v;
  }

  async #measure(gate: GateName, ctx: GateContext): Promise<Verdict> {
    const { runtime, config } = this.#d;
    const { c } = ctx;
    const mc = config.models[c.model];
    if (mc === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${c.model}'`);
    switch (gate) {
      case 'load':
        return judgeLoad(await runtime.revisions.load(c), runtime.signature(c.model));
      case 'accuracy': {
        const set = await loadEvalSet(mc.eval as string);
        const measured = await runtime.revisions.accuracy(c, set);
        let active = runtime.model(c.model).variants.get(c.variant)?.accuracy;
        if (active === undefined)
          active = await runtime.revisions.accuracy({ model: c.model, variant: c.variant }, set);
        ctx.accuracy = measured;
        return judgeAccuracy({
          measured,
          minAccuracy: this.#minAccuracy(c.model, c.variant),
          active,
          maxDrop: mc.maxAccuracyDrop,
        });
      }
      case 'latency': {
        // Contention on the host makes either revision look slower at random; a real slowdown shows in every sweep.
        let best: Verdict | undefined;
        for (let attempt = 0; attempt < LATENCY_SWEEPS && best?.passed !== true; attempt++) {
          const sweep = await runtime.revisions.sweep(c);
          const v = judgeLatency(sweep.candidate, sweep.active, mc.maxSlowdown);
          if (best === undefined || (v.value ?? Number.POSITIVE_INFINITY) < (best.value ?? Number.POSITIVE_INFINITY)) {
            best = v;
            ctx.sweep = sweep;
          }
        }
        return best as Verdict;
      }
      case 'golden': {
        const golden = this.#golden.read(mc.golden as string);
        const answers: GoldenAnswer[] = [];
        for (const g of golden.cases) {
          const inputs = g.inputs.map((t) => ({ ...t, data: Float32Array.from(t.data) }));
          const rows = inputs[0]?.shape[0] ?? 1;
          answers.push(
            await runtime.revisions.run(c, inputs, rows).then(
              (out) => new Map(out.map((o) => [o.name, o.data as Float32Array])),
              (err: Error) => err,
            ),
          );
        }
        return judgeGolden(
          golden.cases.map((g) => g.expect),
          answers,
        );
      }
    }
  }

  async #switchTo(
    c: CandidateFile,
    previous: string | undefined,
    change: { who: string; why: string },
    action: 'activate' | 'rollback',
    ctx: GateContext,
  ): Promise<void> {
    const accuracy = ctx.accuracy ?? this.#d.store.gateValue(c.model, c.variant, c.revision, 'accuracy');
    await this.#d.runtime.revisions.activate(c, accuracy, ctx.sweep?.candidate.points);
    this.#d.store.activate(c.model, c.variant, c.revision, change, action);
    this.#d.logger.info(
      { model: c.model, variant: c.variant, revision: c.revision, previous, action },
      `${c.model}/${c.variant} now serves ${c.revision}${previous === undefined ? '' : ` (was ${previous})`}`,
    );
  }

  /**
   * The first deploy of a variant records the file it serves as its active revision, so a rollback can return to it.
   * Its store writes (fsynced) and the candidate's are apart, on turns of their own: together they would hold up live
   * requests. The adopted revision is never left `gating` across a turn: a deploy refused meanwhile names the candidate.
   */
  async #adoptServed(model: string, variant: string): Promise<void> {
    const { store, runtime } = this.#d;
    if (store.activeRevision(model, variant) !== undefined) return;
    const served = runtime.model(model).variants.get(variant);
    if (served === undefined) return;
    const bytes = await readFile(served.path);
    // Another deploy may have adopted it while the file was read.
    if (store.activeRevision(model, variant) !== undefined) return;
    const change = { who: 'slogate', why: 'the file served since start-up' };
    const added = store.add(model, variant, bytes, served.path, change);
    if (served.accuracy !== undefined)
      store.recordGate(model, variant, added.revision, {
        gate: 'accuracy',
        passed: true,
        detail: 'recorded by slogate eval',
        value: served.accuracy,
      });
    store.activate(model, variant, added.revision, change);
    await yieldToLoop();
  }

  /** The highest minAccuracy among routes that may use the variant. */
  #minAccuracy(model: string, variant: string): number | undefined {
    let floor: number | undefined;
    for (const r of Object.values(this.#d.config.routes)) {
      if (r.model !== model || (r.variants !== undefined && !r.variants.includes(variant))) continue;
      const m = r.slo.minAccuracy;
      if (m !== undefined) floor = Math.max(floor ?? 0, m);
    }
    return floor;
  }

  #checkTarget(model: string, variant: string): void {
    const name = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
    for (const [kind, n] of [
      ['model', model],
      ['variant', variant],
    ] as const)
      if (!name.test(n))
        throw new SlogateError(
          'SLOGATE_ERR_INVALID_NAME',
          `${kind} name ${JSON.stringify(n.slice(0, 64))} must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'`,
        );
    const mc = this.#d.config.models[model];
    if (mc === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model}'`);
    if (mc.variants[variant] === undefined)
      throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `model '${model}' has no variant '${variant}'`);
    const state = this.#d.runtime.state;
    if (state === 'draining' || state === 'closed')
      throw new SlogateError('SLOGATE_ERR_SHUTTING_DOWN', 'the server is shutting down: no deploys', {
        retryAfterMs: 1000,
      });
    if (state !== 'ready')
      throw new SlogateError('SLOGATE_ERR_NOT_READY', 'models are still loading', { retryAfterMs: 1000 });
  }

  #checkPin(model: string, variant: string, revision: string): void {
    const pin = this.#d.config.models[model]?.variants[variant]?.sha256;
    if (pin !== undefined && pin !== revision)
      throw new SlogateError(
        'SLOGATE_ERR_REVISION_PIN_MISMATCH',
        `${model}/${variant} is pinned to ${pin}; this file is ${revision}`,
      );
  }

  #configRevision(model: string, variant: string): string | undefined {
    const sha = this.#d.runtime.model(model).variants.get(variant)?.sha256;
    return sha === undefined ? undefined : `sha256:${sha}`;
  }

  #record(model: string, variant: string, revision: string): RevisionRecord | undefined {
    return this.#d.store.describe(model, variant).revisions.find((r) => r.revision === revision);
  }
}
