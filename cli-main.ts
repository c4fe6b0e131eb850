// `slogate <command>`: serve, check-config, eval (and the commands the other modules add), after cli.ts. Reads
// process.env and argv here and nowhere else (but for cli.ts's choice of V8 flags).
import cluster from 'node:cluster';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildSchedule, type LoadSpec, parsePattern, parseTrace } from './bench/schedule.js';
import { APPLY_USAGE, applyCommand, REVISIONS_USAGE, revisionsCommand, UsageError } from './cli-revisions.js';
import { ROLLOUT_USAGE, rolloutCommand } from './cli-rollout.js';
import { SystemClock } from './core/clock.js';
import type { Config } from './core/config.js';
import { loadConfigFile } from './core/config.js';
import { isSlogateError } from './core/errors.js';
import { pretenuring, singleThreadedGc } from './core/gc-mode.js';
import { installLastResort } from './core/last-resort.js';
import { silentLogger } from './core/logger.js';
import { Metrics } from './core/metrics.js';
import { variantKey } from './core/types.js';
import {
  gatewayProcessConfig,
  NODE_SLOTS_ENV,
  NODE_URL_ENV,
  resolveProcesses,
  superviseProcesses,
} from './gateway/processes.js';
import { shutdownBoundMs } from './gateway/shutdown.js';
import { createSlogate, type Slogate, VERSION } from './main.js';
import { simulate } from './policies/simulator.js';
import { evaluateModel } from './runtime/evaluate.js';
import { sha256File } from './runtime/model-repository.js';
import { hostKey } from './runtime/profiler.js';
import { Runtime, resolveIntraOpThreads, resolveWorkers } from './runtime/runtime.js';

const USAGE = `slogate ${VERSION}: an SLO-aware inference gateway (KServe V2 protocol, ONNX variants)

Usage:
  slogate serve --config FILE [--host H] [--port N] [--processes N|auto]
                                                     serve the config's routes (N gateway processes sharing the
                                                     port, over one runtime node process on loopback)
  slogate runtime --config FILE [--host H] [--port N] serve the config's models as a runtime node (V2; no policies)
  slogate check-config FILE                          validate a config and its model files
  slogate eval --config FILE [--model M]             measure every variant's accuracy on its eval set
  slogate profile --config FILE [--fresh] [--json]   measure (or read the cached) service time per variant and batch size
  slogate simulate --config FILE (--pattern P | --rate R | --trace FILE) [--route R] [--duration S] [--seed N]
                                                     replay arrivals through the real engine and scheduler on a simulated clock
  slogate bench --url URL --route R [options]        load-test any V2 endpoint (slogate bench --help)
  slogate bench compare --config FILE --scenario S   compare policies side by side in one run
${REVISIONS_USAGE}${ROLLOUT_USAGE}${APPLY_USAGE}  slogate --version | --help
`;

function fail(msg: string, code = 2): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

/** What the admin API's client commands (apply, rollout, deploy, ...) authenticate with and print to. */
function adminIo(): { token: string | undefined; out: (t: string) => void } {
  return { token: process.env.SLOGATE_ADMIN_TOKEN, out: (t: string) => process.stdout.write(t) };
}

/** Waits for a client command: a usage error exits 2 with its message, any other failing status exits with it. */
async function exitWith(command: Promise<number>): Promise<void> {
  const status = await command.catch((err: unknown) => {
    if (err instanceof UsageError) fail(err.message);
    throw err;
  });
  if (status !== 0) process.exit(status);
}

function load(file: string | undefined): Readonly<Config> {
  if (file === undefined) fail(`--config FILE is required\n\n${USAGE}`);
  return loadConfigFile(file, process.env);
}

