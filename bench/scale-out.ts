// `npm run bench:scale-out`: slogate scaled out on loopback. Mode `share` (default): dnsmasq names two runtime nodes
// (127.0.0.2 and 127.0.0.3 on one port, as pods behind a headless Service) and the same total open-loop load runs
// through two gateways reading the nodes' load reports, two gateways ignoring them (blind), and one gateway. Mode
// `processes`: `slogate serve --processes N` for each N, open-loop rates in turn, throughput at the SLO. Every server
// is a child process stopped by PID; every run is bounded; profiles are measured afresh into a temporary directory;
// markdown tables on stdout, JSON under bench/results/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { type Config, loadConfigFile } from '../core/config.js';
import { type EvalSet, readEvalSet } from '../runtime/eval-set.js';
import { LOAD_REPORT_HEADER, type NodeLoad, parseLoadReport } from '../runtime/load-report.js';
import { DnsServer } from '../test/support/dns-server.js';
import { type Scrape, scrape, sumOf } from './prom.js';
import { type BenchResult, runBench } from './run.js';
import { type ServerProcess, startSlogateProcess } from './server-process.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'share' },
    config: { type: 'string', default: join(ROOT, 'slogate.yaml') },
    route: { type: 'string' },
    'slo-ms': { type: 'string' },
    rate: { type: 'string', default: '300' },
    rates: { type: 'string', default: '200,400,600,800' },
    processes: { type: 'string', default: '1,2' },
    duration: { type: 'string', default: '20' },
    'node-workers': { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});

function num(name: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`bench:scale-out: --${name} must be a number in [${min}, ${max}], got ${raw}\n`);
    process.exit(2);
  }
  return v;
}

const DURATION_S = num('duration', values.duration, 3, 600);
const NODE_WORKERS = num('node-workers', values['node-workers'], 1, 64);
const SEED = num('seed', values.seed, 0, 2 ** 31);
const config = loadConfigFile(values.config, process.env);
const ROUTE = values.route ?? Object.keys(config.routes)[0];
const routeConfig = ROUTE === undefined ? undefined : config.routes[ROUTE];
if (ROUTE === undefined || routeConfig === undefined) throw new Error(`no route ${values.route ?? ''} in the config`);
const SLO_MS = values['slo-ms'] === undefined ? routeConfig.slo.p99Ms : num('slo-ms', values['slo-ms'], 1, 60_000);
const model = config.models[routeConfig.model];
const evalSet: EvalSet | undefined = model?.eval === undefined ? undefined : readEvalSet(model.eval);
const NAME = 'runtime.scale-out.test';
/** Profiles measured afresh by this run (once: later servers of the run read them), never an older run's. */
const CACHE_DIR = mkdtempSync(join(tmpdir(), 'slogate-scale-out-'));
const NODE_HOSTS = ['127.0.0.2', '127.0.0.3'] as const;

/** The config as a raw object for a child process: only the route under test (with the SLO asked for). */
function baseConfig(runtime: Record<string, unknown>): Record<string, unknown> {
  const c = structuredClone(config) as Config;
  return {
    ...c,
    server: { ...c.server, logLevel: 'warn' },
    runtime: { ...c.runtime, profile: { ...c.runtime.profile, cacheDir: CACHE_DIR }, ...runtime },
    routes: { [ROUTE as string]: { ...routeConfig, slo: { ...routeConfig?.slo, p99Ms: SLO_MS } } },
  } as unknown as Record<string, unknown>;
}

/** One open-loop run against `url` at `rate` (Poisson), for DURATION_S after a 3 s warm-up. */
function openRun(url: string, rate: number, seed: number, durationS = DURATION_S): Promise<BenchResult> {
  return runBench({
    url,
    route: ROUTE as string,
    mode: { kind: 'open', load: { kind: 'constant', rate, arrivals: 'poisson' } },
    protocol: 'binary',
    inputs: evalSet === undefined ? 'random' : 'eval',
    evalSet,
    durationS,
    maxRequests: 1_000_000,
    seed,
    sloMs: () => SLO_MS,
    warmupS: 3,
    maxConnections: 256,
  });
}

