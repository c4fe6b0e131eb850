// The engine's checks for the route `digits` of slogate.yaml, each printed as a markdown table: accuracy and latency of
// 1/8/32/64-row requests at low load (sizes), idle latency per variant against its batch-1 service time (idle), how
// long the route takes to return to `large` after a 3 s overload pinned to it (recovery), and legitimate attainment
// while /status/data or /metrics is flooded (flood). Starts its own server (a child process) unless --url is given;
// every part is bounded and the whole run stops by itself (about 3-4 minutes with the defaults).
//   npm run bench:engine-checks -- [--parts sizes,idle,recovery,flood] [--quick]
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { readMetadataFile } from '../runtime/model-repository.js';
import { DEFAULT_EVAL, ROOT } from './cli-options.js';
import {
  type Answer,
  closedLoop,
  EvalBodies,
  fmt,
  get,
  getJson,
  infer,
  openLoop,
  quantile,
  type RouteDecision,
} from './engine-checks-client.js';
import { type ServerProcess, startNodeProcess } from './server-process.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    config: { type: 'string', default: 'slogate.yaml' },
    route: { type: 'string', default: 'digits' },
    parts: { type: 'string', default: 'sizes,idle,recovery,flood' },
    quick: { type: 'boolean', default: false },
    'slo-ms': { type: 'string', default: '25' },
    rate: { type: 'string' },
    'size-requests': { type: 'string' },
    'idle-requests': { type: 'string' },
    'recovery-runs': { type: 'string', default: '3' },
    'flood-s': { type: 'string' },
    'flood-connections': { type: 'string', default: '8' },
  },
});
const quick = values.quick === true;
const route = values.route;
const sloMs = Number(values['slo-ms']);
const sizeRequests = Number(values['size-requests'] ?? (quick ? 20 : 100));
const idleRequests = Number(values['idle-requests'] ?? (quick ? 20 : 100));
const recoveryRuns = Math.max(1, Number(values['recovery-runs']));
const floodMs = 1000 * Number(values['flood-s'] ?? (quick ? 3 : 10));
const floodConnections = Number(values['flood-connections']);
const parts = new Set(values.parts.split(','));
const meta = readMetadataFile(`${ROOT}/models/digits/model.yaml`);
const evalAccuracy = (v: string) => meta?.variants[v]?.accuracy;
const bodies = new EvalBodies(DEFAULT_EVAL);
const inferPath = `/v2/models/${route}/infer`;

let server: ServerProcess | undefined;
const url = values.url ?? (await startServer());
const admin = new Pool(url, { connections: 2 });
const pool = new Pool(url, { connections: 32 });

async function startServer(): Promise<string> {
  const cli = new URL('../cli.js', import.meta.url).pathname;
  server = await startNodeProcess(cli, ['serve', '--config', values.config, '--host', '127.0.0.1', '--port', '0']);
  console.error(`server pid ${server.pid} at ${server.url}`);
  return server.url;
}

const decision = () => getJson<RouteDecision>(admin, `/admin/routes/${route}/decision`);
const mixOf = (d: RouteDecision) => d.variants.map((s) => `${Math.round(100 * s.share)}% ${s.variant}`).join(' + ');
const onlyLarge = (d: RouteDecision) => d.variants.length === 1 && d.variants[0]?.variant === 'large';
const pct = (n: number, of: number) => (of === 0 ? 'n/a' : `${((100 * n) / of).toFixed(2)}%`);
const mixOfAnswers = (as: readonly Answer[]) => {
  const m = new Map<string, number>();
  for (const a of as) if (a.variant !== undefined) m.set(a.variant, (m.get(a.variant) ?? 0) + 1);
  const ok = as.filter((a) => a.status === 200).length;
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .map(([v, c]) => `${v} ${Math.round((100 * c) / Math.max(1, ok))}%`)
    .join(', ');
};
const statuses = (as: readonly Answer[]) => {
  const m = new Map<number, number>();
  for (const a of as) m.set(a.status, (m.get(a.status) ?? 0) + 1);
  return [...m].map(([s, c]) => `${s}: ${c}`).join(', ');
};