async function serve(argv: string[], derive?: (c: Readonly<Config>) => Config): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
      processes: { type: 'string' },
    },
  });
  let config = load(values.config === '' ? undefined : values.config);
  if (values.processes !== undefined && derive === undefined)
    return serveProcesses(argv, values.config as string, values.processes, config);
  if (derive !== undefined) config = derive(config);
  const nodeUrl = process.env[NODE_URL_ENV];
  if (cluster.isWorker && nodeUrl !== undefined)
    config = gatewayProcessConfig(config, nodeUrl, Number(process.env[NODE_SLOTS_ENV] ?? 1));
  if (values.host !== undefined || values.port !== undefined) {
    const c = structuredClone(config) as Config;
    if (values.host !== undefined) c.server.host = values.host;
    if (values.port !== undefined) {
      const p = Number(values.port);
      if (!Number.isInteger(p) || p < 0 || p > 65535) fail(`--port must be an integer 0..65535, got ${values.port}`);
      c.server.port = p;
    }
    config = c;
  }
  // Signals are handled from the start: before listening there is nothing to drain, so start-up (loading, profiling,
  // warm-up) is abandoned at once; once serving, the first signal drains and any further one is ignored.
  let sg: Slogate | undefined;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      sg?.logger.warn({ signal }, `${signal} while shutting down: ignored (the shutdown is bounded)`);
      return;
    }
    stopping = true;
    if (sg === undefined) {
      process.stderr.write(`slogate: ${signal} during start-up: exiting\n`);
      // Dying by the signal itself (its default action) skips the exit handlers, which abort the process while an
      // onnxruntime run (the profile sweep, the warm-up) is still in flight on a worker thread.
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
      return;
    }
    drainAndExit(sg, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // The config watch follows the file as given: not in the processes of `serve --processes` (their config is derived).
  const watched = derive === undefined && !cluster.isWorker && values.config !== '' ? values.config : undefined;
  const started = await createSlogate({ config, configFile: watched });
  // One /metrics view per gateway process, told apart by this label.
  if (cluster.isWorker) started.metrics.registry.setDefaultLabels({ process: String(cluster.worker?.id ?? 0) });
  installLastResort({ logger: started.logger });
  const address = await started.listen();
  sg = started;
  const gc = singleThreadedGc(process.execArgv) ? 'single-threaded' : 'parallel';
  const gcPretenuring = pretenuring(process.execArgv) ? 'on' : 'off';
  sg.logger.info(
    { address, routes: [...sg.router.routes.keys()], gc, gcPretenuring },
    `slogate ${VERSION} serving on ${address}`,
  );
  // A gateway process shares its primary's stdout: the primary says when all of them are ready.
  if (!cluster.isWorker)
    process.stdout.write(
      `slogate ${VERSION} ready: ${address}  (routes: ${[...sg.router.routes.keys()].join(', ')}; try ${address}/v2/models/${[...sg.router.routes.keys()][0] ?? ''})\n`,
    );
  // Started by a `serve --processes` primary or cli.ts's relaunch (an IPC channel): drain when it goes, even if it
  // was killed.
  if (process.connected) process.once('disconnect', () => onSignal('SIGTERM'));
}

/** Drains and exits 0; exits 1 if the shutdown fails or outlasts its bound (a kept reference: it holds the process). */
function drainAndExit(sg: Slogate, signal: NodeJS.Signals): void {
  const boundMs = shutdownBoundMs(sg.config.server);
  sg.logger.info({ signal, boundMs }, `${signal}: draining`);
  setTimeout(() => {
    sg.logger.error({ boundMs }, 'shutdown did not finish within its bound; exiting');
    process.exit(1);
  }, boundMs);
  sg.close().then(
    () => process.exit(0),
    (err: unknown) => {
      sg.logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}

/**
 * A runtime node: every model of the config served under its own name (versions = variants) on local workers, with
 * batching but no engine and no admission; gateways list it in runtime.replicas and pin a version per batch.
 */
export function runtimeNodeConfig(config: Readonly<Config>): Config {
  const c = structuredClone(config) as Config;
  c.runtime.replicas = [];
  c.routes = {};
  for (const [name, m] of Object.entries(c.models)) {
    const first = Object.keys(m.variants)[0] as string;
    c.routes[name] = {
      model: name,
      slo: { p99Ms: 600_000 },
      priority: 0,
      objective: 'max-accuracy',
      utilityCostWeight: 0,
      policy: { kind: 'static', variant: first, maxBatch: m.maxBatch, maxQueueDelayMs: 0 },
    };
  }
  if (c.runtime.workers === 0) c.runtime.workers = 'auto';
  // Gateways send each batch's deadline: what cannot make it is refused at once, so they retry elsewhere in time.
  c.runtime.refuseUnreachable = true;
  return c;
}

async function runtimeCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, host: { type: 'string' }, port: { type: 'string', short: 'p' } },
  });
  await serve(
    [
      '--config',
      values.config ?? '',
      ...(values.host !== undefined ? ['--host', values.host] : []),
      ...(values.port !== undefined ? ['--port', values.port] : []),
    ],
    runtimeNodeConfig,
  );
}

