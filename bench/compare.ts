// `slogate bench compare`: the same schedule against every contender, one at a time, in one run. Each slogate policy
// gets its own `slogate serve` (a derived config on a free loopback port, ready on /v2/health/ready, stopped by PID);
// the naive peer runs the same way; the raw limit runs onnxruntime in a child process without HTTP.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../core/config.js';
import type { EvalSet } from '../runtime/eval-set.js';
import type { RouteInputs } from './inputs.js';
import type { RawReport, RawVariant } from './peers/raw-ort.js';
import {
  type Batching,
  bestBatching,
  defaultPolicyIds,
  derivePolicyConfig,
  type PolicyContext,
  type PolicySpec,
  type ProfilePoint,
  parsePolicyId,
  type RawPolicy,
} from './policies.js';
import type { ProgressSink } from './progress.js';
import { type BenchResult, hostDescription, prepareInputs, runBench } from './run.js';
import {
  findCapacity,
  type Probe,
  type ScenarioName,
  type ScenarioPlan,
  scenarioPlan,
  scenarioRuns,
} from './scenarios.js';
import { type ServerProcess, startNodeProcess, startSlogateProcess } from './server-process.js';
import type { Protocol } from './v2-requests.js';

const DIST = new URL('../', import.meta.url).pathname;
const execFileP = promisify(execFile);

export interface CompareOptions {
  readonly configFile: string;
  readonly config: Readonly<Config>;
  readonly route: string;
  readonly scenario: ScenarioName;
  readonly quick: boolean;
  /** Base rate C; calibrated (C_L) when absent. */
  readonly rate?: number | undefined;
  readonly policies?: readonly string[] | undefined;
  readonly protocol: Protocol;
  readonly seed: number;
  readonly durationS?: number | undefined;
  readonly evalSet?: EvalSet | undefined;
  /** Sweep points as multiples of the common base rate (same offered loads for all) or of each policy's own capacity. */
  readonly sweepBase: 'common' | 'own';
  readonly maxConnections: number;
  readonly log: (line: string) => void;
  readonly progress: (label: string) => { sink: ProgressSink; done(): void };
}

export interface CompareRun {
  readonly label: string;
  readonly factor?: number | undefined;
  readonly result: BenchResult | null;
  readonly error?: string;
  /**
   * A slogate contender's decision for the route when the run started and its changes during the run, warm-up
   * included (from GET /admin/decisions): what the engine chose, when, and why, to explain a run's numbers afterwards.
   */
  readonly decisions?: readonly DecisionRecord[];
}

/** One decision change as the admin API reports it, trimmed to what explains a run. */
export interface DecisionRecord {
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly inputs: unknown;
}

/**
 * The decision in force for the route when the run started (epoch ms), then its changes during the run; [] when the
 * server has no admin API to ask.
 */
