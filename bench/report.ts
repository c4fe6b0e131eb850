// Turning a run into what people read: a Markdown report and SVG plots (latency over time with the SLO line and the
// load, the variant mix over time, attainment and effective accuracy against offered load), written beside the JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResult } from './run.js';
import type { RouteSummary, TimelinePoint } from './summary.js';
import { lineChart, type Series, stackedAreaChart } from './svg.js';

export const pct = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined ? '–' : `${(x * 100).toFixed(digits)}%`;
export const ms = (x: number | null | undefined) =>
  x === null || x === undefined ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1);
export const num = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined ? '–' : x.toFixed(digits);

/** "large 70%, tiny 30%" (most served first). */
export function variantMix(variants: Readonly<Record<string, number>>): string {
  const total = Object.values(variants).reduce((a, b) => a + b, 0);
  if (total === 0) return '–';
  return Object.entries(variants)
    .sort((a, b) => b[1] - a[1])
    .map(([v, n]) => `${v} ${((n / total) * 100).toFixed(n === total ? 0 : 1)}%`)
    .join(', ');
}

export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly boolean[] = [],
): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `| ${head.map((_, i) => (right[i] === true ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

function routeRows(r: BenchResult): RouteSummary[] {
  return r.summary.routes.length > 1 ? [...r.summary.routes, r.summary.overall] : [...r.summary.routes];
}

export function renderRunMarkdown(r: BenchResult, command?: string): string {
  const m = r.meta;
  const out: string[] = [`# slogate bench: ${m.load}`, ''];
  if (command !== undefined) out.push('```sh', command, '```', '');
  out.push(
    `${m.url}, ${m.protocol} protocol, ${m.inputs === 'eval' ? 'eval-set inputs (answers scored)' : 'random inputs'}, ${m.durationS} s (cap ${m.maxRequests} requests), ` +
      `warm-up ${m.warmupS} s, seed ${m.seed}, ${m.mode === 'open' ? `open loop (up to ${m.connections} connections)` : `closed loop (${m.connections} connections)`}. ` +
      `Host: ${m.host}. Started ${m.startedAt}.`,
    '',
  );
  if (!r.valid) out.push('**INVALID RUN**: the load generator fell behind its schedule.', '');
  const rows = routeRows(r);
  const name = (s: RouteSummary) => (s.route === '*' ? 'all' : s.route);
  out.push('## Load and outcomes', '');
  out.push(
    table(
      [
        'route',
        'deadline ms',
        'offered',
        'completed',
        'on time',
        'late',
        'shed',
        'failed',
        'offered/s',
        'throughput/s',
        'goodput/s',
      ],
      rows.map((s) => [
        name(s),
        num(s.deadlineMs, 1),
        String(s.offered),
        String(s.completed),
        String(s.onTime),
        String(s.late),
        String(s.shed),
        String(s.failed),
        num(s.offeredRps, 1),
        num(s.throughputRps, 1),
        num(s.goodputRps, 1),
      ]),
      [false, true, true, true, true, true, true, true, true, true, true],
    ),
    '',
  );
  out.push(`## Latency (completed requests, from the ${m.mode === 'open' ? 'scheduled ' : ''}send) and SLO`, '');
  out.push(
    table(
      [
        'route',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'attainment / offered',
        'attainment / admitted',
        'answer accuracy',
        'effective accuracy',
        'variant mix',
        'cost / 1k answers',
      ],
      rows.map((s) => {
        const srv = s.route === '*' ? undefined : r.server?.[s.route];
        return [
          name(s),
          ms(s.latency.p50Ms),
          ms(s.latency.p90Ms),
          ms(s.latency.p99Ms),
          ms(s.latency.p999Ms),
          ms(s.latency.maxMs),
          pct(s.attainment.overOffered),
          pct(s.attainment.overAdmitted),
          pct(s.accuracy.answerAccuracy),
          pct(s.accuracy.effectiveAccuracy),
          variantMix(s.variants),
          srv?.costPer1000Answers === null || srv?.costPer1000Answers === undefined
            ? '–'
            : srv.costPer1000Answers.toPrecision(3),
        ];
      }),
      [false, true, true, true, true, true, true, true, true, true, false, true],
    ),
    '',
  );
  const nonOk = rows.filter((s) => Object.keys(s.shedBy).length + Object.keys(s.failedBy).length > 0);
  if (nonOk.length > 0) {
    out.push('## Shed and failed, by status and error code', '');
    out.push(
      table(
        ['route', 'class', 'status code', 'requests'],
        nonOk.flatMap((s) => [
          ...Object.entries(s.shedBy).map(([k, n]) => [name(s), 'shed', k, String(n)]),
          ...Object.entries(s.failedBy).map(([k, n]) => [name(s), 'failed', k, String(n)]),
        ]),
        [false, false, false, true],
      ),
      '',
    );
  }
  if (r.server !== null) {
    out.push('## What the server counted (/metrics deltas)', '');
    out.push(
      table(
        ['route', 'cost', 'decision switches', 'SLO outcomes'],
        Object.entries(r.server).map(([route, s]) => [
          route,
          s.cost === null ? '–' : s.cost.toPrecision(4),
          s.switches === null ? '–' : String(s.switches),
          Object.entries(s.sloOutcomes)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '–',
        ]),
      ),
      '',
    );
  }
  const lag = r.summary.lag;
  out.push(
    '## Load generator',
    '',
    lag === null
      ? `Closed loop; bench used ${pct(r.sender.cpu, 0)} of a core.`
      : `Send lag p50 ${ms(lag.p50Ms)} ms, p99 ${ms(lag.p99Ms)} ms, max ${ms(lag.maxMs)} ms (bound ${lag.boundMs} ms: ${lag.ok ? 'kept' : 'EXCEEDED'}); ` +
          `peak ${r.sender.peakInflight} requests in flight; bench used ${pct(r.sender.cpu, 0)} of a core.`,
    '',
  );
  for (const p of r.problems) out.push(`- ${p}`);
  if (r.problems.length > 0) out.push('');
  return out.join('\n');
}

