// `slogate bench` against a real server (slogate as a child process, real ONNX models, real HTTP on 127.0.0.1):
// every offered request is accounted for once (offered = completed + shed + failed), the server's own SLO
// counters agree, answers are scored, outputs are written; a sender that falls behind gets no result; and a tiny
// `bench compare` runs each contender on the same schedule.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import type { CompareResult } from '../../bench/compare.js';
import { scrape, sumOf } from '../../bench/prom.js';
import { type BenchResult, runBench } from '../../bench/run.js';
import { buildSchedule } from '../../bench/schedule.js';
import { type ServerProcess, startSlogateProcess } from '../../bench/server-process.js';
import { digitsRawConfig, ROOT, tempDir } from '../helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');

function bench(args: string[], timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

function staticConfig(policy: unknown, runtime: Record<string, unknown> = {}) {
  return digitsRawConfig({
    server: { logLevel: 'warn' },
    runtime: { workers: 1, profile: { enabled: false }, ...runtime },
    routes: { digits: { model: 'digits', slo: { p99Ms: 1000 }, policy } },
  });
}

function addsUp(r: BenchResult): void {
  for (const s of [...r.summary.routes, r.summary.overall]) {
    assert.equal(
      s.offered,
      s.completed + s.shed + s.failed,
      `${s.route}: ${s.offered} != ${s.completed} + ${s.shed} + ${s.failed}`,
    );
    assert.equal(s.completed, s.onTime + s.late);
    assert.equal(s.shed, s.rejected + s.dropped);
    assert.equal(
      Object.values(s.shedBy).reduce((a, b) => a + b, 0),
      s.shed,
    );
    assert.equal(
      Object.values(s.failedBy).reduce((a, b) => a + b, 0),
      s.failed,
    );
    assert.equal(
      Object.values(s.variants).reduce((a, b) => a + b, 0),
      s.completed,
    );
  }
  const tl = r.summary.timeline;
  assert.equal(
    tl.reduce((a, p) => a + p.offered, 0),
    r.summary.overall.offered,
  );
}

let server: ServerProcess;
const out = tempDir('slogate-bench-e2e-');

before(async () => {
  server = await startSlogateProcess(staticConfig({ static: { variant: 'tiny', maxBatch: 8, maxQueueDelayMs: 1 } }));
});

after(async () => {
  await server?.stop();
});

test('open loop: every scheduled request is offered and accounted for once; answers are scored; the server agrees', async () => {
  const args = [
    '--url',
    server.url,
    '--route',
    'digits',
    '--rate',
    '60',
    '--duration',
    '2',
    '--max-requests',
    '500',
    '--slo-ms',
    '1000',
  ];
  const r = await bench([
    ...args,
    '--protocol',
    'binary',
    '--max-lag-ms',
    '200',
    '--json',
    '--out',
    out,
    '--name',
    'open',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as BenchResult;
  addsUp(res);
  const s = res.summary.overall;
  // The schedule is seeded: the same arrivals bench computed.
  const schedule = buildSchedule(
    { kind: 'constant', rate: 60, arrivals: 'poisson' },
    { durationMs: 2000, maxRequests: 500, seed: 1, route: 'digits', deadlineMs: () => 1000 },
  );
  assert.equal(s.offered, schedule.atMs.length);
  assert.equal(s.completed, s.offered, JSON.stringify(s.failedBy));
  assert.deepEqual(s.variants, { tiny: s.completed });
  assert.equal(s.accuracy.scored, s.completed);
  assert.ok((s.accuracy.answerAccuracy ?? 0) > 0.85, `tiny's accuracy ${s.accuracy.answerAccuracy}`);
  assert.ok(s.latency.p50Ms !== null && s.latency.p50Ms > 0);
  assert.equal(res.summary.lag?.ok, true);
  // The server counted the same requests (its SLO outcomes), and what they cost.
  const srv = res.server?.digits;
  assert.ok(srv !== undefined);
  assert.equal(
    Object.values(srv.sloOutcomes).reduce((a, b) => a + b, 0),
    s.offered,
  );
  assert.ok(srv.cost !== null && srv.cost > 0 && srv.costPer1000Answers !== null);
  for (const f of ['open.json', 'open.md', 'open-latency.svg', 'open-variants.svg', 'open-attainment.svg'])
    assert.ok(existsSync(join(out, f)), f);
  assert.match(readFileSync(join(out, 'open-latency.svg'), 'utf8'), /SLO 1000 ms/);
});

test('continuous warm-up: the lead-in runs straight into the window, unrecorded; the server answers both', async () => {
  const requests = async () => sumOf((await scrape(server.url))?.samples ?? [], 'slogate_requests_total') ?? 0;
  const served = await requests();
  const r = await runBench({
    url: server.url,
    route: 'digits',
    mode: { kind: 'open', load: { kind: 'constant', rate: 80, arrivals: 'poisson' } },
    protocol: 'binary',
    inputs: 'random',
    durationS: 2,
    maxRequests: 500,
    seed: 3,
    sloMs: () => 1000,
    warmupS: 1.5,
    continuousWarmup: true,
    maxConnections: 16,
    lagBoundMs: 200,
  });
  addsUp(r);
  const measured = buildSchedule(
    { kind: 'constant', rate: 80, arrivals: 'poisson' },
    { durationMs: 2000, maxRequests: 500, seed: 3, route: 'digits', deadlineMs: () => 1000 },
  );
  // The warm-up runs at the first second's rate, seeded one past the run's seed.
  const leadIn = buildSchedule(
    { kind: 'constant', rate: measured.atMs.findIndex((t) => t >= 1000), arrivals: 'poisson' },
    { durationMs: 1500, maxRequests: 500, seed: 4, route: 'digits', deadlineMs: () => 1000 },
  );
  assert.equal(r.summary.overall.offered, measured.atMs.length, 'only the measured schedule is recorded');
  assert.equal(r.server, null, 'no counters read mid-run');
  assert.equal(r.summary.overall.completed, measured.atMs.length);
  assert.equal((await requests()) - served, measured.atMs.length + leadIn.atMs.length, 'the server answered both');
});

test('overload: queue-full refusals are counted as shed, by status and code, and still add up', async () => {
  const small = await startSlogateProcess(
    staticConfig({ static: { variant: 'large', maxBatch: 1 } }, { maxQueueRows: 1 }),
  );
  try {
    const r = await bench([
      '--url',
      small.url,
      '--route',
      'digits',
      '--rate',
      '600',
      '--duration',
      '1',
      '--max-requests',
      '600',
      '--max-lag-ms',
      '500',
      '--json',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as BenchResult;
    addsUp(res);
    const s = res.summary.overall;
    assert.ok(s.shed > 0, `nothing shed at 600/s with a one-row queue: ${JSON.stringify(s)}`);
    assert.ok((s.shedBy['503 SLOGATE_ERR_QUEUE_FULL'] ?? 0) > 0, JSON.stringify(s.shedBy));
    assert.ok((s.attainment.overOffered ?? 1) < 1);
    assert.ok((s.attainment.overAdmitted ?? 0) >= (s.attainment.overOffered ?? 0));
  } finally {
    await small.stop();
  }
});

test('closed loop: stops at its request cap exactly, numbers add up', async () => {
  const r = await bench([
    '--url',
    server.url,
    '--route',
    'digits',
    '--connections',
    '2',
    '--duration',
    '5',
    '--max-requests',
    '60',
    '--warmup',
    '0',
    '--json',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as BenchResult;
  addsUp(res);
  assert.equal(res.meta.mode, 'closed');
  assert.equal(res.summary.overall.offered, 60);
  assert.ok((res.summary.overall.accuracy.answerAccuracy ?? 0) > 0.85);
  assert.equal(res.summary.lag, null);
});

test('trace replay with random inputs: the trace sets arrivals and deadlines; unscored answers give no accuracy', async () => {
  const trace = join(out, 'trace.csv');
  writeFileSync(
    trace,
    `arrival_ms,route,deadline_ms\n${Array.from({ length: 20 }, (_, i) => `${i * 40},digits,${i < 10 ? 500 : ''}`).join('\n')}\n`,
  );
  const r = await bench([
    '--url',
    server.url,
    '--trace',
    trace,
    '--inputs',
    'random',
    '--slo-ms',
    '900',
    '--max-lag-ms',
    '200',
    '--json',
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as BenchResult;
  addsUp(res);
  const s = res.summary.overall;
  assert.equal(s.offered, 20);
  assert.equal(s.completed, 20);
  assert.equal(s.accuracy.scored, 0);
  assert.equal(s.accuracy.effectiveAccuracy, null);
  assert.deepEqual(s.variants, { tiny: 20 });
  assert.ok(s.deadlineMs === 500 || s.deadlineMs === 900);
  assert.ok(existsSync(join(out, 'digits-trace.json')));
});

test('a sender that falls behind its schedule reports no result and exits 3', async () => {
  const r = await bench([
    '--url',
    server.url,
    '--route',
    'digits',
    '--rate',
    '50',
    '--duration',
    '1',
    '--max-requests',
    '100',
    '--max-lag-ms',
    '0',
    '--out',
    out,
    '--name',
    'lagged',
  ]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /fell behind its schedule/);
  assert.ok(!existsSync(join(out, 'lagged.json')));
});

test('usage errors exit 2 with the usage text', async () => {
  const r = await bench(['--route', 'digits']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--url is required/);
  const p = await bench(['--url', server.url, '--route', 'digits', '--pattern', 'wave:1']);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /unknown --pattern/);
});

test('compare: each contender (a static policy, the naive peer, the raw limit) on the same schedule, one table', async () => {
  const dir = tempDir('slogate-bench-compare-');
  const file = join(dir, 'slogate.yaml');
  const raw = digitsRawConfig({
    server: { logLevel: 'warn' },
    runtime: { workers: 1, profile: { enabled: true, cacheDir: join(dir, 'cache'), samples: 5, budgetMs: 3000 } },
    routes: { digits: { model: 'digits', slo: { p99Ms: 1000 } } },
  });
  writeFileSync(file, stringify(raw));
  const r = await bench(
    [
      'compare',
      '--config',
      file,
      '--scenario',
      'steady',
      '--quick',
      '--rate',
      '40',
      '--duration',
      '1',
      '--policies',
      'static:tiny:b1,naive:tiny,raw:tiny',
      '--json',
      '--out',
      dir,
      '--name',
      'c',
    ],
    180_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as CompareResult;
  assert.deepEqual(
    res.rows.map((row) => row.id),
    ['static:tiny:b1', 'naive:tiny', 'raw:tiny'],
  );
  const offered = new Set<number>();
  for (const row of res.rows.slice(0, 2)) {
    const run = row.runs[0];
    assert.ok(run?.result, `${row.id}: ${run?.error} ${row.notes.join('; ')}`);
    addsUp(run.result);
    offered.add(run.result.summary.overall.offered);
    assert.deepEqual(Object.keys(run.result.summary.overall.variants), ['tiny']);
  }
  assert.equal(offered.size, 1, 'both servers got the same schedule');
  // A slogate contender's run carries the decision in force (and any changes), to explain its numbers afterwards.
  const decisions = res.rows[0]?.runs[0]?.decisions ?? [];
  assert.ok(decisions.length >= 1 && decisions.every((d) => typeof d.reason === 'string'), JSON.stringify(decisions));
  assert.match(decisions[decisions.length - 1]?.to ?? '', /tiny/);
  assert.equal(res.rows[1]?.runs[0]?.decisions, undefined, 'the naive peer has no decisions');
  assert.ok((res.rows[2]?.raw?.points.length ?? 0) > 0);
  for (const f of ['c.json', 'c.md', 'c-latency.svg', 'c-attainment.svg', 'c-accuracy.svg'])
    assert.ok(existsSync(join(dir, f)), f);
  assert.match(readFileSync(join(dir, 'c.md'), 'utf8'), /\| static tiny b1 \|/);
});