async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await request(`${url}/v2/health/ready`).catch(() => undefined);
    await r?.body.dump();
    if (r?.statusCode === 200) return;
    if (Date.now() > end) throw new Error(`${url} did not become ready`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** A port free on every node address. */
async function sharedFreePort(): Promise<number> {
  const free = (port: number, host: string) =>
    new Promise<number>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(-1));
      s.listen(port, host, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
  for (let tries = 0; tries < 20; tries++) {
    const port = await free(0, NODE_HOSTS[0]);
    if (port > 0 && (await free(port, NODE_HOSTS[1])) === port) return port;
  }
  throw new Error('no port free on both node addresses');
}

/** Samples each node's load report every `everyMs` until stop(): the largest queue seen. */
function sampleNodes(
  urls: readonly string[],
  everyMs: number,
): { stop: () => Promise<{ rows: number; waitMs: number }> } {
  let worst = { rows: 0, waitMs: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await Promise.all(
        urls.map(async (url) => {
          const r = await request(`${url}/v2/health/ready`).catch(() => undefined);
          await r?.body.dump();
          const p = parseLoadReport(r?.headers[LOAD_REPORT_HEADER] as string | undefined);
          if (p.ok) worst = maxLoad(worst, p.load);
        }),
      );
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return worst;
    },
  };
}

function maxLoad(w: { rows: number; waitMs: number }, l: NodeLoad): { rows: number; waitMs: number } {
  return { rows: Math.max(w.rows, l.queuedRows), waitMs: Math.max(w.waitMs, l.queueWaitMs) };
}

/** Sum of a counter over servers, after minus before. */
function delta(before: readonly (Scrape | undefined)[], after: readonly (Scrape | undefined)[], name: string): number {
  let d = 0;
  for (let i = 0; i < after.length; i++)
    d += (sumOf(after[i]?.samples ?? [], name) ?? 0) - (sumOf(before[i]?.samples ?? [], name) ?? 0);
  return d;
}

interface ShareRow {
  readonly run: string;
  readonly gateways: number;
  readonly offered: number;
  readonly onTime: number;
  readonly attainment: number;
  /** The worst gateway's p99 of completed requests. */
  readonly p99Ms: number;
  readonly shed: number;
  readonly nodeRefusals: number;
  readonly retries: number;
  readonly maxQueuedRows: number;
  readonly maxQueueWaitMs: number;
  readonly valid: boolean;
  /** Shed requests by "STATUS CODE", over the gateways. */
  readonly shedBy: Record<string, number>;
}

async function shareRun(
  label: string,
  gateways: number,
  loadReports: boolean,
  nodes: readonly ServerProcess[],
  dns: DnsServer,
  port: number,
  rate: number,
): Promise<ShareRow> {
  const gw = baseConfig({
    workers: 0,
    loadReports,
    replicas: [{ dns: NAME, port, resolver: dns.address, concurrency: NODE_WORKERS, resolveIntervalMs: 1000 }],
    health: { ...config.runtime.health, minReadySlots: NODE_WORKERS * nodes.length },
  });
  const started: ServerProcess[] = [];
  try {
    // One after the other: the first measures the profiles through the nodes, the others read its cache.
    for (let i = 0; i < gateways; i++) {
      const g = await startSlogateProcess(gw);
      started.push(g);
      await waitReady(g.url);
    }
    const urls = started.map((g) => g.url);
    const all = [...urls, ...nodes.map((n) => n.url)];
    const before = await Promise.all(all.map((u) => scrape(u)));
    const sampler = sampleNodes(
      nodes.map((n) => n.url),
      250,
    );
    const runs = await Promise.all(urls.map((u, i) => openRun(u, rate / gateways, SEED + 101 * i)));
    const queue = await sampler.stop();
    const after = await Promise.all(all.map((u) => scrape(u)));
    const g = urls.length;
    const offered = runs.reduce((n, r) => n + r.summary.overall.offered, 0);
    const onTime = runs.reduce((n, r) => n + r.summary.overall.onTime, 0);
    return {
      run: label,
      gateways,
      offered,
      onTime,
      attainment: onTime / Math.max(1, offered),
      p99Ms: Math.max(...runs.map((r) => r.summary.overall.latency.p99Ms ?? Number.NaN)),
      shed: runs.reduce((n, r) => n + r.summary.overall.shed, 0),
      nodeRefusals: delta(before.slice(g), after.slice(g), 'slogate_shed_total'),
      retries: delta(before.slice(0, g), after.slice(0, g), 'slogate_batch_retries_total'),
      maxQueuedRows: queue.rows,
      maxQueueWaitMs: queue.waitMs,
      valid: runs.every((r) => r.valid),
      shedBy: sumRecords(runs.map((r) => r.summary.overall.shedBy)),
    };
  } finally {
    await Promise.all(started.map((g) => g.stop()));
  }
}

