// From per-request records to the numbers bench reports, per route and overall, plus a per-second timeline for the
// plots. Pure: the same records always give the same summary (tests pin the arithmetic on hand-computed cases).
//
// Every offered request ends in exactly one class, so offered = completed + shed + failed:
//   completed  HTTP 200 (on time when latency from the scheduled send <= its deadline, else late)
//   shed       refused at admission (rejected: any 429; 503 shed / queue full / not ready / draining / without a code)
//              or dropped from a queue after admission (503 SLOGATE_ERR_DEADLINE_UNREACHABLE)
//   failed     everything else: other statuses, and no answer at all (connection error, client timeout)
// Admitted = offered - rejected, so attainment over admitted still counts queue drops, late answers and failures.
import { Histogram, type LatencySummary, round3 } from './histogram.js';
import type { RunRecords } from './records.js';

export type Outcome = 'completed' | 'rejected' | 'dropped' | 'failed';

const REJECT_503 = new Set([
  'SLOGATE_ERR_SHED',
  'SLOGATE_ERR_QUEUE_FULL',
  'SLOGATE_ERR_NOT_READY',
  'SLOGATE_ERR_SHUTTING_DOWN',
]);

export function classify(status: number, code: string): Outcome {
  if (status === 200) return 'completed';
  if (status === 429) return 'rejected';
  if (status === 503) {
    if (code === 'SLOGATE_ERR_DEADLINE_UNREACHABLE') return 'dropped';
    if (code === '' || REJECT_503.has(code)) return 'rejected';
  }
  return 'failed';
}

export interface AccuracySummary {
  /** Answers whose output could be scored against the eval label. */
  readonly scored: number;
  readonly correct: number;
  readonly correctOnTime: number;
  /** correct / scored: how good the answers were. */
  readonly answerAccuracy: number | null;
  /** correct on-time answers / offered: what the caller actually got. */
  readonly effectiveAccuracy: number | null;
}

export interface RouteSummary {
  readonly route: string;
  readonly deadlineMs: number | null;
  readonly offered: number;
  readonly completed: number;
  readonly onTime: number;
  readonly late: number;
  readonly shed: number;
  readonly rejected: number;
  readonly dropped: number;
  readonly failed: number;
  readonly admitted: number;
  /** Non-200 outcomes by "STATUS CODE" (status 0: no answer). */
  readonly shedBy: Readonly<Record<string, number>>;
  readonly failedBy: Readonly<Record<string, number>>;
  readonly offeredRps: number | null;
  readonly throughputRps: number | null;
  readonly goodputRps: number | null;
  /** Latency of completed requests, from the scheduled send time. */
  readonly latency: LatencySummary;
  readonly attainment: { readonly overOffered: number | null; readonly overAdmitted: number | null };
  readonly accuracy: AccuracySummary;
  /** 200 answers per served variant (model_version; "(none)" when the server names none). */
  readonly variants: Readonly<Record<string, number>>;
}

export interface TimelinePoint {
  /** Start of the second, s from the start of the run. */
  readonly t: number;
  readonly offered: number;
  readonly completed: number;
  readonly onTime: number;
  readonly shed: number;
  readonly failed: number;
  readonly correctOnTime: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly variants: Readonly<Record<string, number>>;
}

export interface LagSummary {
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly boundMs: number;
  /** False when the sender's p99 lag exceeded the bound: the run measured the sender, not the server. */
  readonly ok: boolean;
}

export interface RunSummary {
  readonly durationS: number;
  readonly overall: RouteSummary;
  readonly routes: readonly RouteSummary[];
  /** Null for closed loops (no schedule to lag behind). */
  readonly lag: LagSummary | null;
  readonly timeline: readonly TimelinePoint[];
}

class Acc {
  offered = 0;
  completed = 0;
  onTime = 0;
  rejected = 0;
  dropped = 0;
  failed = 0;
  scored = 0;
  correct = 0;
  correctOnTime = 0;
  readonly hist = new Histogram();
  readonly shedBy = new Map<string, number>();
  readonly failedBy = new Map<string, number>();
  readonly variants = new Map<string, number>();
  readonly deadlines: number[] = [];

