// Carries out an apply plan (apply-plan.ts) on the running server: the one path behind `slogate apply`, the config
// watch and Triton's repository load with a config. A desired config is validated whole before anything changes;
// steps then run in the plan's order, each logged, and a failed step is reported without undoing the others.
import { readFileSync } from 'node:fs';
import type { Config, ModelConfig, RouteConfig } from '../core/config.js';
import { deepFreeze, parseConfig } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { loadEvalSet } from '../runtime/eval-set.js';
import { readMetadataFile } from '../runtime/model-repository.js';
import type { ModelStore } from '../runtime/model-store.js';
import { revisionOf } from '../runtime/model-store.js';
import type { Runtime } from '../runtime/runtime.js';
import { canonical, type DeclaredState, describeStep, type PlanStep, planApply } from './apply-plan.js';
import type { Controller } from './controller.js';
import type { Deployer } from './deploy-pipeline.js';
import type { Router } from './router.js';

/** The config the server runs now: models and routes change as applies succeed; the rest only at a restart. */
export type LiveConfig = Omit<Config, 'models' | 'routes'> & {
  models: Record<string, ModelConfig>;
  routes: Record<string, RouteConfig>;
};

/** A writable copy of the start-up config's top level, for the deployer and the applier to share. */
export function liveConfig(config: Readonly<Config>): LiveConfig {
  return { ...config, models: { ...config.models }, routes: { ...config.routes } };
}

export interface ApplierDeps {
  readonly live: LiveConfig;
  readonly runtime: Runtime;
  readonly router: Router;
  readonly controller: Controller;
  readonly deployer: Deployer;
  readonly store: ModelStore;
  readonly logger: Logger;
  /** Where relative paths in a model section given over the API resolve (the config file's directory). */
  readonly baseDir: string;
  /** Milliseconds for step timings (default performance.now). */
  readonly now?: () => number;
}

export interface ApplyRequest {
  readonly config: Readonly<Config>;
  /** Model files given as bytes ("model/variant" -> bytes), in place of the config's paths (uploads). */
  readonly files?: ReadonlyMap<string, Uint8Array>;
  /** Revisions the caller hashed itself ("model/variant" -> sha256:...), for a plan without the bytes. */
  readonly revisions?: Readonly<Record<string, string>>;
  /** Compare the sections only a restart changes (the file on this host, not a client's copy). */
  readonly compareSettings?: boolean;
  /**
   * The config's paths are this host's (the config watch, a repository load's config). Otherwise they are a client's:
   * only the bytes it sent count, and the running eval, golden and metadata files stay.
   */
  readonly localPaths?: boolean;
  readonly dryRun?: boolean;
  readonly who: string;
  readonly why: string;
}

export interface StepOutcome {
  readonly step: PlanStep;
  readonly text: string;
  readonly ok: boolean;
  /** How long the step took. */
  readonly ms: number;
  readonly code?: string;
  readonly error?: string;
  readonly detail?: unknown;
}

export interface ApplyReport {
  readonly plan: PlanStep[];
  readonly steps: StepOutcome[];
  readonly ok: boolean;
}

const SETTINGS = ['server', 'runtime', 'pricing', 'engine', 'store'] as const;

export class ConfigApplier {
  readonly #d: ApplierDeps;
  #busy = false;

  constructor(deps: ApplierDeps) {
    this.#d = deps;
  }

  /** What the server runs now, in the plan's terms. */
  running(): DeclaredState {
    const { live, runtime, router } = this.#d;
    const models: Record<string, Record<string, string>> = {};
    for (const m of Object.keys(live.models)) {
      const served = runtime.model(m).variants;
      models[m] = Object.fromEntries([...served.values()].map((v) => [v.name, `sha256:${v.sha256}`]));
    }
    const routes = Object.fromEntries([...router.routes.values()].map((r) => [r.name, r.config]));
    return { models, routes, settings: settingsOf(live) };
  }

  /** What `req` asks for, in the plan's terms (files are hashed unless the caller gave their revisions). */
  desired(req: ApplyRequest): DeclaredState {
    const models: Record<string, Record<string, string>> = {};
    for (const [m, mc] of Object.entries(req.config.models)) {
      models[m] = {};
      for (const [v, vc] of Object.entries(mc.variants)) {
        const key = `${m}/${v}`;
        const bytes = req.files?.get(key);
        (models[m] as Record<string, string>)[v] =
          req.revisions?.[key] ?? (bytes === undefined ? revisionOfPath(vc.path) : revisionOf(bytes));
      }
    }
    const settings = req.compareSettings === true ? settingsOf(req.config) : undefined;
    return { models, routes: { ...req.config.routes }, ...(settings === undefined ? {} : { settings }) };
  }

