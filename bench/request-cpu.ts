// `npm run bench:request-cpu`: CPU per request in the server process at a fixed open-loop rate. Starts `slogate serve`
// (the bundled slogate.yaml unless --config) as a child with bench/cpu-probe.ts preloaded, sends one variant's
// requests by its version path at --rate for --duration seconds after a warm-up, and reports CPU microseconds per
// answered request: the whole process, its event loop's thread, the worker threads and the rest (GC helpers, libuv),
// with the event loop's utilisation, and the main heap's bytes per request (allocated; into the old generation) and
// collections. --peer naive measures the hand-written peer on the variant's file instead;
// --peer bare-fastify and --peer bare-http the HTTP floor (bench/peers/bare.ts: the same requests answered with a
// precomputed answer of the same size, no model), in Fastify with slogate's settings and in node:http alone;
// --peer bare-net the same over sockets alone, under Node's HTTP.
// --cpu-prof FILE also profiles the event loop over the window and prints its top self-time items; --perf FILE samples
// the whole process with Linux perf instead (native code and the kernel too, at far less cost). --connections N
// replaces the open loop with a closed one of N connections (each sends its next request once answered): the server's
// peak rate and its CPU per request there. CPU per request moves far less with a shared host's noise than latency
// does. Linux only (/proc).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { closedLoopRecorded } from './closed-loop.js';
import type { ProbeReport } from './cpu-probe.js';
import { topSelfTime } from './cpu-profile.js';
import type { RouteInputs } from './inputs.js';
import { makePool, openConnections, openLoop } from './open-loop.js';
import { type PerfRecording, perfShares, recordPerf } from './perf-record.js';
import { batchesIn, scrape } from './prom.js';
import { hostDescription, prepareInputs } from './run.js';
import { buildSchedule } from './schedule.js';
import { type ServerProcess, startNodeProcess } from './server-process.js';
import { summarize } from './summary.js';
import type { Protocol } from './v2-requests.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** Requests a closed loop may send per second of --duration (above any one server's peak here), and in all. */
const MAX_CLOSED_RATE = 100_000;
const MAX_CLOSED_REQUESTS = 3_000_000;
const { values } = parseArgs({
  options: {
    config: { type: 'string', default: join(ROOT, 'slogate.yaml') },
    route: { type: 'string', default: 'digits' },
    variant: { type: 'string', default: 'small' },
    rate: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    protocol: { type: 'string', default: 'binary' },
    'cpu-prof': { type: 'string' },
    // Linux perf over the window (perf record on the server's process); needs perf installed and permitted.
    perf: { type: 'string' },
    top: { type: 'string', default: '25' },
    json: { type: 'string' },
    // naive: the hand-written peer (bench/peers/naive.ts) on the variant's file instead of slogate, for comparison;
    // bare-fastify, bare-http: the HTTP floor (bench/peers/bare.ts), no model per request; bare-net: sockets alone.
    peer: { type: 'string' },
    // Pin the server to these cores (taskset); run the bench itself pinned to the others.
    'server-cpus': { type: 'string' },
    // A closed loop of this many connections instead of the open loop at --rate.
    connections: { type: 'string' },
  },
});
const cpus = values['server-cpus'];
const rate = Number(values.rate);
const connections = values.connections === undefined ? undefined : Number(values.connections);
if (connections !== undefined && !(Number.isInteger(connections) && connections >= 1 && connections <= 1024))
  throw new Error('--connections is a whole number in [1, 1024]');
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const protocol = values.protocol as Protocol;
if (protocol !== 'binary' && protocol !== 'json') throw new Error('--protocol is binary or json');
if (!(rate > 0) || !(durationS > 0) || durationS > 120) throw new Error('--rate > 0 and --duration in (0, 120] s');
const config = loadConfigFile(values.config, process.env);
const routeConfig = config.routes[values.route];
if (routeConfig === undefined) throw new Error(`the config has no route ${values.route}`);
const evalPath = config.models[routeConfig.model]?.eval;
const evalSet = evalPath === undefined ? undefined : readEvalSet(evalPath);

function startServer(): Promise<ServerProcess> {
  const probe = new URL('./cpu-probe.js', import.meta.url).href;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // --perf-basic-prof: names for perf's samples of JIT code.
    NODE_OPTIONS:
      `${process.env.NODE_OPTIONS ?? ''} --import ${probe}${values.perf === undefined ? '' : ' --perf-basic-prof'}`.trim(),
  };
  if (values['cpu-prof'] !== undefined) env.SLOGATE_CPU_PROF = values['cpu-prof'];
  if (values.peer !== undefined) {
    const file = config.models[routeConfig?.model as string]?.variants[values.variant]?.path;
    if (file === undefined) throw new Error(`the config has no variant ${values.variant}`);
    const args = ['--route', values.route, '--variant', `${values.variant}=${file}`];
    const peers: Record<string, [string, string[]]> = {
      naive: ['naive.js', args],
      'bare-fastify': ['bare.js', [...args, '--server', 'fastify']],
      'bare-http': ['bare.js', [...args, '--server', 'http']],
      'bare-net': ['bare.js', [...args, '--server', 'net']],
    };
    const peer = peers[values.peer];
    if (peer === undefined) throw new Error('--peer takes naive, bare-fastify, bare-http or bare-net');
    return startNodeProcess(join(ROOT, 'dist', 'bench', 'peers', peer[0]), peer[1], { env, cpus });
  }
  return startNodeProcess(
    join(ROOT, 'dist', 'cli.js'),
    ['serve', '--config', values.config, '--host', '127.0.0.1', '--port', '0'],
    { env, cpus },
  );
}