async function share(): Promise<{ rows: ShareRow[]; table: string }> {
  const rate = num('rate', values.rate, 1, 100_000);
  const dns = new DnsServer();
  const nodes: ServerProcess[] = [];
  try {
    await dns.start({ [NAME]: [...NODE_HOSTS] });
    const port = await sharedFreePort();
    const nodeConfig = baseConfig({ workers: NODE_WORKERS, replicas: [] });
    // One after the other: the first measures its profile, the second reads its cache.
    for (const host of NODE_HOSTS)
      nodes.push(await startSlogateProcess(nodeConfig, { command: 'runtime', host, port }));
    const rows: ShareRow[] = [];
    rows.push(await shareRun('load reports', 2, true, nodes, dns, port, rate));
    rows.push(await shareRun('blind', 2, false, nodes, dns, port, rate));
    rows.push(await shareRun('one gateway', 1, true, nodes, dns, port, rate));
    const head =
      `Two runtime nodes (${NODE_WORKERS} worker each) found through dnsmasq; route ${ROUTE}, SLO ${SLO_MS} ms; ` +
      `${rate} req/s in total (Poisson, binary), ${DURATION_S} s per run.\n\n`;
    const table = markdown(
      [
        'run',
        'gateways',
        'offered',
        'on time',
        'attainment',
        'worst gateway p99 (ms)',
        'shed',
        'node refusals',
        'retries',
        'max node queue (rows)',
        'max node queue wait (ms)',
      ],
      rows.map((r) => [
        r.valid ? r.run : `${r.run} (sender lagged)`,
        String(r.gateways),
        String(r.offered),
        String(r.onTime),
        pct(r.attainment),
        r.p99Ms.toFixed(1),
        String(r.shed),
        String(r.nodeRefusals),
        String(r.retries),
        String(r.maxQueuedRows),
        r.maxQueueWaitMs.toFixed(1),
      ]),
    );
    return { rows, table: head + table };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await dns.close();
  }
}

interface ProcessesRow {
  readonly processes: number;
  readonly rateRps: number;
  readonly attainment: number;
  readonly goodputRps: number;
  readonly p99Ms: number;
  readonly valid: boolean;
}

/** `serve --processes N` for each N (0: a plain `serve` with local workers), each rate in turn. */
async function processes(): Promise<{ rows: ProcessesRow[]; table: string }> {
  const counts = values.processes.split(',').map((p) => num('processes', p, 0, 256));
  const rates = values.rates.split(',').map((r) => num('rates', r, 1, 100_000));
  const rows: ProcessesRow[] = [];
  for (const n of counts) {
    const server = await startSlogateProcess(baseConfig({ workers: NODE_WORKERS }), {
      args: n > 0 ? ['--processes', String(n)] : [],
    });
    try {
      await waitReady(server.url);
      for (const rate of rates) {
        const r = await openRun(server.url, rate, SEED);
        const o = r.summary.overall;
        rows.push({
          processes: n,
          rateRps: rate,
          attainment: o.attainment.overOffered ?? 0,
          goodputRps: o.goodputRps ?? 0,
          p99Ms: o.latency.p99Ms ?? Number.NaN,
          valid: r.valid,
        });
      }
    } finally {
      await server.stop();
    }
  }
  const atSlo = counts.map((n) => {
    const ok = rows.filter((r) => r.processes === n && r.attainment >= 0.99);
    return [label(n), ok.length === 0 ? '-' : String(Math.max(...ok.map((r) => r.rateRps)))];
  });
  const head =
    `Route ${ROUTE}, SLO ${SLO_MS} ms, ${NODE_WORKERS} worker(s) on the runtime node (or local); ` +
    `open loop (Poisson, binary), ${DURATION_S} s per rate.\n\n`;
  const table = markdown(
    ['gateway processes', 'rate (req/s)', 'attainment', 'goodput (req/s)', 'p99 (ms)'],
    rows.map((r) => [
      r.valid ? label(r.processes) : `${label(r.processes)} (sender lagged)`,
      String(r.rateRps),
      pct(r.attainment),
      r.goodputRps.toFixed(1),
      r.p99Ms.toFixed(1),
    ]),
  );
  const summary = markdown(['gateway processes', 'highest rate at >= 99% attainment (req/s)'], atSlo);
  return { rows, table: `${head}${table}\n\n${summary}` };
}

function label(n: number): string {
  return n === 0 ? '1 (plain serve, local workers)' : String(n);
}

function sumRecords(xs: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) for (const [k, v] of Object.entries(x)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

function markdown(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const mode = values.mode;
if (mode !== 'share' && mode !== 'processes') {
  process.stderr.write(`bench:scale-out: --mode must be share or processes, got ${mode}\n`);
  process.exit(2);
}
let result: { rows: readonly unknown[]; table: string };
try {
  result = mode === 'share' ? await share() : await processes();
} finally {
  rmSync(CACHE_DIR, { recursive: true, force: true });
}
mkdirSync(values.out, { recursive: true });
const file = join(values.out, `scale-out-${mode}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const command = `node dist/bench/scale-out.js ${process.argv.slice(2).join(' ')}`.trim();
writeFileSync(file, `${JSON.stringify({ command, mode, rows: result.rows }, null, 2)}\n`);
process.stdout.write(`${result.table}\n\n${file}\n`);