/** Requests one at a time, `gapMs` apart, after a warm-up of a fifth as many (not reported). */
async function sequential(path: string, rows: number, count: number, gapMs: number): Promise<Answer[]> {
  const out: Answer[] = [];
  for (let i = 0; i < count + Math.ceil(count / 5); i++) {
    const a = await infer(pool, path, bodies.next(rows));
    if (i >= Math.ceil(count / 5)) out.push(a);
    await sleep(gapMs);
  }
  return out;
}

async function sizes(): Promise<void> {
  console.log(`\n### Request sizes (route \`${route}\`, one at a time, ${sizeRequests} requests each)\n`);
  console.log(
    '| rows | answered | variants | accuracy | eval accuracy of the main variant | client p50 / p99 ms | server total p50 / p99 ms |',
  );
  console.log('| ---: | --- | --- | ---: | ---: | ---: | ---: |');
  for (const rows of [1, 8, 32, 64]) {
    const as = await sequential(inferPath, rows, sizeRequests, 20);
    const ok = as.filter((a) => a.status === 200);
    const correct = ok.reduce((n, a) => n + a.correct, 0);
    const scored = ok.reduce((n, a) => n + a.scored, 0);
    const main = mixOfAnswers(as).split(' ')[0] ?? '';
    const ea = evalAccuracy(main);
    const server = ok.map((a) => a.serverMs ?? Number.NaN);
    console.log(
      `| ${rows} | ${ok.length}/${as.length} (${statuses(as)}) | ${mixOfAnswers(as)} | ${pct(correct, scored)} | ${main} ${ea === undefined ? 'n/a' : `${(100 * ea).toFixed(2)}%`} | ${fmt(
        quantile(
          as.map((a) => a.clientMs),
          0.5,
        ),
      )} / ${fmt(
        quantile(
          as.map((a) => a.clientMs),
          0.99,
        ),
      )} | ${fmt(quantile(server, 0.5))} / ${fmt(quantile(server, 0.99))} |`,
    );
  }
}

async function idle(): Promise<void> {
  const profiles = await getJson<{ profiles: { variant: string; points: { rows: number; p50Ms: number }[] }[] }>(
    admin,
    '/admin/profiles',
  );
  const batch1 = (v: string) => profiles.profiles.find((p) => p.variant === v)?.points.find((p) => p.rows === 1)?.p50Ms;
  console.log(`\n### Idle latency per variant (pinned, 1 row, one at a time, ${idleRequests} requests each)\n`);
  console.log(
    '| variant | server total p50 ms | queue p50 ms | infer p50 ms | batch-1 service p50 ms (profile) | total - service p50 ms | client p50 ms |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const v of ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large']) {
    const as = (await sequential(`/v2/models/${route}/versions/${v}/infer`, 1, idleRequests, 10)).filter(
      (a) => a.status === 200,
    );
    const total = quantile(
      as.map((a) => a.serverMs ?? Number.NaN),
      0.5,
    );
    const svc = batch1(v);
    console.log(
      `| ${v} | ${fmt(total)} | ${fmt(
        quantile(
          as.map((a) => a.queueMs ?? Number.NaN),
          0.5,
        ),
      )} | ${fmt(
        quantile(
          as.map((a) => a.inferMs ?? Number.NaN),
          0.5,
        ),
      )} | ${fmt(svc)} | ${fmt(svc === undefined ? undefined : total - svc)} | ${fmt(
        quantile(
          as.map((a) => a.clientMs),
          0.5,
        ),
      )} |`,
    );
  }
}