/** `serve --processes`: the primary starts the runtime node and the gateway processes, and stops them on a signal. */
async function serveProcesses(argv: string[], configFile: string, processes: string, config: Config): Promise<void> {
  const serveArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--processes') i++;
    else if (!(argv[i] as string).startsWith('--processes=')) serveArgs.push(argv[i] as string);
  }
  const n = resolveProcesses(processes);
  const { address, supervisor } = await superviseProcesses({
    cli: fileURLToPath(import.meta.url),
    configFile,
    serveArgs,
    processes: n,
    nodeSlots: resolveWorkers(runtimeNodeConfig(config)),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`slogate ${VERSION} ready: ${address}  (${n} gateway processes over one runtime node)\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    supervisor.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // Started by cli.ts's relaunch (an IPC channel): stop everything when it goes, even if it was killed.
  if (process.connected) process.once('disconnect', stop);
}

async function checkConfig(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' } },
  });
  const file = values.config ?? positionals[0];
  const config = load(file);
  const runtime = await withRuntime(config, async (rt) => rt);
  const lines = [`${file}: valid`];
  for (const m of runtime.models.values()) {
    const sig = m.signature;
    lines.push(
      `  model ${m.name}: ${m.variants.size} variants; inputs ${sig?.inputs.map((i) => `${i.name} ${i.datatype}[${i.shape.join(',')}]`).join(', ')}`,
    );
    for (const v of m.variants.values())
      lines.push(
        `    ${v.name}: ${v.sizeBytes} bytes, sha256 ${v.sha256.slice(0, 12)}, accuracy ${v.accuracy ?? 'not measured'}`,
      );
  }
  for (const w of runtime.warnings) lines.push(`  warning: ${w}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Starts a runtime without a gateway (its configured workers; no profiling unless asked), runs fn, and closes it. */
async function withRuntime<T>(config: Readonly<Config>, fn: (rt: Runtime) => Promise<T>, profiles = false): Promise<T> {
  const c = structuredClone(config) as Config;
  c.runtime.profile.enabled = profiles;
  const runtime = await Runtime.create({
    config: c,
    clock: new SystemClock(),
    metrics: new Metrics({ defaultMetrics: false }),
    logger: silentLogger,
  });
  try {
    await runtime.start();
    return await fn(runtime);
  } finally {
    await runtime.close();
  }
}

async function evaluate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, model: { type: 'string', short: 'm' } },
  });
  const config = load(values.config);
  const models =
    values.model !== undefined
      ? [values.model]
      : Object.keys(config.models).filter((m) => config.models[m]?.eval !== undefined);
  if (models.length === 0) fail('no model has an eval set (models.<name>.eval)');
  await withRuntime(config, async (rt) => {
    for (const model of models) {
      const meta = await evaluateModel(rt, model);
      process.stdout.write(
        `model ${model} (${meta.eval?.samples} eval samples) -> ${rt.repository.model(model).config.metadata}\n`,
      );
      for (const [name, v] of Object.entries(meta.variants))
        process.stdout.write(
          `  ${name.padEnd(16)} accuracy ${(v.accuracy * 100).toFixed(2)}%  (${v.correct}/${v.samples})\n`,
        );
    }
  });
}