  /** Plans and, unless a dry run, carries out the plan; one apply at a time. */
  async apply(req: ApplyRequest): Promise<ApplyReport> {
    if (this.#busy)
      throw new SlogateError('SLOGATE_ERR_APPLY_IN_PROGRESS', 'another apply is running; try again once it is done', {
        retryAfterMs: 1000,
      });
    const state = this.#d.runtime.state;
    if (state !== 'ready')
      throw new SlogateError(
        state === 'draining' || state === 'closed' ? 'SLOGATE_ERR_SHUTTING_DOWN' : 'SLOGATE_ERR_NOT_READY',
        `the server is ${state}: nothing is applied`,
        { retryAfterMs: 1000 },
      );
    this.#busy = true;
    try {
      const plan = planApply(this.desired(req), this.running());
      if (req.dryRun === true || plan.length === 0) return { plan, steps: [], ok: true };
      this.#d.logger.info({ plan: plan.map(describeStep), who: req.who, why: req.why }, 'applying a config change');
      this.#adoptModelSettings(req.config, req.localPaths === true);
      const steps: StepOutcome[] = [];
      for (const step of plan) steps.push(await this.#run(step, req));
      this.#d.controller.applyFixedKnobs();
      return { plan, steps, ok: steps.every((s) => s.ok) };
    } finally {
      this.#busy = false;
    }
  }

  async #run(step: PlanStep, req: ApplyRequest): Promise<StepOutcome> {
    const text = describeStep(step);
    const now = this.#d.now ?? (() => performance.now());
    const started = now();
    try {
      const detail = await this.#step(step, req);
      const ms = Math.round(now() - started);
      this.#d.logger.info({ step: text, who: req.who, ms }, `apply: ${text} in ${ms} ms`);
      return { step, text, ok: true, ms, ...(detail === undefined ? {} : { detail }) };
    } catch (err) {
      const e = err as SlogateError;
      const ms = Math.round(now() - started);
      this.#d.logger.warn({ step: text, code: e.code, err: e.message, ms }, `apply failed: ${text}: ${e.message}`);
      return { step, text, ok: false, ms, code: e.code ?? 'SLOGATE_ERR_INTERNAL', error: e.message };
    }
  }

  async #step(step: PlanStep, req: ApplyRequest): Promise<unknown> {
    const { deployer, live } = this.#d;
    switch (step.kind) {
      case 'deploy':
        return deployer.deploy({
          model: step.model,
          variant: step.variant,
          bytes: this.#bytes(req, step.model, step.variant),
          source: 'apply',
          who: req.who,
          why: req.why,
        });
      case 'variant':
        return step.change === 'add'
          ? this.#addVariant(req, step.model, step.variant)
          : this.#removeVariant(step.model, step.variant);
      case 'route':
        if (step.change === 'remove') {
          this.#d.router.removeRoute(step.route);
          this.#d.controller.forgetRoute(step.route);
          delete live.routes[step.route];
        } else {
          const rc = req.config.routes[step.route] as RouteConfig;
          this.#d.router.updateRoute(step.route, rc);
          live.routes[step.route] = rc;
          // A decision at once: the new SLO and policy govern the next request, not the next tick's.
          this.#d.controller.applyFixedKnobs();
          this.#d.controller.tick();
        }
        return undefined;
      case 'restart':
        throw new SlogateError('SLOGATE_ERR_APPLY_UNSUPPORTED', `${step.reason}: restart with the new config`);
    }
  }

  /** The running config with one model's section replaced by `section` (slogate's shape), validated whole. */
  withModelSection(model: string, section: unknown): Readonly<Config> {
    const { live, router } = this.#d;
    if (live.models[model] === undefined)
      throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    const routes = Object.fromEntries([...router.routes.values()].map((r) => [r.name, r.config]));
    try {
      return parseConfig(
        { ...live, models: { ...live.models, [model]: section }, routes },
        this.#d.baseDir,
        'parameters.config',
      );
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_BAD_PARAMETER', (err as Error).message);
    }
  }

  /** Triton's unload: new requests to the model are refused, what is queued and running finishes, sessions go. */
  async unloadModel(model: string, who: string) {
    const { runtime, live } = this.#d;
    if (live.models[model] === undefined)
      throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    if (runtime.lifecycle.unloaded(model) !== undefined) return { model, unloaded: true, drained: true, sessions: [] };
    const out = await runtime.lifecycle.unloadModel(model, `unloaded by ${who}`, live.server.drainTimeoutMs);
    return { model, unloaded: true, ...out };
  }