/** Per-second values plotted at the middle of their second. */
export const timePoints = (tl: readonly TimelinePoint[], f: (p: TimelinePoint) => number | null) =>
  tl.map((p): [number, number | null] => [p.t + 0.5, f(p)]);

/** The three plots of one run, by file suffix. */
export function runPlots(r: BenchResult, title: string): Record<string, string> {
  const tl = r.summary.timeline;
  const deadline = r.summary.overall.deadlineMs;
  const plots: Record<string, string> = {};
  plots.latency = lineChart({
    title: `${title}: latency over time`,
    xLabel: 'time (s)',
    yLabel: 'latency from scheduled send (ms)',
    y2Label: 'offered load (req/s)',
    series: [
      { name: 'p99', points: timePoints(tl, (p) => p.p99Ms) },
      { name: 'p50', points: timePoints(tl, (p) => p.p50Ms) },
      { name: 'offered req/s', points: timePoints(tl, (p) => p.offered), right: true, color: '#999', dashed: true },
    ],
    hlines: deadline === null ? [] : [{ y: deadline, label: `SLO ${deadline} ms`, color: '#000' }],
    xMin: 0,
    xMax: tl.length,
    yMax:
      deadline === null
        ? undefined
        : Math.max(deadline * 2, Math.min(deadline * 6, Math.max(...tl.map((p) => p.p99Ms ?? 0)) * 1.08)),
  });
  const names = Object.keys(r.summary.overall.variants);
  plots.variants = stackedAreaChart({
    title: `${title}: variant mix over time`,
    xLabel: 'time (s)',
    yLabel: 'share of answers',
    xs: tl.map((p) => p.t + 0.5),
    xMin: 0,
    xMax: tl.length,
    layers: names.map((v) => ({ name: v, values: tl.map((p) => p.variants[v] ?? 0) })),
  });
  const scored = r.summary.overall.accuracy.effectiveAccuracy !== null;
  const series: Series[] = [
    {
      name: 'SLO attainment (per second)',
      points: tl.filter((p) => p.offered > 0).map((p) => [p.offered, p.onTime / p.offered]),
      markers: true,
      lines: false,
    },
  ];
  if (scored)
    series.push({
      name: 'effective accuracy (per second)',
      points: tl.filter((p) => p.offered > 0).map((p) => [p.offered, p.correctOnTime / p.offered]),
      markers: true,
      lines: false,
    });
  plots.attainment = lineChart({
    title: `${title}: attainment${scored ? ' and effective accuracy' : ''} against offered load`,
    xLabel: 'offered load in that second (req/s)',
    yLabel: 'fraction of offered requests',
    series,
    yMin: 0,
    yMax: 1.02,
    xMin: 0,
  });
  return plots;
}

/** Writes NAME.json, NAME.md and NAME-<plot>.svg into dir; returns the paths. */
export function writeOutputs(
  dir: string,
  name: string,
  json: unknown,
  markdown: string,
  plots: Readonly<Record<string, string>>,
): string[] {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, `${name}.json`), join(dir, `${name}.md`)];
  writeFileSync(files[0] as string, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(files[1] as string, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  for (const [k, svg] of Object.entries(plots)) {
    const f = join(dir, `${name}-${k}.svg`);
    writeFileSync(f, svg);
    files.push(f);
  }
  return files;
}