async function profile(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, fresh: { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const c = structuredClone(load(values.config)) as Config;
  if (values.fresh === true) c.runtime.profile.cacheDir = mkdtempSync(join(tmpdir(), 'slogate-profile-'));
  try {
    await withRuntime(c, async (runtime) => printProfiles(runtime, c, values.json === true), true);
  } finally {
    if (values.fresh === true) rmSync(c.runtime.profile.cacheDir, { recursive: true, force: true });
  }
}

/** `slogate profile`'s output: the profiles as JSON, or a table. */
function printProfiles(runtime: Runtime, c: Readonly<Config>, json: boolean): void {
  const snap = runtime.profileSnapshot();
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ host: hostKey({ provider: runtime.provider, intraOpThreads: resolveIntraOpThreads(c), replicas: runtime.readySlots }), profiles: snap }, null, 2)}\n`,
    );
    return;
  }
  const rows = [['variant', 'batch', 'p50 ms', 'p99 ms', 'p50 ms/row', 'samples']];
  for (const s of snap)
    for (const p of s.points)
      rows.push([
        variantKey(s.model, s.variant),
        String(p.rows),
        p.p50Ms.toFixed(3),
        p.p99Ms.toFixed(3),
        (p.p50Ms / p.rows).toFixed(4),
        String(p.samples),
      ]);
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  process.stdout.write(`${rows.map((r) => r.map((x, i) => x.padStart(widths[i] as number)).join('  ')).join('\n')}\n`);
  process.stdout.write(`provider ${runtime.provider}, ${runtime.readySlots} replica(s), all busy while measuring\n`);
}

const SIMULATE_USAGE = `slogate simulate --config FILE [options]: what-if for a policy, before applying it

