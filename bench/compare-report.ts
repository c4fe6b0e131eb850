// The report of `slogate bench compare`: one Markdown table per load (policy rows x SLO metrics), the capacity
// search, the raw limit and the server problems seen; SVG plots of latency, attainment, effective accuracy and
// variant mix over time (or against offered load for the sweep).
import type { CompareResult, CompareRow, CompareRun } from './compare.js';
import { policySlug } from './policies.js';
import { ms, num, pct, table, timePoints, variantMix } from './report.js';
import { lineChart, type Series, stackedAreaChart } from './svg.js';

/** Whether a run's numbers may be shown: valid, or lag explicitly allowed. */
const usable = (run: CompareRun | undefined, allowLag: boolean) =>
  run?.result !== null && run?.result !== undefined && (run.result.valid || allowLag);

function runLabels(r: CompareResult): string[] {
  const seen: string[] = [];
  for (const row of r.rows) for (const run of row.runs) if (!seen.includes(run.label)) seen.push(run.label);
  return seen;
}

function runCells(run: CompareRun | undefined, route: string, allowLag: boolean): string[] {
  const blank = Array.from({ length: 11 }, () => '');
  if (run === undefined) return ['–', ...blank.slice(1)];
  if (run.result === null) return [`error: ${run.error ?? 'unknown'}`, ...blank.slice(1)];
  const res = run.result;
  if (!res.valid && !allowLag)
    return [`invalid: sender lag p99 ${res.summary.lag?.p99Ms} ms > ${res.summary.lag?.boundMs} ms`, ...blank.slice(1)];
  const s = res.summary.overall;
  const srv = res.server?.[route];
  const mark = res.valid ? '' : ' (lag!)';
  return [
    `${num(s.offeredRps, 1)}${mark}`,
    pct(s.attainment.overOffered),
    pct(s.attainment.overAdmitted),
    ms(s.latency.p99Ms),
    num(s.goodputRps, 1),
    pct(s.accuracy.effectiveAccuracy),
    variantMix(s.variants),
    String(s.shed),
    String(s.failed),
    srv?.switches === null || srv?.switches === undefined ? '–' : String(srv.switches),
    srv?.costPer1000Answers === null || srv?.costPer1000Answers === undefined
      ? '–'
      : srv.costPer1000Answers.toPrecision(3),
  ];
}

