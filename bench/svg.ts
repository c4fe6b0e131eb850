// Hand-written SVG charts (no plotting library, no browser): line charts with an optional right axis, reference
// lines and markers, and stacked area charts for shares over time. Plain strings; any viewer or GitHub renders them.

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
];

export type Point = readonly [number, number | null];

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
  readonly color?: string;
  readonly dashed?: boolean;
  readonly markers?: boolean;
  /** Draw the connecting line (default true); false with markers gives a scatter plot. */
  readonly lines?: boolean;
  /** Plot against the right axis. */
  readonly right?: boolean;
}

export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly y2Label?: string;
  readonly series: readonly Series[];
  /** Horizontal lines on the left axis (e.g. the SLO). */
  readonly hlines?: readonly { readonly y: number; readonly label: string; readonly color?: string }[];
  readonly yMin?: number;
  readonly yMax?: number;
  readonly xMin?: number;
  readonly xMax?: number;
  readonly width?: number;
  readonly height?: number;
}

const M = { left: 64, right: 64, top: 36, bottom: 48 };
const LEGEND_ROW = 16;

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** 1-2-5 tick positions covering [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (max <= min) max = min + 1;
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const last = Math.floor(max / step + 1e-9);
  for (let k = Math.ceil(min / step - 1e-9); k <= last; k++) out.push(Number((k * step).toPrecision(12)) + 0);
  return out;
}

const fmtTick = (v: number) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(3)}`);
const n2 = (v: number) => v.toFixed(1);

function extent(values: readonly number[], fallback: [number, number]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? fallback : [Math.min(...finite), Math.max(...finite)];
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    // The accessible name (screen readers, tooltips), the same as the visible heading.
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

interface Axes {
  readonly x: (v: number) => number;
  readonly y: (v: number) => number;
  readonly parts: string[];
}

function axes(
  w: number,
  h: number,
  xr: [number, number],
  yr: [number, number],
  labels: { x: string; y: string },
  legendRows: number,
  y2?: { range: [number, number]; label: string },
): Axes & { y2?: (v: number) => number } {
  const plotBottom = h - M.bottom - legendRows * LEGEND_ROW;
  const x = (v: number) => M.left + ((v - xr[0]) / (xr[1] - xr[0] || 1)) * (w - M.left - M.right);
  const y = (v: number) => plotBottom - ((v - yr[0]) / (yr[1] - yr[0] || 1)) * (plotBottom - M.top);
  const parts: string[] = [];
  for (const t of niceTicks(yr[0], yr[1])) {
    if (t < yr[0] || t > yr[1]) continue;
    parts.push(`<line x1="${M.left}" x2="${w - M.right}" y1="${n2(y(t))}" y2="${n2(y(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${n2(y(t) + 4)}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(xr[0], xr[1], 8)) {
    if (t < xr[0] || t > xr[1]) continue;
    parts.push(`<line x1="${n2(x(t))}" x2="${n2(x(t))}" y1="${plotBottom}" y2="${plotBottom + 4}" stroke="#333"/>`);
    parts.push(`<text x="${n2(x(t))}" y="${plotBottom + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${w - M.left - M.right}" height="${plotBottom - M.top}" fill="none" stroke="#333"/>`,
  );
  parts.push(
    `<text x="${(M.left + w - M.right) / 2}" y="${plotBottom + 34}" text-anchor="middle">${escapeXml(labels.x)}</text>`,
  );
  parts.push(
    `<text transform="translate(16 ${(M.top + plotBottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(labels.y)}</text>`,
  );
  if (y2 === undefined) return { x, y, parts };
  const r2 = y2.range;
  const yy2 = (v: number) => plotBottom - ((v - r2[0]) / (r2[1] - r2[0] || 1)) * (plotBottom - M.top);
  for (const t of niceTicks(r2[0], r2[1])) {
    if (t < r2[0] || t > r2[1]) continue;
    parts.push(`<text x="${w - M.right + 6}" y="${n2(yy2(t) + 4)}" fill="#777">${fmtTick(t)}</text>`);
  }
  parts.push(
    `<text transform="translate(${w - 14} ${(M.top + plotBottom) / 2}) rotate(90)" text-anchor="middle" fill="#777">${escapeXml(y2.label)}</text>`,
  );
  return { x, y, y2: yy2, parts };
}