async function decisionsSince(url: string, route: string, sinceMs: number): Promise<DecisionRecord[]> {
  try {
    const res = await request(`${url}/admin/decisions`, { headersTimeout: 5000, bodyTimeout: 5000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return [];
    }
    const body = (await res.body.json()) as {
      decisions?: {
        route: string;
        at: string;
        from: string;
        to: string;
        reason: string;
        decision?: { inputs?: unknown };
      }[];
    };
    const all = (body.decisions ?? []).filter((d) => d.route === route);
    const first = all.findIndex((d) => Date.parse(d.at) >= sinceMs);
    const from = first === -1 ? all.length - 1 : Math.max(0, first - 1);
    return all
      .slice(Math.max(0, from))
      .map((d) => ({ at: d.at, from: d.from, to: d.to, reason: d.reason, inputs: d.decision?.inputs }));
  } catch {
    return [];
  }
}

export interface CompareRow {
  readonly id: string;
  readonly label: string;
  readonly kind: PolicySpec['kind'];
  readonly policy?: RawPolicy;
  /** Capacity at SLO (sweep, and the calibration reference); null when not searched. */
  capacityRps: number | null;
  probes: Probe[];
  readonly runs: CompareRun[];
  /** Problems seen on the server: error log lines, crashes, non-zero exits. */
  readonly notes: string[];
  raw?: RawVariant;
}

export interface CompareResult {
  readonly kind: 'slogate-bench-compare';
  readonly meta: {
    readonly config: string;
    readonly route: string;
    readonly scenario: ScenarioName;
    readonly quick: boolean;
    readonly seed: number;
    readonly protocol: Protocol;
    readonly sloP99Ms: number;
    readonly minAccuracy: number | null;
    readonly baseRate: number;
    readonly baseRateSource: string;
    readonly sweepBase: 'common' | 'own';
    readonly plan: ScenarioPlan;
    readonly host: string;
    readonly startedAt: string;
    readonly wallS: number;
  };
  /** Accuracy per variant (model.yaml) and the batching chosen as each variant's best. */
  readonly variants: Readonly<
    Record<string, { accuracy: number | null; best: Batching; p50MsAtBatch1: number | null }>
  >;
  readonly rows: readonly CompareRow[];
}

interface Target {
  readonly url: string;
  /** Request bodies encoded once per target from its metadata (encoding 2000 JSON bodies takes a while). */
  readonly inputs: readonly RouteInputs[];
  readonly notes: string[];
  stop(): Promise<void>;
}

function readAccuracies(metadataPath: string | undefined): Record<string, number> {
  if (metadataPath === undefined) return {};
  try {
    const doc = parseYaml(readFileSync(metadataPath, 'utf8')) as { variants?: Record<string, { accuracy?: unknown }> };
    return Object.fromEntries(
      Object.entries(doc.variants ?? {}).flatMap(([v, m]) => (typeof m.accuracy === 'number' ? [[v, m.accuracy]] : [])),
    );
  } catch {
    return {};
  }
}

/** Service-time profiles from `slogate profile --json` (cached on disk by the server after its first start). */
async function readProfiles(
  config: Record<string, unknown>,
  log: (l: string) => void,
): Promise<Map<string, ProfilePoint[]>> {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { stringify } = await import('yaml');
  const file = join(mkdtempSync(join(tmpdir(), 'slogate-bench-profile-')), 'slogate.yaml');
  writeFileSync(file, stringify(config));
  try {
    const { stdout } = await execFileP(
      process.execPath,
      [join(DIST, 'cli.js'), 'profile', '--config', file, '--json'],
      { timeout: 180_000, maxBuffer: 16 << 20 },
    );
    const doc = JSON.parse(stdout) as { profiles: { variant: string; points: ProfilePoint[] }[] };
    return new Map(doc.profiles.map((p) => [p.variant, p.points]));
  } catch (err) {
    log(
      `compare: no service-time profile (${(err as Error).message.split('\n')[0]}); best batching falls back to 8 rows, 5 ms`,
    );
    return new Map();
  }
}

/** Captures error-level (pino level >= 50) log lines and an unexpected exit of a server under test. */
function watch(server: ServerProcess, notes: string[]): { stopping: () => void } {
  let stopping = false;
  let errors = 0;
  const onLine = (line: string) => {
    if (!line.startsWith('{')) return;
    try {
      const l = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((l.level ?? 0) >= 50) {
        errors++;
        if (errors <= 5)
          notes.push(
            `server error log: ${l.msg ?? ''}${l.err?.message !== undefined ? `: ${l.err.message}` : ''}`.slice(0, 300),
          );
        if (errors === 6) notes.push('server error log: (more errors not shown)');
      }
    } catch {
      // not a log line
    }
  };
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
  };
  server.child.stdout?.on('data', onData);
  server.child.stderr?.on('data', onData);
  server.child.once('exit', (code, signal) => {
    if (!stopping) notes.push(`server exited during the run (code ${code}, signal ${signal})`);
  });
  return { stopping: () => (stopping = true) };
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await request(`${url}/v2/health/ready`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url}/v2/health/ready did not answer 200 within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function startTarget(spec: Exclude<PolicySpec, { kind: 'raw' }>, o: CompareOptions): Promise<Target> {
  const notes: string[] = [];
  let server: ServerProcess;
  if (spec.kind === 'slogate') {
    server = await startSlogateProcess(derivePolicyConfig(o.config, o.route, spec));
  } else {
    const model = o.config.models[o.config.routes[o.route]?.model ?? ''];
    const path = model?.variants[spec.variant]?.path;
    if (path === undefined) throw new Error(`naive: no variant ${spec.variant}`);
    server = await startNodeProcess(join(DIST, 'bench', 'peers', 'naive.js'), [
      '--route',
      o.route,
      '--variant',
      `${spec.variant}=${path}`,
    ]);
  }
  const w = watch(server, notes);
  let inputs: RouteInputs[];
  try {
    await waitReady(server.url, 60_000);
    inputs = await prepareInputs(
      {
        url: server.url,
        protocol: o.protocol,
        inputs: o.evalSet === undefined ? 'random' : 'eval',
        evalSet: o.evalSet,
        seed: o.seed,
      },
      [o.route],
      true,
    );
  } catch (err) {
    w.stopping();
    await server.stop(2000);
    throw err;
  }
  return {
    url: server.url,
    inputs,
    notes,
    stop: async () => {
      w.stopping();
      const code = await server.stop(15_000);
      if (code !== 0) notes.push(`server exit code on SIGTERM: ${code} (expected 0 after draining)`);
    },
  };
}

async function rawLimit(
  spec: Extract<PolicySpec, { kind: 'raw' }>,
  o: CompareOptions,
  maxBatch: number,
): Promise<RawVariant> {
  const model = o.config.models[o.config.routes[o.route]?.model ?? ''];
  const path = model?.variants[spec.variant]?.path;
  if (path === undefined) throw new Error(`raw: no variant ${spec.variant}`);
  const batches: number[] = [];
  for (let b = 1; b <= maxBatch; b *= 2) batches.push(b);
  const { stdout } = await execFileP(
    process.execPath,
    [
      join(DIST, 'bench', 'peers', 'raw-ort.js'),
      '--variant',
      `${spec.variant}=${path}`,
      '--batches',
      batches.join(','),
      '--ms',
      o.quick ? '300' : '2000',
    ],
    { timeout: 300_000, maxBuffer: 16 << 20 },
  );
  const report = JSON.parse(stdout) as RawReport;
  const v = report.variants[0];
  if (v === undefined) throw new Error('raw-ort reported no variant');
  return v;
}

export async function runCompare(o: CompareOptions): Promise<CompareResult> {
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const rc = o.config.routes[o.route];
  if (rc === undefined)
    throw new Error(`the config has no route '${o.route}' (${Object.keys(o.config.routes).join(', ')})`);
  const model = o.config.models[rc.model];
  if (model === undefined) throw new Error(`route ${o.route}: unknown model ${rc.model}`);
  const P = rc.slo.p99Ms;
  const accuracy = readAccuracies(model.metadata);
  const variants = [...(rc.variants ?? Object.keys(model.variants))].sort(
    (a, b) => (accuracy[b] ?? -1) - (accuracy[a] ?? -1),
  );

  o.log(`compare: reading service-time profiles of ${variants.length} variants`);
  const profiles = await readProfiles(
    derivePolicyConfig(o.config, o.route, { kind: 'slogate', id: 'adaptive', label: '', policy: 'adaptive' }),
    o.log,
  );
  const p50At1 = (v: string) => profiles.get(v)?.find((p) => p.rows === 1)?.p50Ms ?? null;
  const best = (v: string): Batching => {
    const pts = profiles.get(v);
    return pts === undefined || pts.length === 0 ? { maxBatch: 8, maxQueueDelayMs: 5 } : bestBatching(pts, P);
  };
  const fastest =
    [...variants].sort(
      (a, b) => (p50At1(a) ?? Number.POSITIVE_INFINITY) - (p50At1(b) ?? Number.POSITIVE_INFINITY),
    )[0] ?? (variants.at(-1) as string);
  const ctx: PolicyContext = {
    variants,
    fastest: profiles.size > 0 ? fastest : (variants.at(-1) as string),
    modelMaxBatch: model.maxBatch,
    best,
  };
  const specs = (o.policies ?? defaultPolicyIds(ctx, o.quick)).map((id) => parsePolicyId(id, ctx));
  const plan = scenarioPlan(o.scenario, o.quick, o.durationS);
  const workers =
    o.config.runtime.workers === 'auto'
      ? Math.max(1, availableParallelism() - 1)
      : Math.max(1, o.config.runtime.workers);

  const probeRun = async (
    url: string,
    prepared: readonly RouteInputs[],
    rate: number,
    label: string,
  ): Promise<Probe> => {
    const r = await runBench(
      {
        url,
        route: o.route,
        mode: { kind: 'open', load: { kind: 'constant', rate, arrivals: 'poisson' } },
        protocol: o.protocol,
        inputs: o.evalSet === undefined ? 'random' : 'eval',
        evalSet: o.evalSet,
        durationS: plan.probeS,
        maxRequests: Math.ceil(rate * plan.probeS * 2 + 100),
        seed: o.seed,
        sloMs: () => P,
        warmupS: plan.warmupS,
        maxConnections: o.maxConnections,
      },
      prepared,
    );
    const s = r.summary.overall;
    // Latency counts from the scheduled send, so a lagging sender only makes the server look worse: a probe that
    // holds the SLO despite lag holds it; one that misses with lag is inconclusive and counts as a miss.
    const ok = (s.attainment.overOffered ?? 0) >= 0.99 && (s.latency.p99Ms ?? Number.POSITIVE_INFINITY) <= P;
    const note = `attainment ${((s.attainment.overOffered ?? 0) * 100).toFixed(1)}%, p99 ${s.latency.p99Ms} ms${r.valid ? '' : `, sender lag p99 ${r.summary.lag?.p99Ms} ms (${ok ? 'passed anyway' : 'inconclusive'})`}`;
    o.log(`  ${label}: probe ${rate.toFixed(1)}/s -> ${ok ? 'holds' : 'misses'} the SLO (${note})`);
    return { rate: Math.round(rate * 10) / 10, ok, note };
  };
  const searchCapacity = (t: Target, start: number, label: string, maxProbes = plan.maxProbes) =>
    findCapacity((r) => probeRun(t.url, t.inputs, r, label), {
      startRate: start,
      maxProbes,
      minRate: 2,
      maxRate: 20_000,
      tolerance: o.quick ? 0.25 : 0.1,
    });

  // The base rate: given, or C_L = the capacity at SLO of the most accurate variant with its best fixed batching.
  const capacities = new Map<string, { capacity: number; probes: Probe[] }>();
  let baseRate = o.rate;
  let baseRateSource = '--rate';
  if (baseRate === undefined) {
    const refId = `static:${variants[0]}:best`;
    const ref = parsePolicyId(refId, ctx) as Extract<PolicySpec, { kind: 'slogate' }>;
    const b = best(variants[0] as string);
    const s50 = profiles.get(variants[0] as string)?.find((p) => p.rows === b.maxBatch)?.p50Ms;
    const guess = s50 === undefined ? 100 : Math.min(5000, Math.max(10, (0.5 * workers * b.maxBatch * 1000) / s50));
    o.log(`compare: calibrating the base rate C_L with ${ref.label} (start ${guess.toFixed(0)}/s)`);
    const t = await startTarget(ref, o);
    try {
      // Everything else is measured against C_L: give its search twice the probes.
      const c = await searchCapacity(t, guess, ref.label, 2 * plan.maxProbes);
      capacities.set(refId, c);
      baseRate = c.capacity;
    } finally {
      await t.stop();
    }
    if (baseRate <= 0) {
      const tried = capacities.get(refId)?.probes.map((p) => p.rate) ?? [];
      throw new Error(
        `calibration: ${ref.label} held p99 <= ${P} ms at none of the rates tried (${tried.join(', ')}/s); give --rate`,
      );
    }
    baseRateSource = `capacity at SLO of ${ref.label} (C_L)`;
    o.log(`compare: C_L = ${baseRate.toFixed(1)}/s`);
  }
  const C = baseRate;

  const rows: CompareRow[] = [];
  for (const spec of specs) {
    const row: CompareRow = {
      id: spec.id,
      label: spec.label,
      kind: spec.kind,
      ...(spec.kind === 'slogate' ? { policy: spec.policy } : {}),
      capacityRps: capacities.get(spec.id)?.capacity ?? null,
      probes: capacities.get(spec.id)?.probes ?? [],
      runs: [],
      notes: [],
    };
    rows.push(row);
    o.log(`compare: ${spec.label}`);
    if (spec.kind === 'raw') {
      try {
        row.raw = await rawLimit(spec, o, model.maxBatch);
      } catch (err) {
        row.notes.push(`raw-ort failed: ${(err as Error).message.split('\n')[0]}`);
      }
      continue;
    }
    let target: Target;
    try {
      target = await startTarget(spec, o);
    } catch (err) {
      row.notes.push(`could not start: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
      continue;
    }
    try {
      let base = C;
      if (o.scenario === 'sweep') {
        if (row.capacityRps === null) {
          const c = await searchCapacity(target, C, spec.label);
          row.capacityRps = c.capacity;
          row.probes = c.probes;
          // The load points start on a fresh server: the search's overload probes would otherwise leave an adaptive
          // contender climbing back from its cheapest variant through the first point (and a static one with a warm
          // cache the others lack).
          await target.stop();
          row.notes.push(...target.notes);
          target = await startTarget(spec, o);
        }
        if (o.sweepBase === 'own') base = row.capacityRps ?? C;
      }
      for (const run of scenarioRuns(o.scenario, base, plan)) {
        if (run.factor !== undefined && o.scenario === 'sweep' && base <= 0) continue;
        const p = o.progress(`${spec.id} ${run.label}`);
        const runStartMs = Date.now();
        try {
          const result = await runBench(
            {
              url: target.url,
              route: o.route,
              mode: { kind: 'open', load: run.load },
              protocol: o.protocol,
              inputs: o.evalSet === undefined ? 'random' : 'eval',
              evalSet: o.evalSet,
              durationS: run.durationS,
              maxRequests: 2_000_000,
              seed: o.seed,
              sloMs: () => P,
              warmupS: plan.warmupS,
              maxConnections: o.maxConnections,
              progress: p.sink,
            },
            target.inputs,
          );
          p.done();
          const decisions = spec.kind === 'slogate' ? await decisionsSince(target.url, o.route, runStartMs) : undefined;
          row.runs.push({
            label: run.label,
            factor: run.factor,
            result,
            ...(decisions === undefined ? {} : { decisions }),
          });
        } catch (err) {
          p.done();
          row.runs.push({
            label: run.label,
            factor: run.factor,
            result: null,
            error: (err as Error).message.split('\n')[0] as string,
          });
        }
      }
    } finally {
      await target.stop();
      row.notes.push(...target.notes);
    }
  }

  return {
    kind: 'slogate-bench-compare',
    meta: {
      config: o.configFile,
      route: o.route,
      scenario: o.scenario,
      quick: o.quick,
      seed: o.seed,
      protocol: o.protocol,
      sloP99Ms: P,
      minAccuracy: rc.slo.minAccuracy ?? null,
      baseRate: Math.round(C * 10) / 10,
      baseRateSource,
      sweepBase: o.sweepBase,
      plan,
      host: hostDescription(),
      startedAt,
      wallS: Math.round((Date.now() - t0) / 100) / 10,
    },
    variants: Object.fromEntries(
      variants.map((v) => [v, { accuracy: accuracy[v] ?? null, best: best(v), p50MsAtBatch1: p50At1(v) }]),
    ),
    rows,
  };
}
