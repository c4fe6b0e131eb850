// The model store: every revision of every variant, named by the sha256 of its bytes, kept on disk across restarts
// with the state of each (gating, active, retired, rejected), its gate results and a history of who changed what, when
// and why. Files live under blobs/sha256/<hex> (names never become paths); the state is one JSON file replaced
// atomically, so a crash leaves the old state or the new one. Knows nothing of HTTP, routes or gates' logic.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SlogateError } from '../core/errors.js';
import { variantKey } from '../core/types.js';
import { syncDirectory, writeFileAtomic } from './atomic-file.js';

export const REVISION_PREFIX = 'sha256:';
const RevisionId = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** History entries kept in the state file; older ones are dropped first. */
export const HISTORY_LIMIT = 1000;

const GateResultSchema = z.strictObject({
  gate: z.string().min(1),
  passed: z.boolean(),
  detail: z.string(),
  /** The gate's headline number (the accuracy measured, the slowdown), where it has one. */
  value: z.number().optional(),
  at: z.string(),
});
// canary: passed its gates, in a rollout beside the active revision; rolled-back: a rollout judged it and stopped it.
const RevisionStateSchema = z.enum(['gating', 'active', 'retired', 'rejected', 'canary', 'rolled-back']);
const RevisionRecordSchema = z.strictObject({
  revision: RevisionId,
  sizeBytes: z.number().int().min(0),
  addedAt: z.string(),
  source: z.string(),
  state: RevisionStateSchema,
  gates: z.array(GateResultSchema),
});
const VariantRecordSchema = z.strictObject({
  active: RevisionId.optional(),
  revisions: z.array(RevisionRecordSchema),
});
const HistoryEntrySchema = z.strictObject({
  at: z.string(),
  model: z.string(),
  variant: z.string(),
  action: z.enum(['add', 'activate', 'reject', 'rollback', 'canary', 'rolled-back']),
  revision: RevisionId,
  previous: RevisionId.optional(),
  who: z.string(),
  why: z.string(),
});
const StoreStateSchema = z.strictObject({
  version: z.literal(1),
  variants: z.record(z.string(), VariantRecordSchema),
  history: z.array(HistoryEntrySchema),
});

export type GateResult = z.infer<typeof GateResultSchema>;
export type RevisionState = z.infer<typeof RevisionStateSchema>;
export type RevisionRecord = z.infer<typeof RevisionRecordSchema>;
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;
type StoreState = z.infer<typeof StoreStateSchema>;
type VariantRecord = z.infer<typeof VariantRecordSchema>;

export interface ModelStoreOptions {
  /** Revisions kept per variant besides the active one; older ones and their files are deleted. */
  readonly keepRevisions: number;
  /** Largest file accepted as a revision. */
  readonly maxFileBytes: number;
  /** Wall clock (ms since the epoch) for the recorded times. */
  readonly wallNow?: () => number;
}

/** Who asked for a change and why, recorded in the history. */
export interface Change {
  readonly who: string;
  readonly why: string;
}

export interface AddResult {
  readonly revision: string;
  readonly path: string;
  /** The bytes are the variant's active revision already: nothing changed. */
  readonly unchanged: boolean;
}

export function revisionOf(bytes: Uint8Array): string {
  return REVISION_PREFIX + createHash('sha256').update(bytes).digest('hex');
}

export class ModelStore {
  readonly dir: string;
  readonly #options: ModelStoreOptions;
  readonly #wallNow: () => number;
  #state: StoreState;
  /** Revisions were dropped from the state: their files go once the state without them is on disk. */
  #pendingDeletes = false;

  private constructor(dir: string, options: ModelStoreOptions, state: StoreState) {
    this.dir = dir;
    this.#options = options;
    this.#wallNow = options.wallNow ?? Date.now;
    this.#state = state;
  }

  /** Opens the store at `dir` (created on first write); a state file that cannot be read is an error, never empty. */
  static open(dir: string, options: ModelStoreOptions): ModelStore {
    const store = new ModelStore(dir, options, readState(join(dir, 'state.json')));
    store.#checkActiveFiles();
    store.#rejectInterrupted();
    return store;
  }

  /** The file of the variant's active revision, if the store has one. */
  activeFile(model: string, variant: string): string | undefined {
    const active = this.#state.variants[variantKey(model, variant)]?.active;
    return active === undefined ? undefined : this.fileOf(active);
  }

  activeRevision(model: string, variant: string): string | undefined {
    return this.#state.variants[variantKey(model, variant)]?.active;
  }

  /** The number the named gate recorded on a revision (the accuracy it measured), if any. */
  gateValue(model: string, variant: string, revision: string, gate: string): number | undefined {
    const r = this.#state.variants[variantKey(model, variant)]?.revisions.find((x) => x.revision === revision);
    const g = r?.gates.findLast((x) => x.gate === gate && x.passed);
    return g?.value;
  }

