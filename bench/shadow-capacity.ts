// The shadow phase's cost in capacity at the SLO (BENCHMARKS.md, "Rollouts"): one server (a child process on
// 127.0.0.1) with the config's first model and one route on --variant; the highest Poisson rate whose p99 stays under
// --p99 with 99% answered (the bounded search of bench/capacity.ts: findCapacity over open-loop runBench probes).
// Searches alternate: without a rollout, then with --file's rollout held in its shadow phase at --shadow percent
// (paused, thresholds out of reach so the search's own overload cannot end it), then without again (the rollout
// aborted), --rounds times, so each shadowed search is bracketed by two without. --server-cpus pins the server
// (taskset) so the load generator, pinned by the caller to the other cores, never competes with it.
// Each search starts --settle-s after the last change; --warmup-searches run first and are not counted. Bounded: at
// most --max-probes probes of --probe seconds per search, 2 * --rounds + 1 + --warmup-searches searches.
//   taskset -c 0 node dist/bench/shadow-capacity.js --config bench/rollout.yaml \
//     --file models/digits/revisions/small-reexport.onnx [--variant small] [--shadow 5] [--p99 25] [--probe 4] \
//     [--max-probes 8] [--start-rate 400] [--rounds 3] [--warmup-searches 1] [--settle-s 5] [--server-cpus 1]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { probeCapacity } from './capacity-probe.js';
import { processCpuMs } from './proc-stat.js';
import { prepareInputs } from './run.js';
import { findCapacity } from './scenarios.js';
import { type ServerProcess, startSlogateProcess } from './server-process.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values: o } = parseArgs({
  options: {
    config: { type: 'string', default: join(ROOT, 'bench', 'rollout.yaml') },
    file: { type: 'string' },
    variant: { type: 'string' },
    shadow: { type: 'string', default: '5' },
    p99: { type: 'string', default: '25' },
    probe: { type: 'string', default: '4' },
    'max-probes': { type: 'string', default: '8' },
    'start-rate': { type: 'string', default: '400' },
    rounds: { type: 'string', default: '3' },
    'warmup-searches': { type: 'string', default: '1' },
    'settle-s': { type: 'string', default: '5' },
    'cpu-rate': { type: 'string', default: '500' },
    'cpu-s': { type: 'string', default: '10' },
    'server-cpus': { type: 'string' },
    eval: { type: 'string', default: join(ROOT, 'models', 'digits', 'eval.bin') },
  },
});
if (o.file === undefined) throw new Error('--file is required (the candidate revision held in shadow)');
const P99 = Number(o.p99);
const PROBE_S = Number(o.probe);
const SHADOW = Number(o.shadow);
// The server is this script's own child: a fixed token, never the operator's.
const TOKEN = 'bench-shadow-capacity';
const auth = { authorization: `Bearer ${TOKEN}` };
const config = loadConfigFile(o.config as string, { ...process.env, SLOGATE_ADMIN_TOKEN: TOKEN });
const [modelName, model] = Object.entries(config.models)[0] ?? [];
if (model === undefined || modelName === undefined) throw new Error('the config has no model');
const variant = o.variant ?? Object.keys(model.variants)[0];
if (variant === undefined || model.variants[variant] === undefined) throw new Error(`no variant ${variant}`);
const workers = config.runtime.workers === 'auto' ? 1 : config.runtime.workers;
const evalSet = readEvalSet(o.eval as string);
/** Held in shadow: no time ends the phase, and no threshold the search's overload could cross. */
const HELD = {
  shadowPercent: SHADOW,
  shadowSeconds: 86_400,
  steps: [100],
  bakeSeconds: 86_400,
  minAgreement: 0,
  maxErrorRateIncrease: 1,
  maxP99Increase: 100,
  minTailIncreaseMs: 60_000,
  minP50IncreaseMs: 60_000,
};

const STORE_DIR = mkdtempSync(join(tmpdir(), 'slogate-shadow-capacity-'));