export function renderCompareMarkdown(r: CompareResult, command: string, allowLag: boolean): string {
  const m = r.meta;
  const out: string[] = [
    `# slogate bench compare: ${m.scenario}${m.quick ? ' (quick)' : ''}`,
    '',
    '```sh',
    command,
    '```',
    '',
  ];
  out.push(
    `Route \`${m.route}\` of ${m.config}: SLO p99 ${m.sloP99Ms} ms${m.minAccuracy === null ? '' : `, min accuracy ${m.minAccuracy}`}. ` +
      `Base rate C = ${m.baseRate}/s (${m.baseRateSource}). Every contender gets the same schedule (seed ${m.seed}), ${m.protocol} protocol, ` +
      `${m.plan.durationS} s per run after ${m.plan.warmupS} s of warm-up. Host: ${m.host}. Started ${m.startedAt}, took ${m.wallS} s.`,
    '',
  );
  out.push(
    table(
      ['variant', 'accuracy (eval set)', 'p50 ms at batch 1', 'best fixed batching'],
      Object.entries(r.variants).map(([v, x]) => [
        v,
        pct(x.accuracy),
        ms(x.p50MsAtBatch1),
        x.best.maxBatch === 1 ? 'batch 1' : `max ${x.best.maxBatch} rows, wait ${x.best.maxQueueDelayMs} ms`,
      ]),
      [false, true, true, false],
    ),
    '',
  );
  const head = [
    'policy',
    'offered/s',
    'attainment / offered',
    'attainment / admitted',
    'p99 ms',
    'goodput/s',
    'effective accuracy',
    'variant mix',
    'shed',
    'failed',
    'switches',
    'cost / 1k answers',
  ];
  const right = [false, true, true, true, true, true, true, false, true, true, true, true];
  const served = r.rows.filter((row) => row.kind !== 'raw');
  for (const label of runLabels(r)) {
    const first = served.flatMap((row) => row.runs).find((x) => x.label === label && x.result !== null);
    out.push(`## ${label}${first?.result ? `: ${first.result.meta.load}` : ''}`, '');
    out.push(
      table(
        head,
        served.map((row) => [
          row.label,
          ...runCells(
            row.runs.find((x) => x.label === label),
            m.route,
            allowLag,
          ),
        ]),
        right,
      ),
      '',
    );
  }
  const searched = r.rows.filter((row) => row.capacityRps !== null);
  if (searched.length > 0) {
    out.push(
      '## Capacity at SLO',
      '',
      `Highest Poisson rate with p99 <= ${m.sloP99Ms} ms and attainment >= 99% (bounded search: doubling, then bisection).`,
      '',
    );
    out.push(
      table(
        ['policy', 'capacity/s', 'probes (rate: result)'],
        searched.map((row) => [
          row.label,
          num(row.capacityRps, 1),
          row.probes.map((p) => `${p.rate}: ${p.ok ? 'ok' : 'miss'}`).join(', '),
        ]),
        [false, true, false],
      ),
      '',
    );
  }
  const raws = r.rows.filter((row) => row.raw !== undefined);
  if (raws.length > 0) {
    out.push('## Raw limit: onnxruntime in-process, no HTTP', '');
    out.push(
      table(
        [
          'variant',
          'best batch',
          'rows/s at best',
          'batch p50 ms at best',
          'rows/s at batch 1',
          'all batch sizes (rows/s)',
        ],
        raws.map((row) => {
          const x = row.raw as NonNullable<CompareRow['raw']>;
          return [
            x.variant,
            String(x.best.batch),
            String(x.best.rowsPerS),
            ms(x.best.p50Ms),
            String(x.points.find((p) => p.batch === 1)?.rowsPerS ?? '–'),
            x.points.map((p) => `${p.batch}: ${p.rowsPerS}`).join(', '),
          ];
        }),
        [false, true, true, true, true, false],
      ),
      '',
    );
  }
  const notes = r.rows.flatMap((row) => [
    ...row.notes.map((n) => `${row.label}: ${n}`),
    ...row.runs.flatMap((run) => (run.result?.problems ?? []).map((p) => `${row.label}, ${run.label}: ${p}`)),
  ]);
  if (notes.length > 0) out.push('## Problems seen', '', ...notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

export function comparePlots(r: CompareResult, allowLag: boolean): Record<string, string> {
  const P = r.meta.sloP99Ms;
  const served = r.rows.filter((row) => row.kind !== 'raw');
  const plots: Record<string, string> = {};
  const title = `${r.meta.route} ${r.meta.scenario}${r.meta.quick ? ' (quick)' : ''}`;
  if (r.meta.scenario === 'sweep') {
    const curve = (f: (run: CompareRun) => number | null): Series[] =>
      served.map((row) => ({
        name: row.label,
        markers: true,
        points: row.runs
          .filter((run) => usable(run, allowLag))
          .map((run) => [run.result?.summary.overall.offeredRps ?? 0, f(run)] as [number, number | null]),
      }));
    const pick = (run: CompareRun) => run.result?.summary.overall;
    plots.attainment = lineChart({
      title: `${title}: SLO attainment against offered load`,
      xLabel: 'offered load (req/s)',
      yLabel: 'attainment over offered',
      series: curve((run) => pick(run)?.attainment.overOffered ?? null),
      yMin: 0,
      yMax: 1.02,
      xMin: 0,
    });
    plots.accuracy = lineChart({
      title: `${title}: effective accuracy against offered load`,
      xLabel: 'offered load (req/s)',
      yLabel: 'correct on-time answers / offered',
      series: curve((run) => pick(run)?.accuracy.effectiveAccuracy ?? null),
      yMin: 0,
      yMax: 1.02,
      xMin: 0,
    });
    plots.p99 = lineChart({
      title: `${title}: p99 latency against offered load`,
      xLabel: 'offered load (req/s)',
      yLabel: 'p99 of completed requests (ms)',
      series: curve((run) => pick(run)?.latency.p99Ms ?? null),
      hlines: [{ y: P, label: `SLO ${P} ms` }],
      yMax: 4 * P,
      xMin: 0,
    });
    plots.goodput = lineChart({
      title: `${title}: goodput against offered load`,
      xLabel: 'offered load (req/s)',
      yLabel: 'on-time answers/s',
      series: curve((run) => pick(run)?.goodputRps ?? null),
      xMin: 0,
    });
    return plots;
  }
  const label = runLabels(r)[0];
  const runOf = (row: CompareRow) => row.runs.find((run) => run.label === label);
  const shown = served.filter((row) => usable(runOf(row), allowLag));
  const tl = (row: CompareRow) => runOf(row)?.result?.summary.timeline ?? [];
  const loadTl = shown[0] === undefined ? [] : tl(shown[0]);
  const seconds = Math.max(1, ...shown.map((row) => tl(row).length));
  const load: Series = {
    name: 'offered req/s',
    points: timePoints(loadTl, (p) => p.offered),
    right: true,
    color: '#999',
    dashed: true,
  };
  const perRow = (f: (p: (typeof loadTl)[number]) => number | null): Series[] =>
    shown.map((row) => ({ name: row.label, points: timePoints(tl(row), f) }));
  plots.latency = lineChart({
    title: `${title}: p99 latency over time`,
    xLabel: 'time (s)',
    yLabel: 'p99 from scheduled send (ms)',
    y2Label: 'offered load (req/s)',
    series: [...perRow((p) => p.p99Ms), load],
    hlines: [{ y: P, label: `SLO ${P} ms` }],
    yMax: 4 * P,
    xMin: 0,
    xMax: seconds,
  });
  plots.attainment = lineChart({
    title: `${title}: SLO attainment per second`,
    xLabel: 'time (s)',
    yLabel: 'on time / offered',
    y2Label: 'offered load (req/s)',
    series: [...perRow((p) => (p.offered > 0 ? p.onTime / p.offered : null)), load],
    yMin: 0,
    yMax: 1.02,
    xMin: 0,
    xMax: seconds,
  });
  plots.accuracy = lineChart({
    title: `${title}: effective accuracy per second`,
    xLabel: 'time (s)',
    yLabel: 'correct on-time answers / offered',
    y2Label: 'offered load (req/s)',
    series: [...perRow((p) => (p.offered > 0 ? p.correctOnTime / p.offered : null)), load],
    yMin: 0,
    yMax: 1.02,
    xMin: 0,
    xMax: seconds,
  });
  for (const row of shown) {
    const s = runOf(row)?.result?.summary;
    const names = Object.keys(s?.overall.variants ?? {});
    if (s === undefined || names.length < 2) continue;
    plots[`variants-${policySlug(row.id)}`] = stackedAreaChart({
      title: `${title}: variant mix of ${row.label}`,
      xLabel: 'time (s)',
      yLabel: 'share of answers',
      xs: s.timeline.map((p) => p.t + 0.5),
      layers: names.map((v) => ({ name: v, values: s.timeline.map((p) => p.variants[v] ?? 0) })),
      xMin: 0,
      xMax: s.timeline.length,
    });
  }
  return plots;
}
