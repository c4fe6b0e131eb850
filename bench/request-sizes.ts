// Requests of several sizes (rows) against a running server at low load, rows taken from the model's eval set: which
// variant answered, accuracy on those rows, client and Server-Timing latency. With --versions, the same pinned to each
// version (idle latency per variant). Sequential, one request at a time, --interval-ms apart; stops by itself.
//   node dist/bench/request-sizes.js --url http://127.0.0.1:8000 --route digits --rows 1,8,32,64 --requests 200
import { parseArgs } from 'node:util';
import { readEvalSet } from '../runtime/eval-set.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8000' },
    route: { type: 'string', default: 'digits' },
    rows: { type: 'string', default: '1,8,32,64' },
    requests: { type: 'string', default: '200' },
    'interval-ms': { type: 'string', default: '20' },
    eval: { type: 'string', default: 'models/digits/eval.bin' },
    input: { type: 'string', default: 'pixels' },
    versions: { type: 'string' },
  },
});
const evalSet = readEvalSet(values.eval);
const requests = Math.min(10_000, Number(values.requests));
const intervalMs = Number(values['interval-ms']);
let cursor = 0;

interface Row {
  readonly label: string;
  readonly rows: number;
  n: number;
  ok: number;
  bestEffort: number;
  correct: number;
  scored: number;
  readonly status: Map<number, number>;
  readonly variants: Map<string, number>;
  readonly clientMs: number[];
  readonly serverMs: number[];
  readonly queueMs: number[];
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

function body(rows: number): { json: string; labels: number[] } {
  const f = evalSet.features;
  const data: number[] = [];
  const labels: number[] = [];
  for (let r = 0; r < rows; r++) {
    const i = cursor++ % evalSet.count;
    labels.push(evalSet.labels[i] as number);
    for (let k = 0; k < f; k++) data.push(evalSet.data[i * f + k] as number);
  }
  const json = JSON.stringify({ inputs: [{ name: values.input, shape: [rows, f], datatype: 'FP32', data }] });
  return { json, labels };
}

const timing = (h: string | null, name: string) =>
  Number(h?.match(new RegExp(`${name};dur=([0-9.]+)`))?.[1] ?? Number.NaN);

async function one(row: Row, path: string): Promise<void> {
  const { json, labels } = body(row.rows);
  const t0 = performance.now();
  const res = await fetch(`${values.url}${path}`, {
    method: 'POST',
    body: json,
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  row.clientMs.push(performance.now() - t0);
  row.n++;
  row.status.set(res.status, (row.status.get(res.status) ?? 0) + 1);
  if (res.status !== 200) return;
  row.ok++;
  const st = res.headers.get('server-timing');
  row.serverMs.push(timing(st, 'total'));
  row.queueMs.push(timing(st, 'queue'));
  const out = JSON.parse(text) as {
    model_version: string;
    parameters?: Record<string, unknown>;
    outputs: { shape: number[]; data: number[] }[];
  };
  if (out.parameters?.slogate_best_effort === true) row.bestEffort++;
  row.variants.set(out.model_version, (row.variants.get(out.model_version) ?? 0) + 1);
  const o = out.outputs[0];
  if (o === undefined) return;
  const classes = o.shape[1] ?? 1;
  labels.forEach((label, r) => {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if ((o.data[r * classes + c] as number) > (o.data[r * classes + best] as number)) best = c;
    row.scored++;
    if (best === label) row.correct++;
  });
}

async function run(label: string, rows: number, path: string): Promise<Row> {
  const row: Row = {
    label,
    rows,
    n: 0,
    ok: 0,
    bestEffort: 0,
    correct: 0,
    scored: 0,
    status: new Map(),
    variants: new Map(),
    clientMs: [],
    serverMs: [],
    queueMs: [],
  };
  for (let i = 0; i < requests; i++) {
    await one(row, path);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return row;
}

const rowsList = values.rows.split(',').map(Number);
const targets: { label: string; path: string }[] =
  values.versions === undefined
    ? [{ label: values.route, path: `/v2/models/${values.route}/infer` }]
    : values.versions
        .split(',')
        .map((v) => ({ label: `${values.route}/${v}`, path: `/v2/models/${values.route}/versions/${v}/infer` }));
console.log(
  '| target | rows | answered | statuses | variants | accuracy | best-effort | client p50 / p99 ms | server total p50 / p99 ms | queue p50 ms |',
);
console.log('| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const t of targets)
  for (const rows of rowsList) {
    await run(t.label, rows, t.path); // warm-up pass, not reported
    const r = await run(t.label, rows, t.path);
    const fmt = (x: number) => x.toFixed(2);
    const mix = [...r.variants].map(([v, c]) => `${v} ${((100 * c) / Math.max(1, r.ok)).toFixed(0)}%`).join(', ');
    const statuses = [...r.status].map(([s, c]) => `${s}: ${c}`).join(', ');
    const acc = r.scored === 0 ? 'n/a' : `${((100 * r.correct) / r.scored).toFixed(2)}%`;
    console.log(
      `| ${t.label} | ${rows} | ${r.ok}/${r.n} | ${statuses} | ${mix} | ${acc} | ${r.bestEffort} | ${fmt(quantile(r.clientMs, 0.5))} / ${fmt(quantile(r.clientMs, 0.99))} | ${fmt(quantile(r.serverMs, 0.5))} / ${fmt(quantile(r.serverMs, 0.99))} | ${fmt(quantile(r.queueMs, 0.5))} |`,
    );
  }
