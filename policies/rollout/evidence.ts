// The evidence of one rollout over one window (a phase or a step): requests, errors and service time per batch size
// of the active revision and of the candidate, and the shadow comparisons. Bounded: the newest samples per size.
import type { SplitBatch, SplitShadow } from '../../runtime/traffic-split.js';
import type { LatencyAtBatch, RevisionEvidence, ShadowEvidence } from './decide-rollout.js';

/** The code of a candidate batch a runtime node could not run: the node, not the revision, failed it. */
const UNSERVABLE_CODE = 'SLOGATE_ERR_NODE_REVISION';

/** Service-time samples kept per revision and batch size (the newest). */
export const MAX_SAMPLES_PER_SIZE = 512;

class RevisionWindow {
  requests = 0;
  errors = 0;
  readonly #samples = new Map<number, number[]>();

  add(rows: number, requests: number, computeMs: number | undefined, failed: boolean): void {
    this.requests += requests;
    if (failed) this.errors += requests;
    if (computeMs === undefined || failed) return;
    let list = this.#samples.get(rows);
    if (list === undefined) {
      list = [];
      this.#samples.set(rows, list);
    }
    list.push(computeMs);
    if (list.length > MAX_SAMPLES_PER_SIZE) list.shift();
  }

  view(): RevisionEvidence {
    const latency: LatencyAtBatch[] = [];
    for (const [rows, list] of [...this.#samples].sort((a, b) => a[0] - b[0])) {
      const sorted = [...list].sort((a, b) => a - b);
      const at = (q: number) =>
        sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))] as number;
      latency.push({
        rows,
        samples: sorted.length,
        p50Ms: at(0.5),
        p75Ms: at(0.75),
        p90Ms: at(0.9),
        p95Ms: at(0.95),
        p99Ms: at(0.99),
      });
    }
    return { requests: this.requests, errors: this.errors, latency };
  }
}

export class RolloutEvidence {
  #candidate = new RevisionWindow();
  #active = new RevisionWindow();
  /** The active revision's last window with enough requests: the baseline while a 100% step leaves it none. */
  #baseline: RevisionEvidence | undefined;
  #shadow = { comparedRows: 0, agreedRows: 0, dropped: 0 };
  #minRequests: number;
  /** The first replica that could not run the candidate (a runtime node without it), in its words. */
  #unservable: string | undefined;

  constructor(minRequests: number) {
    this.#minRequests = minRequests;
  }

  onBatch(b: SplitBatch): void {
    const w = b.role === 'candidate' ? this.#candidate : this.#active;
    w.add(b.rows, b.requests, b.computeMs, b.error !== undefined);
    if (b.role === 'candidate') this.#noteUnservable(b.error, b.detail);
  }

  #noteUnservable(error: string | undefined, detail: string | undefined): void {
    if (error === UNSERVABLE_CODE && this.#unservable === undefined) this.#unservable = detail ?? error;
  }

  /** A shadow run is candidate evidence: its errors and its service time at the active batch's size. */
  onShadow(s: SplitShadow): void {
    if (s.outcome === 'dropped') {
      this.#shadow.dropped++;
      return;
    }
    this.#shadow.comparedRows += s.rows;
    this.#shadow.agreedRows += s.agreedRows;
    this.#candidate.add(s.rows, s.rows, s.computeMs, s.error !== undefined);
    this.#noteUnservable(s.error, s.detail);
  }

  /** A new window (the next step): the active revision's evidence is kept as the baseline if it had enough. */
  reset(): void {
    if (this.#active.requests >= this.#minRequests) this.#baseline = this.#active.view();
    this.#candidate = new RevisionWindow();
    this.#active = new RevisionWindow();
    this.#shadow = { comparedRows: 0, agreedRows: 0, dropped: 0 };
  }

  candidate(): RevisionEvidence {
    return this.#candidate.view();
  }

  active(): RevisionEvidence {
    const now = this.#active.view();
    return now.requests < this.#minRequests && this.#baseline !== undefined ? this.#baseline : now;
  }

  shadow(): ShadowEvidence {
    return { ...this.#shadow };
  }

  /** Why a replica could not run the candidate, if one could not (kept across windows: it ends the rollout). */
  unservable(): string | undefined {
    return this.#unservable;
  }
}