  /** Triton's load of an unloaded model: its variants' active files are loaded again. */
  async loadModel(model: string): Promise<void> {
    if (this.#d.live.models[model] === undefined)
      throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    await this.#d.runtime.lifecycle.loadModel(model);
  }

  /** Why the model is unloaded, or undefined when it serves. */
  unloaded(model: string): string | undefined {
    return this.#d.runtime.lifecycle.unloaded(model);
  }

  /** Loads, checks and profiles the new variant, then lets the routes of its model use it. */
  async #addVariant(req: ApplyRequest, model: string, variant: string) {
    const { runtime, store, live } = this.#d;
    const mc = req.config.models[model] as ModelConfig;
    const vc = mc.variants[variant] as ModelConfig['variants'][string];
    const bytes = req.files?.get(`${model}/${variant}`);
    let path = vc.path;
    if (bytes !== undefined) {
      // Uploaded bytes live in the store: a file that outlives the request, and the variant's first revision.
      const added = store.add(model, variant, bytes, 'apply', { who: req.who, why: req.why });
      path = added.path;
      if (!added.unchanged) store.activate(model, variant, added.revision, { who: req.who, why: req.why });
    }
    if (vc.sha256 !== undefined && vc.sha256 !== revisionOfPath(path))
      throw new SlogateError('SLOGATE_ERR_REVISION_PIN_MISMATCH', `${model}/${variant} is not its pinned ${vc.sha256}`);
    const files = live.models[model] ?? mc;
    const meta = files.metadata === undefined ? undefined : readMetadataFile(files.metadata)?.variants[variant];
    const info = await runtime.lifecycle.add({ model, variant, path, description: vc.description });
    if (meta !== undefined && `sha256:${meta.sha256}` === `sha256:${info.sha256}`) info.accuracy = meta.accuracy;
    else if (files.eval !== undefined)
      info.accuracy = await runtime.revisions.accuracy({ model, variant }, await loadEvalSet(files.eval));
    live.models[model] = freezeModel(live.models[model], { [variant]: { ...vc, path } });
    this.#refreshRoutes(model);
    return { variant: `${model}/${variant}`, revision: `sha256:${info.sha256}`, accuracy: info.accuracy ?? null };
  }

  /** Routes stop choosing the variant at once; what is queued and running on it finishes; then it is unloaded. */
  async #removeVariant(model: string, variant: string) {
    const { runtime, live } = this.#d;
    const users = [...this.#d.router.routes.values()].filter(
      (r) =>
        r.model.name === model &&
        (r.config.variants?.includes(variant) === true ||
          (r.config.policy.kind !== 'adaptive' && r.config.policy.variant === variant)),
    );
    if (users.length > 0)
      throw new SlogateError(
        'SLOGATE_ERR_APPLY_UNSUPPORTED',
        `${model}/${variant} is still named by route ${users.map((r) => r.name).join(', ')}`,
      );
    if (runtime.model(model).variants.size <= 1)
      throw new SlogateError('SLOGATE_ERR_APPLY_UNSUPPORTED', `${model}/${variant} is the model's last variant`);
    const done = runtime.lifecycle.remove(model, variant, live.server.drainTimeoutMs, () => this.#refreshRoutes(model));
    const current = live.models[model];
    if (current !== undefined) {
      const { [variant]: _gone, ...rest } = current.variants;
      live.models[model] = deepFreeze({ ...current, variants: rest });
    }
    const out = await done;
    return { variant: `${model}/${variant}`, drained: out.drained, sessions: out.sessions };
  }

  /** Routes of the model recompute the variants they may use, and the engine decides again at once. */
  #refreshRoutes(model: string): void {
    for (const r of this.#d.router.routes.values()) {
      if (r.model.name !== model) continue;
      this.#d.router.updateRoute(r.name, r.config);
    }
    this.#d.controller.tick();
  }

  /** Per-model settings the deployer reads (gates, pins) take effect before the steps; variants change step by step. */
  #adoptModelSettings(config: Readonly<Config>, localPaths: boolean): void {
    const { live } = this.#d;
    for (const [m, mc] of Object.entries(config.models)) {
      const now = live.models[m];
      if (now === undefined) continue;
      const variants = Object.fromEntries(
        Object.entries(now.variants).map(([v, vc]) => {
          const next = mc.variants[v];
          return [v, next === undefined ? vc : { ...next, path: localPaths ? next.path : vc.path }] as const;
        }),
      );
      const files = localPaths ? {} : { eval: now.eval, golden: now.golden, metadata: now.metadata };
      live.models[m] = deepFreeze({
        ...mc,
        ...files,
        maxBatch: now.maxBatch,
        allowNonFinite: now.allowNonFinite,
        variants,
      });
    }
  }

  #bytes(req: ApplyRequest, model: string, variant: string): Uint8Array {
    const given = req.files?.get(`${model}/${variant}`);
    if (given !== undefined) return given;
    const path = req.config.models[model]?.variants[variant]?.path as string;
    try {
      return new Uint8Array(readFileSync(path));
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
    }
  }
}

function freezeModel(mc: ModelConfig | undefined, extra: ModelConfig['variants']): ModelConfig {
  const base = mc as ModelConfig;
  return deepFreeze({ ...base, variants: { ...base.variants, ...extra } });
}

/** The sections and per-model settings only a restart changes. */
function settingsOf(config: Pick<Config, (typeof SETTINGS)[number] | 'models'>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) out[s] = JSON.parse(canonical(config[s]));
  // `serve --host/--port` override these: the file's values are not what runs, and no reason to restart.
  const { host: _h, port: _p, ...server } = config.server;
  out.server = server;
  for (const [m, mc] of Object.entries(config.models))
    out[`models.${m}.batching`] = { maxBatch: mc.maxBatch, allowNonFinite: mc.allowNonFinite };
  return out;
}

function revisionOfPath(path: string): string {
  try {
    return revisionOf(readFileSync(path));
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_CONFIG', `cannot read model file ${path}: ${(err as Error).message}`);
  }
}