/** The background rate: --rate, else 0.3x the capacity the engine computes for `large` at idle (read at start). */
async function backgroundRps(): Promise<number> {
  if (values.rate !== undefined) return Number(values.rate);
  const d = await decision();
  return onlyLarge(d) && Number.isFinite(d.inputs.capacityRps) ? 0.3 * d.inputs.capacityRps : 140;
}

/** Polls until the route serves `large` alone, up to `maxMs`; resolves with when it did (NaN: not in time). */
async function untilLarge(maxMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    if (onlyLarge(await decision())) return performance.now();
    await sleep(50);
  }
  return Number.NaN;
}

async function recovery(rps: number): Promise<void> {
  console.log(
    `\n### Recovery after a 3 s overload pinned to \`large\` (background ${rps.toFixed(0)} req/s to \`${route}\`, 16 connections pinned)\n`,
  );
  console.log(
    '| run | left large during the overload | mix at its end | back on large after | background attainment |',
  );
  console.log('| ---: | --- | --- | ---: | ---: |');
  for (let run = 1; run <= recoveryRuns; run++) {
    const settle = await untilLarge(20_000);
    const totalMs = 2000 + 3000 + 15_000;
    const background = openLoop(pool, inferPath, bodies, rps, totalMs);
    await sleep(2000);
    const overEnd = performance.now() + 3000;
    let left = false;
    const watch = (async () => {
      while (performance.now() < overEnd) {
        if (!onlyLarge(await decision())) left = true;
        await sleep(50);
      }
    })();
    await closedLoop(url, 16, overEnd, (p) => infer(p, `/v2/models/${route}/versions/large/infer`, bodies.next(1)));
    await watch;
    const atEnd = mixOf(await decision());
    const backMs = (await untilLarge(15_000)) - overEnd;
    const as = await background;
    const met = as.filter((a) => a.status === 200 && a.clientMs <= sloMs).length;
    console.log(
      `| ${run} | ${left ? 'yes' : 'no'}${Number.isNaN(settle) ? ' (was not on large before)' : ''} | ${atEnd} | ${Number.isNaN(backMs) ? 'not within 15 s' : `${(backMs / 1000).toFixed(2)} s`} | ${pct(met, as.length)} |`,
    );
  }
}

async function flood(rps: number): Promise<void> {
  console.log(
    `\n### Legitimate attainment during a flood (${rps.toFixed(0)} req/s to \`${route}\` for ${floodMs / 1000} s each, ${floodConnections} flood connections)\n`,
  );
  console.log(
    '| flood | flood requests served | legit sent | attainment (<= SLO) | 429 | mix | admission limit seen |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | --- | --- |');
  for (const target of [undefined, '/status/data', '/metrics']) {
    await untilLarge(10_000);
    const until = performance.now() + floodMs;
    let limited = false;
    const watch = (async () => {
      while (performance.now() < until) {
        if ((await decision()).admissionRps !== null) limited = true;
        await sleep(100);
      }
    })();
    const flooding =
      target === undefined ? Promise.resolve(0) : closedLoop(url, floodConnections, until, (p) => get(p, target));
    const [as, served] = await Promise.all([openLoop(pool, inferPath, bodies, rps, floodMs), flooding, watch]);
    const met = as.filter((a) => a.status === 200 && a.clientMs <= sloMs).length;
    console.log(
      `| ${target ?? 'none'} | ${served} | ${as.length} | ${pct(met, as.length)} | ${as.filter((a) => a.status === 429).length} | ${mixOfAnswers(as)} | ${limited ? 'yes' : 'no'} |`,
    );
  }
}

try {
  console.log(`## Engine checks (${new Date().toISOString()}, ${url}, SLO ${sloMs} ms${quick ? ', --quick' : ''})`);
  const rps = await backgroundRps();
  if (parts.has('sizes')) await sizes();
  if (parts.has('idle')) await idle();
  if (parts.has('recovery')) await recovery(rps);
  if (parts.has('flood')) await flood(rps);
} finally {
  await pool.close();
  await admin.close();
  await server?.stop();
}