Replays arrivals through the real router, admission, tradeoff engine and batching scheduler on a simulated clock,
with replicas whose service times follow this host's measured latency profiles (measured now, or read from the
profile cache). Prints, per route: offered, attainment, shed and dropped requests, p99, effective accuracy, cost.

  --pattern step:LOW,HIGH,AT,FOR | bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S | clumped:LOW,HIGH,AT,FOR,MEANGAP_MS
                                            (clumped: LOW Poisson, and up to HIGH from AT s for FOR s in clumps
                                            at exponential gaps, as a loop held by a closed-loop flood hands them on)
  --rate R [--arrivals poisson|uniform]     a constant rate instead of a pattern
  --trace FILE                              CSV arrival_ms,route[,deadline_ms]
  --route R                                 route of --pattern/--rate arrivals (default: the config's first route)
  --duration S (60)   --seed N (1)   --replicas N (the config's workers)   --json   --decisions (print every switch)
`;

async function simulateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      pattern: { type: 'string' },
      rate: { type: 'string' },
      arrivals: { type: 'string', default: 'poisson' },
      trace: { type: 'string' },
      route: { type: 'string' },
      duration: { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
      replicas: { type: 'string' },
      json: { type: 'boolean' },
      decisions: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(SIMULATE_USAGE);
    return;
  }
  const config = load(values.config);
  const route = values.route ?? Object.keys(config.routes)[0] ?? '';
  if (config.routes[route] === undefined) fail(`unknown route '${route}'`);
  const durationMs = Number(values.duration) * 1000;
  if (!(durationMs > 0)) fail('--duration must be a positive number of seconds');
  const arrivals = values.arrivals === 'uniform' ? 'uniform' : 'poisson';
  let spec: LoadSpec;
  if (values.trace !== undefined)
    spec = { kind: 'trace', rows: parseTrace(readFileSync(values.trace, 'utf8'), values.trace) };
  else if (values.pattern !== undefined) spec = parsePattern(values.pattern, arrivals);
  else if (values.rate !== undefined) spec = { kind: 'constant', rate: Number(values.rate), arrivals };
  else fail(`one of --pattern, --rate or --trace is needed\n\n${SIMULATE_USAGE}`);
  const schedule = buildSchedule(spec, {
    durationMs,
    maxRequests: 5_000_000,
    seed: Number(values.seed),
    route,
    deadlineMs: (r) => config.routes[r]?.slo.p99Ms ?? 1000,
  });
  for (const r of schedule.routes)
    if (config.routes[r] === undefined) fail(`the trace names route '${r}', which the config does not have`);
  // The host's profiles: measured through real workers (or read from the cache), then the workers stop.
  const measured = await withRuntime(
    config,
    async (rt) => ({ points: rt.profiles.snapshot(), hopMs: rt.profiles.hopMs }),
    true,
  );
  const profiles = new Map(measured.points.map((p) => [variantKey(p.model, p.variant), p.points]));
  const sim = Array.from(schedule.atMs, (atMs, i) => ({
    atMs,
    route: schedule.routes[schedule.route[i] as number] as string,
    deadlineMs: schedule.deadlineMs[i] as number,
  }));
  const replicas = values.replicas !== undefined ? Number(values.replicas) : resolveWorkers(config);
  const t0 = performance.now();
  const result = await simulate({
    config,
    profiles,
    hopMs: measured.hopMs,
    replicas,
    arrivals: sim,
    seed: Number(values.seed),
  });
  const wallMs = performance.now() - t0;
  if (values.json === true) {
    process.stdout.write(
      `${JSON.stringify({ load: schedule.description, replicas, wallMs: Math.round(wallMs), ...result }, null, 2)}\n`,
    );
    return;
  }
  const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : '-');
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  process.stdout.write(
    `${schedule.description}, ${sim.length} arrivals, ${replicas} replica(s); simulated ${(result.simulatedMs / 1000).toFixed(1)} s in ${(wallMs / 1000).toFixed(1)} s\n\n`,
  );
  const rows = [
    [
      'route',
      'offered',
      'attainment',
      'of admitted',
      'shed',
      'dropped',
      'late',
      'p99 ms',
      'eff. accuracy',
      'cost/M',
      'switches',
      'variant mix',
    ],
  ];
  for (const r of result.routes) {
    if (r.offered === 0) continue;
    const mix = Object.entries(r.variantMix)
      .filter(([, s]) => s > 0)
      .map(([v, s]) => `${v} ${Math.round(s * 100)}%`)
      .join(', ');
    rows.push([
      r.route,
      String(r.offered),
      pct(r.attainment),
      pct(r.attainmentAdmitted),
      String(r.shed),
      String(r.dropped),
      String(r.late),
      ms(r.p99Ms),
      pct(r.effectiveAccuracy),
      r.costPerMillion.toFixed(4),
      String(r.switches),
      mix,
    ]);
  }
  const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  process.stdout.write(`${rows.map((r) => r.map((x, i) => x.padEnd(widths[i] as number)).join('  ')).join('\n')}\n`);
  if (values.decisions === true) {
    process.stdout.write('\ndecisions:\n');
    for (const d of result.decisions)
      process.stdout.write(
        `  ${(d.atMs / 1000).toFixed(2).padStart(7)} s  ${d.route}: ${d.from} -> ${d.to}: ${d.reason}\n`,
      );
  }
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'runtime':
      return runtimeCommand(rest);
    case 'eval':
      return evaluate(rest);
    case 'profile':
      return profile(rest);
    case 'simulate':
      return simulateCommand(rest);
    case 'bench':
      return (await import('./bench/cli.js')).benchMain(rest);
    case 'apply': {
      const inputs = (file: string) => ({
        config: loadConfigFile(file, process.env),
        revisionOfFile: async (path: string) => `sha256:${await sha256File(path)}`,
      });
      return exitWith(applyCommand(rest, adminIo(), inputs));
    }
    case 'rollout':
      return exitWith(rolloutCommand(rest, adminIo()));
    case 'deploy':
    case 'rollback':
    case 'revisions':
      return exitWith(revisionsCommand(cmd, rest, adminIo()));
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`);
      return;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command '${cmd}'\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isSlogateError(err)) fail(`${err.message}`, 1);
  if (process.env.SLOGATE_DEBUG) console.error(err);
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