function serverConfig(): Record<string, unknown> {
  return {
    server: { logLevel: 'warn', adminToken: TOKEN, warmup: { requests: 200 } },
    // No inline batches: a rollout turns them off for its variant, and this measures the shadow work alone.
    runtime: { workers, inlineMaxMs: 0, profile: { cacheDir: join(ROOT, '.slogate-cache') } },
    store: { dir: STORE_DIR },
    models: {
      [modelName as string]: {
        maxBatch: model?.maxBatch,
        metadata: model?.metadata,
        maxSlowdown: 1000,
        variants: { [variant as string]: model?.variants[variant as string] },
      },
    },
    routes: {
      r: {
        model: modelName,
        slo: { p99Ms: P99 },
        // Work-conserving batching, as bench/capacity.ts: a policy that grows its batches toward the target (aimd)
        // keeps p99 near it at any rate and leaves the search nothing to find.
        policy: { static: { variant, maxBatch: model?.maxBatch, maxQueueDelayMs: 0 } },
      },
    },
  };
}

async function admin(server: ServerProcess, method: string, path: string, body?: Uint8Array, headers = {}) {
  const res = await fetch(`${server.url}${path}`, { method, headers: { ...auth, ...headers }, body });
  return { status: res.status, text: await res.text() };
}

async function shadowCounts(server: ServerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^slogate_shadow_requests_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$/gm))
    counts[m[1] as string] = (counts[m[1] as string] ?? 0) + Number(m[2]);
  return counts;
}

function routeInputs(server: ServerProcess) {
  return prepareInputs({ url: server.url, protocol: 'binary', inputs: 'eval', evalSet, seed: 1 }, ['r'], true);
}

/** CPU per answered request at --cpu-rate: below capacity every shadow row runs, so it bounds the shadow's cost. */
async function cpuPerRequest(server: ServerProcess): Promise<{ us: number; p99Ms: number | null }> {
  const rate = Number(o['cpu-rate']);
  const durationS = Number(o['cpu-s']);
  const inputs = await routeInputs(server);
  const cpu0 = processCpuMs(server.pid);
  const r = await probeCapacity({ url: server.url, rate, durationS, p99Ms: P99, evalSet, warmupS: 0 }, inputs);
  const cpuMs = processCpuMs(server.pid) - cpu0;
  return { us: r.answered > 0 ? (cpuMs * 1000) / r.answered : Number.NaN, p99Ms: r.p99Ms };
}

/** CPU per request at --cpu-rate, then the capacity search; each after --settle-s. */
async function measure(server: ServerProcess, label: string): Promise<{ capacity: number; cpuUs: number }> {
  // A deploy or an abort leaves work behind (a session built or freed, the store written): let it pass first.
  await sleep(Number(o['settle-s']) * 1000);
  const cpu = await cpuPerRequest(server);
  const search = await searchCapacity(server);
  console.log(
    `${label}: ${search.capacity.toFixed(0)} req/s  [${search.probes.join(', ')}]; at ${o['cpu-rate']} req/s ` +
      `${cpu.us.toFixed(0)} us of server CPU per request, p99 ${cpu.p99Ms} ms`,
  );
  return { capacity: search.capacity, cpuUs: cpu.us };
}

/** The capacity search of bench/capacity.ts on route r: open-loop Poisson probes, 99% within the SLO. */
async function searchCapacity(server: ServerProcess): Promise<{ capacity: number; probes: string[] }> {
  const inputs = await routeInputs(server);
  const notes: string[] = [];
  const { capacity } = await findCapacity(
    async (rate) => {
      const { ok, note } = await probeCapacity(
        { url: server.url, rate, durationS: PROBE_S, p99Ms: P99, evalSet },
        inputs,
      );
      notes.push(note);
      return { rate, ok };
    },
    {
      startRate: Number(o['start-rate']),
      maxProbes: Number(o['max-probes']),
      minRate: 5,
      maxRate: 30_000,
      tolerance: 0.08,
    },
  );
  return { capacity, probes: notes };
}