  /** Every variant the store knows, with its revisions (for metrics). */
  variants(): { model: string; variant: string; revisions: readonly RevisionRecord[] }[] {
    return Object.entries(this.#state.variants).map(([key, v]) => {
      const [model = '', variant = ''] = key.split('/');
      return { model, variant, revisions: v.revisions };
    });
  }

  fileOf(revision: string): string {
    return join(this.dir, 'blobs', 'sha256', revision.slice(REVISION_PREFIX.length));
  }

  /** The variant's revisions, oldest first, and its history, newest last. */
  describe(model: string, variant: string): { active: string | undefined; revisions: readonly RevisionRecord[] } {
    const v = this.#state.variants[variantKey(model, variant)];
    return { active: v?.active, revisions: v?.revisions ?? [] };
  }

  history(model?: string): readonly HistoryEntry[] {
    return model === undefined ? this.#state.history : this.#state.history.filter((h) => h.model === model);
  }

  /** Stores `bytes` as a new revision in state `gating` (or finds it stored); the active file again is a no-op. */
  add(model: string, variant: string, bytes: Uint8Array, source: string, change: Change): AddResult {
    checkName('model', model);
    checkName('variant', variant);
    if (bytes.byteLength > this.#options.maxFileBytes)
      throw new SlogateError(
        'SLOGATE_ERR_REVISION_TOO_LARGE',
        `${model}/${variant}: ${bytes.byteLength} bytes is over store.maxFileBytes (${this.#options.maxFileBytes})`,
      );
    const revision = revisionOf(bytes);
    const record = this.#variant(model, variant);
    const path = this.fileOf(revision);
    if (record.active === revision) return { revision, path, unchanged: true };
    const busy = record.revisions.find((r) => r.state === 'gating' || r.state === 'canary');
    if (busy !== undefined)
      throw new SlogateError(
        'SLOGATE_ERR_DEPLOY_IN_PROGRESS',
        `${model}/${variant}: revision ${busy.revision} is still being ${busy.state === 'gating' ? 'gated' : 'rolled out'}`,
      );
    this.#writeBlob(path, bytes);
    const known = record.revisions.find((r) => r.revision === revision);
    if (known !== undefined) {
      known.state = 'gating';
      known.gates = [];
    } else {
      record.revisions.push({
        revision,
        sizeBytes: bytes.byteLength,
        addedAt: this.#now(),
        source,
        state: 'gating',
        gates: [],
      });
    }
    this.#log(model, variant, 'add', revision, change);
    this.#prune(record);
    this.#save();
    return { revision, path, unchanged: false };
  }

  /** Records one gate's result on a revision. */
  recordGate(model: string, variant: string, revision: string, result: Omit<GateResult, 'at'>): void {
    this.#revision(model, variant, revision).gates.push({ ...result, at: this.#now() });
    this.#save();
  }

  /** Makes `revision` the active one; the previous active becomes `retired`. */
  activate(
    model: string,
    variant: string,
    revision: string,
    change: Change,
    action: 'activate' | 'rollback' = 'activate',
  ): void {
    const record = this.#variant(model, variant);
    const next = this.#revision(model, variant, revision);
    if (next.state === 'rejected')
      throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${model}/${variant}: ${revision} failed its gates`);
    const previous = record.active;
    for (const r of record.revisions) if (r.state === 'active') r.state = 'retired';
    next.state = 'active';
    record.active = revision;
    this.#log(model, variant, action, revision, change, previous);
    this.#prune(record);
    this.#save();
  }

  /** Marks a revision as failed; the active one is untouched. */
  reject(model: string, variant: string, revision: string, change: Change): void {
    const r = this.#revision(model, variant, revision);
    if (r.state === 'active')
      throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${model}/${variant}: ${revision} is active`);
    r.state = 'rejected';
    this.#log(model, variant, 'reject', revision, change);
    this.#prune(this.#variant(model, variant));
    this.#save();
  }

  /** A revision that passed its gates starts a rollout (`canary`), or one in a rollout is stopped (`rolled-back`). */
  markRollout(model: string, variant: string, revision: string, state: 'canary' | 'rolled-back', change: Change): void {
    const r = this.#revision(model, variant, revision);
    if (r.state === 'active')
      throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${model}/${variant}: ${revision} is active`);
    r.state = state;
    this.#log(model, variant, state, revision, change);
    this.#save();
  }

  /** The revision a rollback returns to: `to` if given, else the most recently retired one. */
  rollbackTarget(model: string, variant: string, to?: string): string {
    const record = this.#variant(model, variant);
    if (to !== undefined) {
      const r = this.#revision(model, variant, to);
      if (r.state === 'rejected' || r.state === 'gating' || r.state === 'canary' || r.state === 'rolled-back')
        throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${model}/${variant}: ${to} is ${r.state}`);
      return to;
    }
    const last = lastRetired(this.#state.history, model, variant, record);
    if (last === undefined)
      throw new SlogateError('SLOGATE_ERR_REVISION_NOT_FOUND', `${model}/${variant}: no earlier revision to return to`);
    return last;
  }

  #variant(model: string, variant: string): VariantRecord {
    const key = variantKey(model, variant);
    let record = this.#state.variants[key];
    if (record === undefined) {
      record = { revisions: [] };
      this.#state.variants[key] = record;
    }
    return record;
  }

  #revision(model: string, variant: string, revision: string): RevisionRecord {
    const r = this.#state.variants[variantKey(model, variant)]?.revisions.find((x) => x.revision === revision);
    if (r === undefined)
      throw new SlogateError('SLOGATE_ERR_REVISION_NOT_FOUND', `${model}/${variant} has no revision ${revision}`);
    return r;
  }

  /** Keeps the active revision and the newest `keepRevisions` others; deletes files no revision refers to. */
  #prune(record: VariantRecord): void {
    const others = record.revisions.filter((r) => r.revision !== record.active);
    const drop = new Set(others.slice(0, Math.max(0, others.length - this.#options.keepRevisions)));
    if (drop.size === 0) return;
    record.revisions = record.revisions.filter((r) => !drop.has(r));
    this.#pendingDeletes = true;
  }

  #save(): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(join(this.dir, 'state.json'), `${JSON.stringify(this.#state, null, 2)}\n`);
    if (this.#pendingDeletes) this.#deleteUnreferenced();
  }

  /** Deletes blob files no revision refers to, after the state that drops them is on disk. */
  #deleteUnreferenced(): void {
    this.#pendingDeletes = false;
    const dir = join(this.dir, 'blobs', 'sha256');
    if (!existsSync(dir)) return;
    const kept = new Set<string>();
    for (const v of Object.values(this.#state.variants))
      for (const r of v.revisions) kept.add(r.revision.slice(REVISION_PREFIX.length));
    for (const file of readdirSync(dir)) if (!kept.has(file)) rmSync(join(dir, file), { force: true });
    syncDirectory(dir);
  }

  #writeBlob(path: string, bytes: Uint8Array): void {
    if (existsSync(path)) return;
    mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    writeFileAtomic(path, bytes, 0o444);
  }

  #log(model: string, variant: string, action: HistoryEntry['action'], revision: string, c: Change, previous?: string) {
    const entry: HistoryEntry = { at: this.#now(), model, variant, action, revision, who: c.who, why: c.why };
    if (previous !== undefined) entry.previous = previous;
    this.#state.history.push(entry);
    if (this.#state.history.length > HISTORY_LIMIT)
      this.#state.history.splice(0, this.#state.history.length - HISTORY_LIMIT);
  }

  /**
   * A revision left `gating` by a crash or restart never finished its gates: it is rejected, not retried. One left in
   * a rollout (`canary`) is rolled back: its evidence was in memory; the active revision never changed.
   */
  #rejectInterrupted(): void {
    let changed = false;
    for (const [key, v] of Object.entries(this.#state.variants))
      for (const r of v.revisions.filter((x) => x.state === 'canary')) {
        const [model = '', variant = ''] = key.split('/');
        r.state = 'rolled-back';
        this.#log(model, variant, 'rolled-back', r.revision, { who: 'slogate', why: 'rollout aborted by a restart' });
        changed = true;
      }
    for (const [key, v] of Object.entries(this.#state.variants))
      for (const r of v.revisions.filter((x) => x.state === 'gating')) {
        const [model = '', variant = ''] = key.split('/');
        r.state = 'rejected';
        r.gates.push({ gate: 'complete', passed: false, detail: 'interrupted by a restart', at: this.#now() });
        this.#log(model, variant, 'reject', r.revision, { who: 'slogate', why: 'gates interrupted by a restart' });
        this.#prune(v);
        changed = true;
      }
    if (changed) this.#save();
  }

  #checkActiveFiles(): void {
    for (const [key, v] of Object.entries(this.#state.variants))
      if (v.active !== undefined && !existsSync(this.fileOf(v.active)))
        throw new SlogateError(
          'SLOGATE_ERR_STORE',
          `model store ${this.dir}: ${key}'s active file ${v.active} is missing`,
        );
  }

  #now(): string {
    return new Date(this.#wallNow()).toISOString();
  }
}

function checkName(kind: string, name: string): void {
  if (!NAME.test(name))
    throw new SlogateError(
      'SLOGATE_ERR_INVALID_NAME',
      `${kind} name ${JSON.stringify(name.slice(0, 64))} must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'`,
    );
}

function readState(path: string): StoreState {
  if (!existsSync(path)) return { version: 1, variants: {}, history: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_STORE', `model store ${path} cannot be read: ${(err as Error).message}`);
  }
  const parsed = StoreStateSchema.safeParse(raw);
  if (!parsed.success)
    throw new SlogateError(
      'SLOGATE_ERR_STORE',
      `model store ${path} is not a slogate store state: ${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return parsed.data;
}

/** The revision most recently replaced as active that is still kept and not rejected. */
function lastRetired(history: readonly HistoryEntry[], model: string, variant: string, record: VariantRecord) {
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i] as HistoryEntry;
    if (h.model !== model || h.variant !== variant || h.previous === undefined) continue;
    if (h.previous === record.active) continue;
    const r = record.revisions.find((x) => x.revision === h.previous);
    if (r !== undefined && r.state === 'retired') return r.revision;
  }
  return undefined;
}
