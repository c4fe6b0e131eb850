// `npm run bench:cold`: what a fresh server's first requests cost, with the start-up warm-up (server.warmup) and
// without it. Each run starts `slogate serve` as a child process on a free loopback port, waits for it to be ready,
// sends N requests one at a time to the first route (so nothing queues and the client's own pace does not matter),
// and reads the gateway's own share of each answer from Server-Timing: total - queue - infer. Runs alternate
// between the two modes; the report gives, per mode, the median over runs of each span's median overhead, its ratio
// to the same run's last 100 requests, and the time from spawn to ready.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { startSlogateProcess } from './server-process.js';
import { randomBody } from './v2-requests.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    config: { type: 'string', default: join(ROOT, 'slogate.yaml') },
    requests: { type: 'string', default: '300' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});
function intArg(name: string, raw: string, min: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`bench:cold: --${name} must be an integer >= ${min}, got ${raw}\n`);
    process.exit(2);
  }
  return v;
}
const N = intArg('requests', values.requests, 150);
const RUNS = intArg('runs', values.runs, 1);
const config = loadConfigFile(values.config, process.env);
const route = Object.keys(config.routes)[0];
if (route === undefined) throw new Error('the config has no route');

const SPANS: readonly [string, number, number][] = [
  ['requests 1-10', 0, 10],
  ['11-50', 10, 50],
  ['51-100', 50, 100],
  ['last 100', N - 100, N],
];

interface Run {
  readonly readyMs: number;
  /** Median gateway overhead (ms) per span. */
  readonly spans: Record<string, number>;
}

const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? Number.NaN : (s[Math.floor(s.length / 2)] as number);
};

async function run(warm: boolean): Promise<Run> {
  const t0 = performance.now();
  const server = await startSlogateProcess({
    ...config,
    server: {
      ...config.server,
      logLevel: 'warn',
      ...(warm ? {} : { warmup: { ...config.server.warmup, requests: 0 } }),
    },
  } as unknown as Record<string, unknown>);
  const readyMs = performance.now() - t0;
  try {
    const meta = (await (await fetch(`${server.url}/v2/models/${route}`)).json()) as {
      inputs: { name: string; shape: number[] }[];
    };
    const input = meta.inputs[0];
    if (input === undefined) throw new Error(`route ${route} has no inputs`);
    const body = randomBody(input, 1, 'binary');
    const overhead: number[] = [];
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${server.url}/v2/models/${route}/infer`, {
        method: 'POST',
        body: body.body,
        headers: body.headers,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`request ${i}: HTTP ${res.status}`);
      const t = Object.fromEntries(
        (res.headers.get('server-timing') ?? '').split(',').map((p) => {
          const [k, v] = p.trim().split(';dur=');
          return [k, Number(v)];
        }),
      ) as Record<string, number>;
      overhead.push((t.total ?? Number.NaN) - (t.queue ?? 0) - (t.infer ?? 0));
    }
    return { readyMs, spans: Object.fromEntries(SPANS.map(([name, a, b]) => [name, median(overhead.slice(a, b))])) };
  } finally {
    await server.stop();
  }
}

const runs: Record<'warm' | 'cold', Run[]> = { warm: [], cold: [] };
for (let i = 0; i < RUNS; i++) {
  for (const mode of ['cold', 'warm'] as const) {
    const r = await run(mode === 'warm');
    runs[mode].push(r);
    process.stderr.write(
      `run ${i + 1}/${RUNS} ${mode}: ${SPANS.map(([n]) => `${n} ${(r.spans[n] as number).toFixed(3)} ms`).join(', ')}\n`,
    );
  }
}

const summary = Object.fromEntries(
  (['cold', 'warm'] as const).map((mode) => {
    const rs = runs[mode];
    const spans = Object.fromEntries(SPANS.map(([n]) => [n, median(rs.map((r) => r.spans[n] as number))]));
    const ratios = Object.fromEntries(
      SPANS.map(([n]) => [n, median(rs.map((r) => (r.spans[n] as number) / (r.spans['last 100'] as number)))]),
    );
    return [mode, { overheadMs: spans, ratioToSteady: ratios, readyMs: median(rs.map((r) => r.readyMs)) }];
  }),
) as Record<
  'warm' | 'cold',
  { overheadMs: Record<string, number>; ratioToSteady: Record<string, number>; readyMs: number }
>;

const lines = [
  `Gateway overhead (total - queue - infer, from Server-Timing) of a fresh server's first ${N} requests to \`${route}\`, sent one at a time; median of ${RUNS} runs per mode.`,
  '',
  `| warm-up | ${SPANS.map(([n]) => n).join(' | ')} | spawn to ready |`,
  `| --- | ${SPANS.map(() => '---').join(' | ')} | --- |`,
  ...(['cold', 'warm'] as const).map(
    (mode) =>
      `| ${mode === 'warm' ? `on (${config.server.warmup.requests} requests)` : 'off'} | ${SPANS.map(([n]) => `${(summary[mode].overheadMs[n] as number).toFixed(3)} ms (${(summary[mode].ratioToSteady[n] as number).toFixed(2)}x)`).join(' | ')} | ${(summary[mode].readyMs / 1000).toFixed(2)} s |`,
  ),
];
mkdirSync(values.out, { recursive: true });
writeFileSync(
  join(values.out, 'cold-start.json'),
  `${JSON.stringify({ requests: N, runs: RUNS, route, summary, raw: runs }, null, 2)}\n`,
);
writeFileSync(join(values.out, 'cold-start.md'), `${lines.join('\n')}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
