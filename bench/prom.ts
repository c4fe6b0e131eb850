// What the server says about a run, from its Prometheus /metrics scraped before and after: cost (slogate_cost_total),
// decision switches (slogate_decision_changes_total) and its own SLO accounting. Absent for servers without them.
import { request } from 'undici';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export interface Scrape {
  readonly samples: readonly Sample[];
  /** Metric names declared by `# TYPE` lines: a labelled counter never incremented has no sample, but is declared. */
  readonly declared: ReadonlySet<string>;
}

/** Parses the Prometheus text format (timestamps ignored). */
export function parsePrometheus(text: string): Scrape {
  const out: Sample[] = [];
  const declared = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) declared.add(line.split(' ')[2] ?? '');
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    const value = Number(
      m[3] === '+Inf' ? Number.POSITIVE_INFINITY : m[3] === '-Inf' ? Number.NEGATIVE_INFINITY : m[3],
    );
    out.push({ name: m[1] as string, labels, value });
  }
  return { samples: out, declared };
}

/** GET /metrics; undefined when the server has none (or it is not Prometheus text). */
export async function scrape(url: string): Promise<Scrape | undefined> {
  try {
    const res = await request(`${url}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    return res.statusCode === 200 ? parsePrometheus(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of a metric's samples whose labels include `match`; undefined when no sample matches. */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  match: Readonly<Record<string, string>> = {},
): number | undefined {
  let sum: number | undefined;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    sum = (sum ?? 0) + s.value;
  }
  return sum;
}

/** A variant's batches between two scrapes of slogate's /metrics. */
export interface Batches {
  readonly count: number;
  readonly rows: number;
  /** Those run on the gateway's main thread (runtime.inlineMaxMs). */
  readonly inline: number;
}

/** The batches of `variant` (model/variant) between the scrapes; undefined for a server without slogate's metrics. */
export function batchesIn(before: Scrape | undefined, after: Scrape | undefined, variant: string): Batches | undefined {
  if (before === undefined || after === undefined) return undefined;
  const delta = (name: string) =>
    (sumOf(after.samples, name, { variant }) ?? 0) - (sumOf(before.samples, name, { variant }) ?? 0);
  const count = delta('slogate_batch_size_count');
  if (count === 0 && sumOf(after.samples, 'slogate_batch_size_count') === undefined) return undefined;
  return { count, rows: delta('slogate_batch_size_sum'), inline: delta('slogate_inline_batches_total') };
}

export interface ServerCounters {
  /** Cost accrued during the run (pricing units). */
  readonly cost: number | null;
  readonly costByVariant: Readonly<Record<string, number>>;
  /** Decision changes of the route during the run. */
  readonly switches: number | null;
  /** The server's own SLO outcomes during the run (met, missed, shed, dropped). */
  readonly sloOutcomes: Readonly<Record<string, number>>;
}

/** Counter deltas of one route between two scrapes. */
export function counterDelta(
  beforeScrape: Scrape | undefined,
  afterScrape: Scrape | undefined,
  route: string,
): ServerCounters | undefined {
  if (beforeScrape === undefined || afterScrape === undefined) return undefined;
  const before = beforeScrape.samples;
  const after = afterScrape.samples;
  const d = (name: string, match: Record<string, string>) => {
    const a = sumOf(after, name, match);
    if (a === undefined) return afterScrape.declared.has(name) ? 0 : undefined;
    return a - (sumOf(before, name, match) ?? 0);
  };
  const labelValues = (name: string, label: string) =>
    [
      ...new Set(after.filter((s) => s.name === name && s.labels.route === route).map((s) => s.labels[label] ?? '')),
    ].sort();
  const costByVariant: Record<string, number> = {};
  for (const v of labelValues('slogate_cost_total', 'variant')) {
    const x = d('slogate_cost_total', { route, variant: v });
    if (x !== undefined && x > 0) costByVariant[v] = x;
  }
  const sloOutcomes: Record<string, number> = {};
  for (const o of labelValues('slogate_slo_requests_total', 'outcome')) {
    const x = d('slogate_slo_requests_total', { route, outcome: o });
    if (x !== undefined && x > 0) sloOutcomes[o] = x;
  }
  return {
    cost: d('slogate_cost_total', { route }) ?? null,
    costByVariant,
    switches: d('slogate_decision_changes_total', { route }) ?? null,
    sloOutcomes,
  };
}
