// A runtime node's side of remote revisions: which file a revision is on this node, the load gate on its own
// workers, switching a variant and dropping a candidate. The gateway sends; the node decides here, behind its admin
// API (gateway/admin/node-revisions.ts).
import { existsSync, statSync } from 'node:fs';
import { SlogateError } from '../core/errors.js';
import type { ModelSignature } from '../core/types.js';
import type { ModelRepository } from '../runtime/model-repository.js';
import { checkRevisionName, type RevisionCache } from '../runtime/revision-cache.js';
import type { CandidateFile, RuntimeRevisions } from '../runtime/revisions.js';
import type { WireTensor } from '../runtime/worker/messages.js';
import { judgeLoad } from './revision-gates.js';

/** What the node needs of its runtime. */
export interface NodeRuntime {
  readonly repository: Pick<ModelRepository, 'models' | 'variant'>;
  readonly revisions: RuntimeRevisions;
  signature(model: string): ModelSignature;
}

export class NodeRevisions {
  readonly #rt: NodeRuntime;
  readonly cache: RevisionCache;
  /** Revisions loaded beside the active ones (not yet activated or unloaded): kept in the cache. */
  readonly #loaded = new Set<string>();
  /** Files this node has served (its config's, earlier active ones), by revision: never sent to it again. */
  readonly #known = new Map<string, string>();

  constructor(runtime: NodeRuntime, cache: RevisionCache) {
    this.#rt = runtime;
    this.cache = cache;
    this.#remember();
  }

  /** The revision each variant serves on this node. */
  served(): { model: string; variant: string; revision: string }[] {
    return [...this.#rt.repository.models.values()].flatMap((m) =>
      [...m.variants.values()].map((v) => ({ model: m.name, variant: v.name, revision: `sha256:${v.sha256}` })),
    );
  }

  /** The node's file of `revision`: one it served, or one it received; REVISION_NOT_FOUND when it has neither. */
  fileOf(revision: string): string {
    checkRevisionName(revision);
    const k = this.#known.get(revision);
    return k !== undefined && existsSync(k) ? k : this.cache.path(revision);
  }

  /** Stores a file a gateway sent (checked against its name); false when it was there already. */
  receive(revision: string, bytes: Uint8Array): boolean {
    const inUse = new Set([...this.#loaded, ...this.served().map((s) => s.revision)]);
    return this.cache.put(revision, bytes, inUse);
  }

  /** The candidate file of `revision` for a variant: the active one's own file, else the node's copy. */
  candidate(model: string, variant: string, revision: string): CandidateFile {
    checkRevisionName(revision);
    const m = this.#rt.repository.models.get(model);
    if (m === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    const v = m.variants.get(variant);
    if (v === undefined)
      throw new SlogateError(
        'SLOGATE_ERR_VARIANT_NOT_FOUND',
        `model '${model}' has no variant '${variant.slice(0, 64)}'`,
      );
    if (`sha256:${v.sha256}` === revision) return { model, variant, revision, path: v.path, sizeBytes: v.sizeBytes };
    const path = this.fileOf(revision);
    return { model, variant, revision, path, sizeBytes: statSync(path).size };
  }

  #active(c: CandidateFile): string {
    return `sha256:${this.#rt.repository.variant(c.model, c.variant).sha256}`;
  }

  /** The load gate on every worker of this node; throws the gate's error, the candidate dropped. */
  async load(c: CandidateFile) {
    const loads = await this.#rt.revisions.load(c);
    const verdict = judgeLoad(loads, this.#rt.signature(c.model));
    if (!verdict.passed) {
      if (this.#active(c) !== c.revision) await this.#rt.revisions.unload(c);
      this.#loaded.delete(c.revision);
      throw new SlogateError(verdict.code ?? 'SLOGATE_ERR_MODEL_LOAD', verdict.detail);
    }
    this.#loaded.add(c.revision);
    return { revision: c.revision, detail: verdict.detail, signature: loads[0]?.signature };
  }

  /** Loads first (a no-op when loaded), so a variant never names a revision its workers do not hold; then switches. */
  async activate(c: CandidateFile): Promise<{ active: string; previous: string }> {
    const previous = this.#active(c);
    if (previous !== c.revision) {
      await this.load(c);
      this.#remember();
      // The accuracy measured on the gateway belongs to the gateway's engine; the node plans nothing with it.
      await this.#rt.revisions.activate(c, undefined, undefined);
      this.#remember();
    }
    this.#loaded.delete(c.revision);
    return { active: c.revision, previous };
  }

  async unload(c: CandidateFile): Promise<void> {
    if (this.#active(c) === c.revision)
      throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${c.revision} is active on this node: not unloaded`);
    await this.#rt.revisions.unload(c);
    this.#loaded.delete(c.revision);
  }

  signature(model: string): ModelSignature {
    return this.#rt.signature(model);
  }

  /** One batch on a named revision (a deploy gate's), queued behind the node's serving batches. */
  run(c: CandidateFile, inputs: WireTensor[], rows: number): Promise<WireTensor[]> {
    return this.#rt.revisions.run(c, inputs, rows);
  }

  #remember(): void {
    for (const m of this.#rt.repository.models.values())
      for (const v of m.variants.values()) this.#known.set(`sha256:${v.sha256}`, v.path);
  }
}
