// Variants joining and leaving a running runtime: a new variant is loaded on every replica, checked against the
// model's signature, profiled and then queued for; a removed (or unloaded) one stops taking requests, drains what is
// queued and running on it, and only then has its sessions released. Knows nothing of routes or configs.
import { statSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { LatencyProfiles } from './latency-profile.js';
import {
  type ModelInfo,
  type ModelRepository,
  sha256File,
  signatureDiff,
  type VariantInfo,
} from './model-repository.js';
import { Profiler, type SweepOptions } from './profiler.js';
import type { ReplicaPool } from './replica-pool.js';
import type { Scheduler } from './scheduler.js';

export interface VariantLifecycleDeps {
  readonly repository: ModelRepository;
  readonly pool: ReplicaPool;
  readonly scheduler: Scheduler;
  readonly profiles: LatencyProfiles;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How new variants are profiled (samples, budget, host key); undefined: not profiled. */
  readonly sweepOptions: () => SweepOptions | undefined;
}

export interface NewVariant {
  readonly model: string;
  readonly variant: string;
  readonly path: string;
  readonly description?: string | undefined;
  readonly accuracy?: number | undefined;
}

export class VariantLifecycle {
  readonly #d: VariantLifecycleDeps;
  /** Models unloaded through the repository API, with why. */
  readonly #unloaded = new Map<string, string>();

  constructor(deps: VariantLifecycleDeps) {
    this.#d = deps;
  }

  /** Why a model is unloaded, or undefined when it serves. */
  unloaded(model: string): string | undefined {
    return this.#unloaded.get(model);
  }

  /** Loads a variant on every replica, checks its signature, profiles it, then opens its queue. */
  async add(n: NewVariant): Promise<VariantInfo> {
    const { repository } = this.#d;
    const m = repository.model(n.model);
    if (m.variants.has(n.variant))
      throw new SlogateError('SLOGATE_ERR_BAD_REQUEST', `model '${n.model}' already has a variant '${n.variant}'`);
    const sha256 = await sha256File(n.path);
    const info: VariantInfo = {
      model: n.model,
      name: n.variant,
      path: n.path,
      sha256,
      sizeBytes: statSync(n.path).size,
      description: n.description,
      accuracy: n.accuracy,
    };
    await this.#loadEverywhere(m, info);
    const batchable = m.signature?.batchable === true;
    this.#d.scheduler.addVariant(
      n.model,
      n.variant,
      { maxBatch: batchable ? m.config.maxBatch : 1, maxQueueDelayMs: 0 },
      batchable,
    );
    await this.#profile(m, info);
    repository.addVariant(info);
    return info;
  }

  /**
   * Takes a variant out of service: the repository forgets it first (the engine and router stop choosing it), then
   * its queue drains (at most drainMs), then every replica releases its sessions after their last batch.
   */
  async remove(
    model: string,
    variant: string,
    drainMs: number,
    onForgotten: () => void = () => {},
  ): Promise<{ drained: boolean; sessions: string[] }> {
    this.#d.repository.removeVariant(model, variant);
    onForgotten();
    const drained = await this.#d.scheduler.removeVariant(model, variant, drainMs);
    return { drained, sessions: await this.#release(model, variant) };
  }

  /** Refuses new requests to the model, drains its variants, releases their sessions; the model stays configured. */
  async unloadModel(model: string, reason: string, drainMs: number): Promise<{ drained: boolean; sessions: string[] }> {
    const m = this.#d.repository.model(model);
    this.#unloaded.set(model, reason);
    let drained = true;
    let sessions: string[] = [];
    for (const v of m.variants.values()) {
      drained = (await this.#d.scheduler.removeVariant(model, v.name, drainMs)) && drained;
      sessions = await this.#release(model, v.name);
    }
    this.#d.logger.info({ model, reason }, `model ${model} unloaded: ${reason}`);
    return { drained, sessions };
  }

  /** Loads an unloaded model's variants (their active files) again and opens their queues. */
  async loadModel(model: string): Promise<void> {
    const m = this.#d.repository.model(model);
    if (!this.#unloaded.has(model)) return;
    const batchable = m.signature?.batchable === true;
    for (const v of m.variants.values()) {
      await this.#loadEverywhere(m, v, true);
      this.#d.scheduler.addVariant(
        model,
        v.name,
        { maxBatch: batchable ? m.config.maxBatch : 1, maxQueueDelayMs: 0 },
        batchable,
      );
    }
    this.#unloaded.delete(model);
    this.#d.logger.info({ model }, `model ${model} loaded again`);
  }

  /** Loads and activates on every replica; `keptElsewhere`: replicas that cannot load kept it (never unloaded). */
  async #loadEverywhere(m: ModelInfo, v: VariantInfo, keptElsewhere = false): Promise<void> {
    const all = this.#d.pool.replicas.filter((r) => r.state !== 'closed');
    const replicas = keptElsewhere ? all.filter((r) => r.revision !== undefined) : all;
    const remote = replicas.find((r) => r.revision === undefined);
    if (remote !== undefined)
      throw new SlogateError(
        'SLOGATE_ERR_APPLY_UNSUPPORTED',
        `${m.name}/${v.name}: replica ${remote.id} cannot load variants while running; restart with the new config`,
      );
    const task = {
      kind: 'load' as const,
      model: m.name,
      variant: v.name,
      revision: `sha256:${v.sha256}`,
      path: v.path,
    };
    const loaded = await Promise.all(replicas.map((r) => (r.revision as NonNullable<typeof r.revision>)(task)));
    const problem = loaded
      .map((res, i) => {
        if (!res.ok) return { code: res.error.code, detail: `${replicas[i]?.id}: ${res.error.message}` };
        if (res.kind !== 'load' || m.signature === undefined) return undefined;
        const diff = signatureDiff({ inputs: [...m.signature.inputs], outputs: [...m.signature.outputs] }, res.session);
        return diff === undefined ? undefined : { code: 'SLOGATE_ERR_SIGNATURE_MISMATCH' as const, detail: diff };
      })
      .find((p) => p !== undefined);
    if (problem !== undefined) {
      await this.#release(m.name, v.name);
      throw new SlogateError(problem.code, `${m.name}/${v.name}: ${problem.detail}`);
    }
    const activate = { kind: 'activate' as const, model: m.name, variant: v.name, revision: task.revision };
    await Promise.all(replicas.map((r) => (r.revision as NonNullable<typeof r.revision>)(activate)));
  }

  async #profile(m: ModelInfo, v: VariantInfo): Promise<void> {
    const options = this.#d.sweepOptions();
    if (options === undefined) return;
    const only: ModelInfo = { ...m, variants: new Map([[v.name, v]]) };
    const [s] = await new Profiler(this.#d.pool.whileServing(), this.#d.clock, this.#d.logger).sweep([only], options);
    if (s !== undefined) this.#d.profiles.setPoints(m.name, v.name, s.points);
  }

  /** Every replica drops the variant; answers the sessions the last one still holds (model/variant@revision). */
  async #release(model: string, variant: string): Promise<string[]> {
    let sessions: string[] = [];
    for (const r of this.#d.pool.replicas) {
      if (r.revision === undefined || r.state === 'closed') continue;
      const res = await r.revision({ kind: 'remove', model, variant }).catch(() => undefined);
      if (res?.ok === true && res.kind !== 'load') sessions = res.sessions;
    }
    return sessions;
  }
}