  add(rec: RunRecords, i: number): void {
    this.offered++;
    this.deadlines.push(rec.deadlineMs[i] as number);
    const status = rec.status[i] as number;
    const code = rec.codes.names[rec.code[i] as number] ?? '';
    const outcome = classify(status, code);
    if (outcome === 'completed') {
      const lat = rec.latencyMs[i] as number;
      const onTime = lat <= (rec.deadlineMs[i] as number);
      this.completed++;
      this.hist.record(lat);
      if (onTime) this.onTime++;
      const variant = rec.variants.names[rec.variant[i] as number] || '(none)';
      bump(this.variants, variant);
      const c = rec.correct[i] as number;
      if (c >= 0) {
        this.scored++;
        if (c === 1) {
          this.correct++;
          if (onTime) this.correctOnTime++;
        }
      }
      return;
    }
    const key = `${status} ${code || '-'}`;
    if (outcome === 'rejected') this.rejected++;
    else if (outcome === 'dropped') this.dropped++;
    else this.failed++;
    bump(outcome === 'failed' ? this.failedBy : this.shedBy, key);
  }

  summary(route: string, durationS: number): RouteSummary {
    const shed = this.rejected + this.dropped;
    const admitted = this.offered - this.rejected;
    const rate = (x: number) => (durationS > 0 ? round3(x / durationS) : null);
    const ratio = (a: number, b: number) => (b > 0 ? round6(a / b) : null);
    this.deadlines.sort((a, b) => a - b);
    return {
      route,
      deadlineMs:
        this.deadlines.length > 0 ? (this.deadlines[Math.floor((this.deadlines.length - 1) / 2)] as number) : null,
      offered: this.offered,
      completed: this.completed,
      onTime: this.onTime,
      late: this.completed - this.onTime,
      shed,
      rejected: this.rejected,
      dropped: this.dropped,
      failed: this.failed,
      admitted,
      shedBy: Object.fromEntries([...this.shedBy].sort()),
      failedBy: Object.fromEntries([...this.failedBy].sort()),
      offeredRps: rate(this.offered),
      throughputRps: rate(this.completed),
      goodputRps: rate(this.onTime),
      latency: this.hist.summary(),
      attainment: { overOffered: ratio(this.onTime, this.offered), overAdmitted: ratio(this.onTime, admitted) },
      accuracy: {
        scored: this.scored,
        correct: this.correct,
        correctOnTime: this.correctOnTime,
        answerAccuracy: ratio(this.correct, this.scored),
        // Only meaningful when every answer could be scored.
        effectiveAccuracy:
          this.scored > 0 && this.scored === this.completed ? ratio(this.correctOnTime, this.offered) : null,
      },
      variants: Object.fromEntries([...this.variants].sort((a, b) => b[1] - a[1])),
    };
  }
}

export interface SummarizeOptions {
  readonly durationMs: number;
  /** Largest acceptable p99 send lag; omit for closed loops. */
  readonly lagBoundMs?: number | undefined;
}

export function summarize(rec: RunRecords, o: SummarizeOptions): RunSummary {
  const durationS = o.durationMs / 1000;
  const all = new Acc();
  const perRoute = rec.routes.map(() => new Acc());
  const seconds = Math.max(1, Math.ceil(o.durationMs / 1000));
  const perSecond = Array.from({ length: seconds }, () => new Acc());
  const lag = new Histogram();
  for (let i = 0; i < rec.n; i++) {
    all.add(rec, i);
    perRoute[rec.route[i] as number]?.add(rec, i);
    const s = Math.min(seconds - 1, Math.max(0, Math.floor((rec.atMs[i] as number) / 1000)));
    perSecond[s]?.add(rec, i);
    const l = rec.lagMs[i] as number;
    if (!Number.isNaN(l)) lag.record(Math.max(0, l));
  }
  const timeline: TimelinePoint[] = perSecond.map((a, t) => ({
    t,
    offered: a.offered,
    completed: a.completed,
    onTime: a.onTime,
    shed: a.rejected + a.dropped,
    failed: a.failed,
    correctOnTime: a.correctOnTime,
    p50Ms: round3(a.hist.quantileMs(0.5)),
    p99Ms: round3(a.hist.quantileMs(0.99)),
    variants: Object.fromEntries(a.variants),
  }));
  let lagSummary: LagSummary | null = null;
  if (o.lagBoundMs !== undefined) {
    const p99 = lag.quantileMs(0.99);
    lagSummary = {
      p50Ms: round3(lag.quantileMs(0.5)),
      p99Ms: round3(p99),
      maxMs: round3(lag.maxMs),
      boundMs: o.lagBoundMs,
      ok: lag.count === 0 || p99 <= o.lagBoundMs,
    };
  }
  return {
    durationS,
    overall: all.summary('*', durationS),
    routes: perRoute.map((a, k) => a.summary(rec.routes[k] as string, durationS)),
    lag: lagSummary,
    timeline,
  };
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
