// The shadow phase's cost in capacity at the SLO (BENCHMARKS.md, "Rollouts"): one server (a child process on
// 127.0.0.1) with the config's first model and one route on --variant; the highest Poisson rate whose p99 stays under
// --p99 with 99% answered (the bounded search of bench/capacity.ts: findCapacity over open-loop runBench probes),
// first without a rollout, then with --file's rollout held in its shadow phase at --shadow percent (paused, thresholds
// out of reach so the search's own overload cannot end it), then without again (the rollout aborted) to bracket drift.
// Bounded: at most --max-probes probes of --probe seconds per search, three searches.
//   node dist/bench/shadow-capacity.js --config bench/rollout.yaml --file models/digits/revisions/small-reexport.onnx \
//     [--variant small] [--shadow 5] [--p99 25] [--probe 4] [--max-probes 8] [--start-rate 400]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { probeCapacity } from './capacity-probe.js';
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
    runtime: { workers, profile: { cacheDir: join(ROOT, '.slogate-cache') } },
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

/** The capacity search of bench/capacity.ts on route r: open-loop Poisson probes, 99% within the SLO. */
async function searchCapacity(server: ServerProcess): Promise<{ capacity: number; probes: string[] }> {
  const inputs = await prepareInputs(
    { url: server.url, protocol: 'binary', inputs: 'eval', evalSet, seed: 1 },
    ['r'],
    true,
  );
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

async function main(): Promise<void> {
  const server = await startSlogateProcess(serverConfig());
  try {
    console.log(`server ${server.url}: ${modelName}/${variant}, p99 target ${P99} ms, ${workers} worker(s)`);
    const without = await searchCapacity(server);
    console.log(`without a rollout: ${without.capacity.toFixed(0)} req/s  [${without.probes.join(', ')}]`);
    const path = `/admin/models/${modelName}/variants/${variant}/revisions`;
    const headers = { 'content-type': 'application/octet-stream', 'x-slogate-rollout': JSON.stringify(HELD) };
    const deploy = await admin(server, 'POST', path, readFileSync(o.file as string), headers);
    if (deploy.status !== 202)
      throw new Error(`the deploy did not start a rollout: HTTP ${deploy.status} ${deploy.text}`);
    await admin(server, 'POST', `/admin/rollouts/${modelName}/${variant}/pause`);
    const before = await shadowCounts(server);
    const held = await searchCapacity(server);
    const after = await shadowCounts(server);
    const state = await rolloutState(server);
    const ran = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    console.log(
      `shadow ${SHADOW}% held: ${held.capacity.toFixed(0)} req/s  [${held.probes.join(', ')}]; shadow rows ` +
        `compared ${ran('compared')}, dropped ${ran('dropped')}; rollout ${state}`,
    );
    if (!state.startsWith('shadow')) console.log('INVALID: the rollout left its shadow phase during the search');
    await admin(server, 'POST', `/admin/rollouts/${modelName}/${variant}/abort`);
    const again = await searchCapacity(server);
    console.log(`without, again:   ${again.capacity.toFixed(0)} req/s  [${again.probes.join(', ')}]`);
    const base = (without.capacity + again.capacity) / 2;
    console.log(
      `shadow phase cost at the SLO: ${base > 0 ? ((100 * (base - held.capacity)) / base).toFixed(1) : 'n/a'}% of ` +
        `capacity (${held.capacity.toFixed(0)} vs ${base.toFixed(0)} req/s, the mean of the runs before and after)`,
    );
  } finally {
    await server.stop();
    rmSync(STORE_DIR, { recursive: true, force: true });
  }
}

await main();
