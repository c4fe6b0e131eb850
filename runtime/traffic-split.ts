// Where each batch of a variant runs while it has a candidate revision: on the active revision or the candidate (the
// canary share), and which active batches are also run on the candidate (the shadow share). Shares are kept exact by
// error diffusion rather than drawn at random, so a 5% step sends one batch in twenty, not "about" that.
import { variantKey } from '../core/types.js';

export type RevisionRole = 'active' | 'candidate';

/** What one batch run on either revision tells the rollout. */
export interface SplitBatch {
  readonly model: string;
  readonly variant: string;
  readonly role: RevisionRole;
  readonly rows: number;
  readonly requests: number;
  /** Replica busy time plus the hop; undefined when the batch failed. */
  readonly computeMs: number | undefined;
  /** The error code when the batch failed on this revision. */
  readonly error?: string | undefined;
  /** The error's message (bounded), when it failed. */
  readonly detail?: string | undefined;
}

/** One shadow run: the candidate's answer compared with the active one's, or why it did not run. */
export interface SplitShadow {
  readonly model: string;
  readonly variant: string;
  readonly outcome: 'compared' | 'dropped';
  readonly rows: number;
  /** Rows where the candidate agreed (same argmax of the first output). */
  readonly agreedRows: number;
  readonly computeMs: number | undefined;
  readonly activeComputeMs: number | undefined;
  readonly error?: string | undefined;
  /** The error's message (bounded), when it failed. */
  readonly detail?: string | undefined;
}

export interface SplitListener {
  onBatch?(b: SplitBatch): void;
  onShadow?(s: SplitShadow): void;
}

/** Shares like 0.1 do not add up to exactly 1 in binary: a credit this close counts as whole. */
const EPSILON = 1e-9;

interface Entry {
  readonly revision: string;
  canaryShare: number;
  shadowShare: number;
  canaryCredit: number;
  shadowCredit: number;
}

export class TrafficSplit {
  readonly #entries = new Map<string, Entry>();
  readonly #listeners: SplitListener[] = [];

  /** Sets (or clears, with `undefined`) the variant's candidate and its shares (0..1). */
  set(model: string, variant: string, c: { revision: string; canaryShare: number; shadowShare: number } | undefined) {
    const key = variantKey(model, variant);
    if (c === undefined) {
      this.#entries.delete(key);
      return;
    }
    const prev = this.#entries.get(key);
    const keep = prev?.revision === c.revision;
    this.#entries.set(key, {
      revision: c.revision,
      canaryShare: clamp01(c.canaryShare),
      shadowShare: clamp01(c.shadowShare),
      canaryCredit: keep ? (prev as Entry).canaryCredit : 0,
      shadowCredit: keep ? (prev as Entry).shadowCredit : 0,
    });
  }

  /** The candidate of a variant with its shares, if it has one. */
  get(model: string, variant: string): { revision: string; canaryShare: number; shadowShare: number } | undefined {
    const e = this.#entries.get(variantKey(model, variant));
    return e === undefined
      ? undefined
      : { revision: e.revision, canaryShare: e.canaryShare, shadowShare: e.shadowShare };
  }

  /** The candidate revision the next batch of the variant runs on, or undefined for the active one. */
  pickCanary(model: string, variant: string): string | undefined {
    const e = this.#entries.get(variantKey(model, variant));
    if (e === undefined || e.canaryShare <= 0) return undefined;
    e.canaryCredit += e.canaryShare;
    if (e.canaryCredit < 1 - EPSILON) return undefined;
    e.canaryCredit -= 1;
    return e.revision;
  }

  /** The candidate an active batch should also run on (capacity permitting), or undefined. */
  pickShadow(model: string, variant: string): string | undefined {
    const e = this.#entries.get(variantKey(model, variant));
    if (e === undefined || e.shadowShare <= 0) return undefined;
    e.shadowCredit += e.shadowShare;
    if (e.shadowCredit < 1 - EPSILON) return undefined;
    e.shadowCredit -= 1;
    return e.revision;
  }

  listen(l: SplitListener): void {
    this.#listeners.push(l);
  }

  reportBatch(b: SplitBatch): void {
    if (!this.#entries.has(variantKey(b.model, b.variant))) return;
    for (const l of this.#listeners) l.onBatch?.(b);
  }

  reportShadow(s: SplitShadow): void {
    for (const l of this.#listeners) l.onShadow?.(s);
  }
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/** Rows of two outputs of `rows` rows that have the same argmax. */
export function agreeingRows(a: ArrayLike<number>, b: ArrayLike<number>, rows: number): number {
  if (rows <= 0 || a.length !== b.length || a.length % rows !== 0) return 0;
  const width = a.length / rows;
  let agreed = 0;
  for (let r = 0; r < rows; r++) if (argmax(a, r * width, width) === argmax(b, r * width, width)) agreed++;
  return agreed;
}

function argmax(x: ArrayLike<number>, from: number, width: number): number {
  let best = 0;
  for (let i = 1; i < width; i++) if ((x[from + i] as number) > (x[from + best] as number)) best = i;
  return best;
}
