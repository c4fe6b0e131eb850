// `npm run bench:soak`: a long run of mixed traffic against a fresh `slogate serve`, watching for leaks. Poisson
// arrivals at a fixed rate to the config's first route: mostly good requests, some malformed (bad JSON, nested or
// huge values, wrong shapes) and some cancelled by the client right after sending. The server's RSS is sampled from
// /proc; the report compares the end of the run with the end of the warm-up, and gives the good requests' attainment.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { loadConfigFile } from '../core/config.js';
import { exponential, mulberry32 } from '../core/prng.js';
import { startSlogateProcess } from './server-process.js';
import { randomBody, type V2Body } from './v2-requests.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    config: { type: 'string', default: join(ROOT, 'slogate.yaml') },
    rate: { type: 'string', default: '300' },
    duration: { type: 'string', default: '600' },
    warmup: { type: 'string', default: '60' },
    malformed: { type: 'string', default: '0.05' },
    cancelled: { type: 'string', default: '0.05' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
  },
});

function numArg(name: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`bench:soak: --${name} must be a number in [${min}, ${max}], got ${raw}\n`);
    process.exit(2);
  }
  return v;
}

const RATE = numArg('rate', values.rate, 1, 20_000);
const DURATION_S = numArg('duration', values.duration, 10, 24 * 3600);
const WARMUP_S = numArg('warmup', values.warmup, 5, DURATION_S / 2);
const P_MALFORMED = numArg('malformed', values.malformed, 0, 1);
const P_CANCELLED = numArg('cancelled', values.cancelled, 0, 1 - P_MALFORMED);
const RSS_EVERY_MS = 2000;
/** Requests in flight beyond which the sender skips (and counts) an arrival rather than queue in the client. */
const MAX_INFLIGHT = 512;

type Kind = 'good' | 'malformed' | 'cancelled';
interface Tally {
  sent: number;
  statuses: Record<string, number>;
  inTime: number;
}

const config = loadConfigFile(values.config, process.env);
const route = Object.keys(config.routes)[0];
if (route === undefined) throw new Error('the config has no route');
const targetMs = config.routes[route]?.slo.p99Ms ?? 100;

/** Bodies the gateway must refuse with a 4xx: each exercises a different check of the request path. */
function malformedBodies(inputName: string): V2Body[] {
  const json = (s: string): V2Body => ({ body: Buffer.from(s), headers: { 'content-type': 'application/json' } });
  const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  return [
    json('{"inputs": ['),
    json(`{"inputs":[{"name":"${inputName}","datatype":${nested},"shape":[1,784],"data":[0]}]}`),
    json(`{"inputs":[{"name":"${inputName}","datatype":"FP32","shape":[1,784],"data":[1,2,3]}]}`),
    json(`{"inputs":[{"name":"${'x'.repeat(100_000)}","datatype":"FP32","shape":[1,1],"data":[0]}]}`),
    json('{"inputs":[{"name":"__proto__","datatype":"FP32","shape":[1,784],"data":[]}]}'),
  ];
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? Number.NaN : (s[Math.floor(s.length / 2)] as number);
};

const server = await startSlogateProcess({
  ...config,
  server: { ...config.server, logLevel: 'warn' },
} as unknown as Record<string, unknown>);
const tallies: Record<Kind, Tally> = {
  good: { sent: 0, statuses: {}, inTime: 0 },
  malformed: { sent: 0, statuses: {}, inTime: 0 },
  cancelled: { sent: 0, statuses: {}, inTime: 0 },
};
const rss: { atS: number; mib: number }[] = [];
let skipped = 0;
try {
  const meta = (await (await fetch(`${server.url}/v2/models/${route}`)).json()) as {
    inputs: { name: string; shape: number[] }[];
  };
  const input = meta.inputs[0];
  if (input === undefined) throw new Error(`route ${route} has no inputs`);
  const good = randomBody(input, 1, 'binary');
  const bad = malformedBodies(input.name);
  const pool = new Pool(server.url, { connections: 64, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const rand = mulberry32(Number(values.seed));
  const path = `/v2/models/${route}/infer`;
  const t0 = performance.now();
  const endMs = DURATION_S * 1000;
  let inflight = 0;
  const count = (kind: Kind, status: string, ms: number) => {
    const t = tallies[kind];
    t.statuses[status] = (t.statuses[status] ?? 0) + 1;
    if (status === '200' && ms <= targetMs) t.inTime++;
  };
  const send = (kind: Kind, body: V2Body) => {
    const abort = new AbortController();
    const started = performance.now();
    tallies[kind].sent++;
    inflight++;
    if (kind === 'cancelled') setTimeout(() => abort.abort(), rand() * 2);
    pool
      .request({ method: 'POST', path, body: body.body, headers: body.headers, signal: abort.signal })
      .then(async (res) => {
        await res.body.dump();
        count(kind, String(res.statusCode), performance.now() - started);
      })
      .catch((err: Error & { code?: string }) =>
        count(kind, err.name === 'AbortError' ? 'aborted' : `error:${err.code}`, 0),
      )
      .finally(() => {
        inflight--;
      });
  };
  const sampler = setInterval(
    () => rss.push({ atS: (performance.now() - t0) / 1000, mib: rssMiB(server.pid) }),
    RSS_EVERY_MS,
  );
  let nextMs = 0;
  let i = 0;
  while (nextMs < endMs) {
    const wait = t0 + nextMs - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const u = rand();
    const kind: Kind = u < P_MALFORMED ? 'malformed' : u < P_MALFORMED + P_CANCELLED ? 'cancelled' : 'good';
    if (inflight >= MAX_INFLIGHT) skipped++;
    else send(kind, kind === 'malformed' ? (bad[i++ % bad.length] as V2Body) : good);
    nextMs += exponential(rand, 1000 / RATE);
  }
  while (inflight > 0) await new Promise((r) => setTimeout(r, 50));
  clearInterval(sampler);
  await pool.close();
} finally {
  await server.stop();
}

const warmEnd = median(rss.filter((s) => s.atS > WARMUP_S - 10 && s.atS <= WARMUP_S).map((s) => s.mib));
const end = median(rss.filter((s) => s.atS > DURATION_S - 30).map((s) => s.mib));
const report = {
  command: `node dist/bench/soak.js ${process.argv.slice(2).join(' ')}`.trim(),
  rateRps: RATE,
  durationS: DURATION_S,
  warmupS: WARMUP_S,
  route,
  targetMs,
  rssMiB: { warmupEnd: warmEnd, end, peak: Math.max(...rss.map((s) => s.mib)), growth: end / warmEnd - 1 },
  goodAttainment: tallies.good.inTime / Math.max(1, tallies.good.sent),
  tallies,
  skippedAtClient: skipped,
  rss,
};
mkdirSync(values.out, { recursive: true });
const file = join(values.out, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
process.stdout.write(
  `soak ${DURATION_S} s at ${RATE} req/s to ${route}: RSS ${warmEnd.toFixed(1)} MiB after warm-up -> ` +
    `${end.toFixed(1)} MiB at the end (${pct(report.rssMiB.growth)}), peak ${report.rssMiB.peak.toFixed(1)} MiB; ` +
    `good requests within ${targetMs} ms: ${pct(report.goodAttainment)}\n` +
    `statuses: ${JSON.stringify(Object.fromEntries(Object.entries(tallies).map(([k, t]) => [k, t.statuses])))}; ` +
    `skipped at the client: ${skipped}\n${file}\n`,
);