async function rolloutState(server: ServerProcess): Promise<string> {
  const doc = JSON.parse((await admin(server, 'GET', '/admin/rollouts')).text) as {
    running: { phase: string; paused: boolean }[];
    finished: { state: string; reason: string }[];
  };
  const r = doc.running[0];
  if (r !== undefined) return `${r.phase}${r.paused ? ' (paused)' : ''}`;
  const f = doc.finished[0];
  return f === undefined ? 'none' : `${f.state}: ${f.reason}`;
}

const path = `/admin/models/${modelName}/variants/${variant}/revisions`;

/** Deploys --file held in its shadow phase, measures, then aborts the rollout. */
async function measureShadowed(server: ServerProcess): Promise<{ capacity: number; cpuUs: number }> {
  const headers = { 'content-type': 'application/octet-stream', 'x-slogate-rollout': JSON.stringify(HELD) };
  const deploy = await admin(server, 'POST', path, readFileSync(o.file as string), headers);
  if (deploy.status !== 202)
    throw new Error(`the deploy did not start a rollout: HTTP ${deploy.status} ${deploy.text}`);
  await admin(server, 'POST', `/admin/rollouts/${modelName}/${variant}/pause`);
  const before = await shadowCounts(server);
  const held = await measure(server, `shadow ${SHADOW}% held`);
  const after = await shadowCounts(server);
  const state = await rolloutState(server);
  const ran = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  console.log(`  shadow rows compared ${ran('compared')}, dropped ${ran('dropped')}; rollout ${state}`);
  if (!state.startsWith('shadow')) console.log('INVALID: the rollout left its shadow phase during the search');
  await admin(server, 'POST', `/admin/rollouts/${modelName}/${variant}/abort`);
  return held;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Percent by which `held` falls short of the mean of the two bracketing values (negative: above it). */
function shortfall(held: number, before: number, after: number): number {
  const base = (before + after) / 2;
  return base > 0 ? (100 * (base - held)) / base : Number.NaN;
}

async function main(): Promise<void> {
  const cpus = o['server-cpus'];
  const server = await startSlogateProcess(serverConfig(), cpus === undefined ? {} : { cpus });
  try {
    console.log(
      `server ${server.url}: ${modelName}/${variant}, p99 target ${P99} ms, ${workers} worker(s)` +
        `${cpus === undefined ? '' : `, on cpus ${cpus}`}`,
    );
    // A fresh server's capacity rises over its first minutes: searches then measure its warm-up, not the shadow.
    for (let i = 0; i < Number(o['warmup-searches']); i++) await measure(server, 'warm-up, not counted');
    const capacityCosts: number[] = [];
    const cpuCosts: number[] = [];
    let before = await measure(server, 'without a rollout');
    for (let round = 1; round <= Number(o.rounds); round++) {
      const held = await measureShadowed(server);
      const after = await measure(server, 'without a rollout');
      const capacityCost = shortfall(held.capacity, before.capacity, after.capacity);
      // A CPU-bound server's capacity is inversely proportional to its CPU per request: 1 - without/with.
      const cpuCost = 100 * (1 - (before.cpuUs + after.cpuUs) / 2 / held.cpuUs);
      capacityCosts.push(capacityCost);
      cpuCosts.push(cpuCost);
      console.log(
        `round ${round}: capacity ${capacityCost.toFixed(1)}% below the mean of the searches before and after; ` +
          `CPU per request ${cpuCost.toFixed(1)}% of capacity`,
      );
      before = after;
    }
    console.log(
      `shadow phase cost, median of ${capacityCosts.length} rounds: ${median(capacityCosts).toFixed(1)}% of the ` +
        `searched capacity, ${median(cpuCosts).toFixed(1)}% of CPU-bound capacity`,
    );
  } finally {
    await server.stop();
    rmSync(STORE_DIR, { recursive: true, force: true });
  }
}

await main();