function legend(
  w: number,
  h: number,
  items: readonly { name: string; color: string; dashed?: boolean | undefined; area?: boolean; dot?: boolean }[],
): { rows: number; parts: string[] } {
  // Flow layout: item width from its text (about 6.2 px per character at 11 px), wrapping at the plot's width.
  const placed: { x: number; row: number }[] = [];
  let x = M.left;
  let row = 0;
  for (const it of items) {
    const width = 34 + Math.ceil(it.name.length * 6.2);
    if (x > M.left && x + width > w - M.right) {
      row++;
      x = M.left;
    }
    placed.push({ x, row });
    x += width;
  }
  const rows = items.length === 0 ? 0 : row + 1;
  const parts = items.map((it, i) => {
    const p = placed[i] as { x: number; row: number };
    const y = h - (rows - p.row) * LEGEND_ROW + 4;
    const mark = it.area
      ? `<rect x="${p.x}" y="${y - 8}" width="18" height="10" fill="${it.color}" fill-opacity="0.8"/>`
      : it.dot
        ? `<circle cx="${p.x + 9}" cy="${y - 3}" r="3.5" fill="${it.color}"/>`
        : `<line x1="${p.x}" x2="${p.x + 18}" y1="${y - 3}" y2="${y - 3}" stroke="${it.color}" stroke-width="2"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`;
    return `${mark}<text x="${p.x + 24}" y="${y}">${escapeXml(it.name)}</text>`;
  });
  return { rows, parts };
}

function pathOf(points: readonly Point[], x: (v: number) => number, y: (v: number) => number): string {
  let d = '';
  let pen = false;
  for (const [px, py] of points) {
    if (py === null || !Number.isFinite(py) || !Number.isFinite(px)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${n2(x(px))} ${n2(y(py))}`;
    pen = true;
  }
  return d;
}

export function lineChart(spec: LineChartSpec): string {
  const w = spec.width ?? 760;
  const h = spec.height ?? 380;
  const colored = spec.series.map((s, i) => ({ ...s, color: s.color ?? (PALETTE[i % PALETTE.length] as string) }));
  const items = [
    ...colored.map((s) => ({ name: s.name, color: s.color, dashed: s.dashed, dot: s.lines === false })),
    ...(spec.hlines ?? []).map((l) => ({ name: l.label, color: l.color ?? '#000', dashed: true })),
  ];
  const lg = legend(w, h, items);
  const left = colored.filter((s) => s.right !== true);
  const right = colored.filter((s) => s.right === true);
  const ys = (ss: typeof colored) => ss.flatMap((s) => s.points.map((p) => p[1] ?? Number.NaN));
  const xr = extent(
    colored.flatMap((s) => s.points.map((p) => p[0])),
    [0, 1],
  );
  const x0 = spec.xMin ?? xr[0];
  // Markers at the edge would be cut in half: leave a little room.
  const pad = colored.some((s) => s.markers === true) ? (xr[1] - x0) * 0.04 : 0;
  const xRange: [number, number] = [x0, spec.xMax ?? (xr[1] > x0 ? xr[1] + pad : x0 + 1)];
  const [, yHi] = extent([...ys(left), ...(spec.hlines ?? []).map((l) => l.y)], [0, 1]);
  const yRange: [number, number] = [spec.yMin ?? 0, spec.yMax ?? (yHi > 0 ? yHi * 1.08 : 1)];
  const [, y2Hi] = extent(ys(right), [0, 1]);
  const ax = axes(
    w,
    h,
    xRange,
    yRange,
    { x: spec.xLabel, y: spec.yLabel },
    lg.rows,
    right.length > 0 ? { range: [0, y2Hi > 0 ? y2Hi * 1.08 : 1], label: spec.y2Label ?? '' } : undefined,
  );
  const body = [...ax.parts];
  for (const l of spec.hlines ?? []) {
    if (l.y < yRange[0] || l.y > yRange[1]) continue;
    body.push(
      `<line x1="${M.left}" x2="${w - M.right}" y1="${n2(ax.y(l.y))}" y2="${n2(ax.y(l.y))}" stroke="${l.color ?? '#000'}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    );
  }
  for (const s of colored) {
    const y = s.right === true && ax.y2 !== undefined ? ax.y2 : ax.y;
    const clipped = s.points.map(
      ([px, py]): Point => [
        px,
        py === null ? null : Math.min(py, s.right === true ? Number.POSITIVE_INFINITY : yRange[1]),
      ],
    );
    const d = pathOf(clipped, ax.x, y);
    if (d !== '' && s.lines !== false)
      body.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.right === true ? 1.2 : 1.8}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    if (s.markers === true) {
      for (const [px, py] of clipped)
        if (py !== null && Number.isFinite(py))
          body.push(`<circle cx="${n2(ax.x(px))}" cy="${n2(y(py))}" r="3" fill="${s.color}"/>`);
    }
  }
  body.push(...lg.parts);
  return frame(w, h, spec.title, body);
}