/** Resolves with the first match of `pattern` (its first group) in the server's output from now on. */
function waitFor(server: ServerProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      server.child.stdout?.off('data', onData);
      reject(new Error(`the server did not print ${pattern.source} in time`));
    }, 30_000);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(pattern);
      if (m === null) return;
      clearTimeout(timer);
      server.child.stdout?.off('data', onData);
      resolve(m[1] ?? m[0]);
    };
    server.child.stdout?.on('data', onData);
  });
}

const server = await startServer();
try {
  const [routeInputs] = await prepareInputs(
    { url: server.url, protocol, inputs: evalSet === undefined ? 'random' : 'eval', evalSet, seed: 1 },
    [values.route],
    true,
  );
  if (routeInputs === undefined) throw new Error('no inputs');
  const path = `/v2/models/${encodeURIComponent(values.route)}/versions/${encodeURIComponent(values.variant)}/infer`;
  const inputs = [{ ...routeInputs, path }];
  const sloMs = () => routeConfig.slo.p99Ms;
  const schedule = (seconds: number, seed: number) =>
    buildSchedule(
      { kind: 'constant', rate, arrivals: 'poisson' },
      {
        durationMs: seconds * 1000,
        maxRequests: Math.ceil(rate * seconds * 2 + 100),
        seed,
        route: values.route,
        deadlineMs: sloMs,
      },
    );
  const pool = makePool(server.url, 256, 5000);
  /** The load of the window (or of the warm-up): the open loop at --rate, or the closed loop of --connections. */
  const load = async (seconds: number, seed: number, drainMs: number) => {
    if (connections === undefined) {
      const r = await openLoop({
        url: server.url,
        schedule: schedule(seconds, seed),
        inputs,
        pool,
        timeoutMs: 5000,
        drainMs,
      });
      return { records: r.records, senderCpu: r.senderCpu, wallMs: seconds * 1000 };
    }
    return closedLoopRecorded({
      url: server.url,
      inputs: inputs[0] as RouteInputs,
      connections,
      durationS: seconds,
      maxRequests: Math.min(MAX_CLOSED_REQUESTS, Math.ceil(seconds * MAX_CLOSED_RATE)),
      deadlineMs: routeConfig.slo.p99Ms,
      timeoutMs: 5000,
    });
  };
  try {
    if (warmupS > 0) await load(warmupS, 2, 2000);
    if (connections === undefined) await openConnections(pool, 64);
    const before = await scrape(server.url);
    const perf: PerfRecording | undefined =
      values.perf === undefined ? undefined : await recordPerf(server.pid, values.perf);
    server.child.kill('SIGUSR2'); // opens the window
    const r = await load(durationS, 1, 5000);
    const reported = waitFor(server, /cpu-probe: (\{.*\})\n/);
    const written = values['cpu-prof'] === undefined ? undefined : waitFor(server, /cpu-probe: profile written\n/);
    server.child.kill('SIGUSR2'); // closes it
    await perf?.stop();
    const line = await reported;
    const batches = batchesIn(before, await scrape(server.url), `${routeConfig?.model}/${values.variant}`);
    const report = JSON.parse(line) as ProbeReport;
    const s = summarize(r.records, { durationMs: r.wallMs, lagBoundMs: 5 });
    const answered = s.overall.completed;
    const perReqUs = (ms: number) => (ms * 1000) / Math.max(1, answered);
    const mainTid = server.pid;
    const main = report.threads.find((t) => t.tid === mainTid)?.cpuMs ?? 0;
    const processMs = report.userMs + report.systemMs;
    const result = {
      host: hostDescription(),
      at: new Date().toISOString(),
      load: {
        ...(connections === undefined ? { rate } : { connections, answeredPerS: (answered * 1000) / r.wallMs }),
        durationS,
        protocol,
        path,
        answered,
        offered: s.overall.offered,
      },
      latency: s.overall.latency,
      senderCpu: r.senderCpu,
      senderLagOk: s.lag?.ok ?? true,
      cpuUsPerRequest: {
        process: perReqUs(processMs),
        user: perReqUs(report.userMs),
        system: perReqUs(report.systemMs),
        eventLoopThread: perReqUs(main),
        eventLoopBusy: perReqUs(report.eventLoopUtilization * report.wallMs),
        otherThreads: perReqUs(processMs - main),
      },
      eventLoopUtilization: report.eventLoopUtilization,
      heapPerRequest: {
        allocatedBytes: report.heap.allocatedBytes / Math.max(1, answered),
        oldGenerationBytes: report.heap.oldGenerationBytes / Math.max(1, answered),
        gcPauseUs: perReqUs(report.heap.pauseMs),
      },
      collectionsPer10k: {
        scavenges: (report.heap.scavenges * 1e4) / Math.max(1, answered),
        markCompacts: (report.heap.markCompacts * 1e4) / Math.max(1, answered),
      },
      batches,
      threads: report.threads.map((t) => ({ ...t, usPerRequest: perReqUs(t.cpuMs) })),
    };
    const u = result.cpuUsPerRequest;
    const what =
      connections === undefined
        ? `${rate} req/s`
        : `a closed loop of ${connections} connections: ${Math.round((answered * 1000) / r.wallMs)} answers/s`;
    console.log(`\n${result.host}; ${what} for ${durationS} s, ${protocol}, POST ${path}`);
    console.log(
      `answered ${answered}/${s.overall.offered}, p50 ${s.overall.latency.p50Ms} ms, p99 ${s.overall.latency.p99Ms} ms, sender ${(r.senderCpu * 100).toFixed(0)}% of a core${result.senderLagOk ? '' : ' (the sender lagged its schedule: latency is unreliable, CPU per request is not)'}`,
    );
    if (answered < 0.99 * s.overall.offered)
      console.log(
        `only ${answered} of ${s.overall.offered} requests were answered: the server was overloaded (a busy host?), and the CPU of refusals and timeouts is counted against the answered requests; rerun on a quieter host`,
      );
    if (batches !== undefined)
      console.log(
        `batches ${batches.count} of ${(batches.rows / Math.max(1, batches.count)).toFixed(2)} rows on average, ${batches.inline} of them inline`,
      );
    console.log('\n| CPU per request (us) | value |\n| --- | ---: |');
    console.log(`| server process (user + system) | ${u.process.toFixed(1)} |`);
    console.log(`| of which system | ${u.system.toFixed(1)} |`);
    console.log(`| event loop thread | ${u.eventLoopThread.toFixed(1)} |`);
    console.log(
      `| event loop busy (ELU ${report.eventLoopUtilization.toFixed(3)} x wall) | ${u.eventLoopBusy.toFixed(1)} |`,
    );
    console.log(`| other threads (workers, GC helpers, libuv) | ${u.otherThreads.toFixed(1)} |`);
    const h = result.heapPerRequest;
    const c = result.collectionsPer10k;
    console.log('\n| main heap per request | value |\n| --- | ---: |');
    console.log(`| allocated (bytes) | ${h.allocatedBytes.toFixed(0)} |`);
    console.log(`| into the old generation (bytes) | ${h.oldGenerationBytes.toFixed(0)} |`);
    console.log(`| collection pauses (us) | ${h.gcPauseUs.toFixed(1)} |`);
    console.log(
      `| scavenges, mark-compacts per 10,000 requests | ${c.scavenges.toFixed(1)}, ${c.markCompacts.toFixed(2)} |`,
    );
    console.log('\n| thread | tid | us per request |\n| --- | ---: | ---: |');
    for (const t of [...result.threads].sort((a, b) => b.cpuMs - a.cpuMs))
      console.log(`| ${t.tid === mainTid ? 'main (event loop)' : t.name} | ${t.tid} | ${t.usPerRequest.toFixed(1)} |`);
    if (values['cpu-prof'] !== undefined) {
      await written;
      const profile = JSON.parse(readFileSync(values['cpu-prof'], 'utf8'));
      console.log(
        `\nevent loop profile: ${values['cpu-prof']}; top self time\n\n| function | share | us per request |\n| --- | ---: | ---: |`,
      );
      for (const t of topSelfTime(profile, Number(values.top), ROOT))
        console.log(`| ${t.name} | ${(t.share * 100).toFixed(1)}% | ${perReqUs(t.ms).toFixed(1)} |`);
    }
    if (values.perf !== undefined) {
      const table = (key: 'dso' | 'sym', n: number) => {
        console.log(`\n| ${key === 'dso' ? 'binary' : 'function'} | share | us per request |\n| --- | ---: | ---: |`);
        for (const p of perfShares(values.perf as string, key, n))
          console.log(`| ${p.name} | ${(p.share * 100).toFixed(1)}% | ${(p.share * u.process).toFixed(1)} |`);
      };
      console.log(`\nperf samples of the whole process: ${values.perf}`);
      table('dso', 8);
      table('sym', Number(values.top));
    }
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await pool.destroy();
  }
} finally {
  await server.stop();
}