export interface StackedAreaSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xs: readonly number[];
  /** One layer per category; values per x (normalised to shares of the column total). */
  readonly layers: readonly { readonly name: string; readonly values: readonly number[] }[];
  readonly xMin?: number;
  readonly xMax?: number;
  readonly width?: number;
  readonly height?: number;
}

export function stackedAreaChart(spec: StackedAreaSpec): string {
  const w = spec.width ?? 760;
  const h = spec.height ?? 340;
  const items = spec.layers.map((l, i) => ({ name: l.name, color: PALETTE[i % PALETTE.length] as string, area: true }));
  const lg = legend(w, h, items);
  const xs = spec.xs;
  const xr: [number, number] = [
    spec.xMin ?? xs[0] ?? 0,
    spec.xMax ?? (xs.length > 1 ? (xs[xs.length - 1] as number) : (xs[0] ?? 0) + 1),
  ];
  const ax = axes(w, h, xr, [0, 1], { x: spec.xLabel, y: spec.yLabel }, lg.rows);
  const totals = xs.map((_, j) => spec.layers.reduce((a, l) => a + (l.values[j] ?? 0), 0));
  const base = xs.map(() => 0);
  const body = [...ax.parts];
  spec.layers.forEach((l, i) => {
    const lower = base.slice();
    const upper = xs.map((_, j) =>
      (totals[j] as number) > 0
        ? (base[j] as number) + (l.values[j] ?? 0) / (totals[j] as number)
        : (base[j] as number),
    );
    upper.forEach((u, j) => {
      base[j] = u;
    });
    // Columns without answers are gaps, not zero shares.
    let d = '';
    let run: number[] = [];
    // Each x is the centre of a column (a second): draw the share flat across the column.
    const half = xs.length > 1 ? ((xs[1] as number) - (xs[0] as number)) / 2 : 0.5;
    const edges = (j: number, level: readonly number[]) => [
      `${n2(ax.x((xs[j] as number) - half))} ${n2(ax.y(level[j] as number))}`,
      `${n2(ax.x((xs[j] as number) + half))} ${n2(ax.y(level[j] as number))}`,
    ];
    const flush = () => {
      if (run.length === 0) return;
      const top = run.flatMap((j) => edges(j, upper));
      const bottom = run
        .slice()
        .reverse()
        .flatMap((j) => edges(j, lower).reverse());
      d += `M${top.join(' L')} L${bottom.join(' L')} Z`;
      run = [];
    };
    xs.forEach((_, j) => {
      if ((totals[j] as number) > 0) run.push(j);
      else flush();
    });
    flush();
    if (d !== '') body.push(`<path d="${d}" fill="${items[i]?.color}" fill-opacity="0.8" stroke="none"/>`);
  });
  body.push(...lg.parts);
  return frame(w, h, spec.title, body);
}
