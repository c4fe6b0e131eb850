// `npm run bench:capacity`: what batching buys and what the gateway costs, per variant. For each variant of the
// config's model: the highest Poisson rate (binary protocol, open loop) whose p99 stays under --p99 with batching off
// (maxBatch 1) and on (work-conserving, up to the model's maxBatch), the batch that formed at that rate, and beside
// it the raw onnxruntime throughput in-process (no HTTP) at that batch size with the same number of workers. Then the
// per-request cost of a remote replica hop against a local worker. With --naive, also the hand-written peer
// (bench/peers/naive.ts: session.run per request on its event loop) on the same file, searched the same way; with
// --bare, the HTTP floor (bench/peers/bare.ts: Fastify with slogate's options answering a precomputed answer, no
// model): a ceiling no gateway built on that stack passes on this host. Slogate and the peers are up at once and
// their searches probe in turns, so a burst of load from elsewhere lands on neighbouring probes of each; --rounds
// repeats that per variant and reports medians, a ratio being the median of the rounds' ratios. Each probe warms up
// for 1 s at its rate straight into the measured window: a step from idle costs any server a transient of its own,
// enough to fail a 4 s probe at a rate it sustains (BENCHMARKS.md). A missed probe is probed again (--retries) before
// the search counts it, so one stall of a shared host does not halve a server's result.
// Servers are child processes on 127.0.0.1, every run bounded; results go to bench/results/capacity.{json,md}. With
// --server-cpus the servers are pinned to those cores (taskset); run the bench itself pinned to the others.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { type CapacityProbe, probeCapacity } from './capacity-probe.js';
import type { RawReport } from './peers/raw-ort.js';
import { median } from './rounds.js';
import { prepareInputs, runBench } from './run.js';
import { findCapacity } from './scenarios.js';
import { type ServerProcess, startNodeProcess, startSlogateProcess } from './server-process.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const DIST = join(ROOT, 'dist');
const { values } = parseArgs({
  options: {
    config: { type: 'string', default: join(ROOT, 'slogate.yaml') },
    p99: { type: 'string', default: '25' },
    probe: { type: 'string', default: '4' },
    variants: { type: 'string' },
    'skip-hop': { type: 'boolean' },
    // Also the hand-written peer (bench/peers/naive.ts) on the same file, searched the same way.
    naive: { type: 'boolean' },
    // Also the HTTP floor (bench/peers/bare.ts, Fastify): the same search against a server with no model at all.
    bare: { type: 'boolean' },
    // Skip the search with batching off (maxBatch 1) and the raw onnxruntime run beside it.
    'skip-off': { type: 'boolean' },
    // Times a missed probe is repeated before it counts as missed (every server alike).
    retries: { type: 'string', default: '1' },
    // Pin the servers to these cores (taskset), the bench itself pinned by the caller to the others.
    'server-cpus': { type: 'string' },
    // The highest rate a search probes (req/s).
    'max-rate': { type: 'string', default: '30000' },
    // Rounds per variant (slogate and the peers searched side by side in each): medians and the median ratio reported.
    rounds: { type: 'string', default: '1' },
  },
});
const pinned = values['server-cpus'] === undefined ? {} : { cpus: values['server-cpus'] };
const P99 = Number(values.p99);
const PROBE_S = Number(values.probe);
const RETRIES = Number(values.retries);
const MAX_RATE = Number(values['max-rate']);
if (!(MAX_RATE >= 200)) throw new Error('--max-rate is a rate of at least 200 req/s');
if (!Number.isInteger(RETRIES) || RETRIES < 0 || RETRIES > 5) throw new Error('--retries is an integer in [0, 5]');
const ROUNDS = Number(values.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 9) throw new Error('--rounds is an integer in [1, 9]');
const config = loadConfigFile(values.config, process.env);
const [modelName, model] = Object.entries(config.models)[0] ?? [];
if (model === undefined || modelName === undefined) throw new Error('the config has no model');
const variants = values.variants?.split(',') ?? Object.keys(model.variants);
const workers = config.runtime.workers === 'auto' ? 1 : config.runtime.workers;
const { inlineMaxMs } = config.runtime;
const evalSet = model.eval === undefined ? undefined : readEvalSet(model.eval);

function serverConfig(variant: string, maxBatch: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { logLevel: 'warn' },
    runtime: { workers, inlineMaxMs, profile: { cacheDir: join(ROOT, '.slogate-cache') }, ...extra },
    models: {
      [modelName as string]: {
        maxBatch: model?.maxBatch,
        metadata: model?.metadata,
        variants: { [variant]: model?.variants[variant] },
      },
    },
    routes: {
      r: { model: modelName, slo: { p99Ms: P99 }, policy: { static: { variant, maxBatch, maxQueueDelayMs: 0 } } },
    },
  };
}

async function scrapeBatches(url: string, variant: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (k: string) =>
    Number(
      text.match(new RegExp(`^slogate_batch_size_${k}\\{variant="${modelName}/${variant}"\\} (\\S+)`, 'm'))?.[1] ?? 0,
    );
  return { sum: get('sum'), count: get('count') };
}

interface Found {
  capacity: number;
  meanBatch: number;
  p99Ms: number;
  probes: string[];
}

type Peer = 'naive' | 'bare';
type Round = { on: Found } & { [P in Peer]?: Found | undefined };

/** Probes take turns: searches run side by side, one probe at a time, so the servers compared meet the same host. */
class Turns {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(probe: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(probe);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** A peer on the variant's file (no /metrics: no batch sizes): naive.js, or bare.js for the HTTP floor. */
function startPeer(peer: Peer, variant: string): Promise<ServerProcess> {
  const path = model?.variants[variant]?.path as string;
  return startNodeProcess(
    join(DIST, 'bench', 'peers', `${peer}.js`),
    ['--route', 'r', '--variant', `${variant}=${path}`],
    pinned,
  );
}

async function capacityOf(variant: string, maxBatch: number): Promise<Found> {
  const server = await startSlogateProcess(serverConfig(variant, maxBatch), pinned);
  try {
    return await searchCapacity(server, variant, true, new Turns());
  } finally {
    await server.stop();
  }
}

/**
 * One round for a variant: slogate (batching on) and each peer asked for, every server up at once, their searches
 * probing in turns, so a burst of load from elsewhere lands on neighbouring probes of each rather than on one search.
 */
async function roundOf(variant: string, peers: readonly Peer[]): Promise<Round> {
  const started: ServerProcess[] = [];
  try {
    const slogate = await startSlogateProcess(serverConfig(variant, model?.maxBatch ?? 1), pinned);
    started.push(slogate);
    for (const peer of peers) started.push(await startPeer(peer, variant));
    const turns = new Turns();
    const [on, ...found] = await Promise.all(
      started.map((server, i) => searchCapacity(server, variant, i === 0, turns)),
    );
    const round: Round = { on: on as Found };
    peers.forEach((peer, i) => {
      round[peer] = found[i];
    });
    return round;
  } finally {
    await Promise.all(started.map((server) => server.stop()));
  }
}

async function searchCapacity(server: ServerProcess, variant: string, batches: boolean, turns: Turns): Promise<Found> {
  const inputs = await prepareInputs(
    { url: server.url, protocol: 'binary', inputs: evalSet === undefined ? 'random' : 'eval', evalSet, seed: 1 },
    ['r'],
    true,
  );
  let last = { meanBatch: 1, p99Ms: Number.NaN };
  const notes: string[] = [];
  const { capacity } = await findCapacity(
    (rate) =>
      turns.run(async () => {
        let probe: CapacityProbe | undefined;
        let before = { sum: 0, count: 0 };
        let after = { sum: 1, count: 1 };
        for (let attempt = 0; attempt <= RETRIES && probe?.ok !== true; attempt++) {
          if (batches) before = await scrapeBatches(server.url, variant);
          probe = await probeCapacity({ url: server.url, rate, durationS: PROBE_S, p99Ms: P99, evalSet }, inputs);
          if (batches) after = await scrapeBatches(server.url, variant);
          notes.push(probe.note);
        }
        const { ok, p99Ms } = probe as CapacityProbe;
        if (ok)
          last = {
            meanBatch: (after.sum - before.sum) / Math.max(1, after.count - before.count),
            p99Ms: p99Ms ?? Number.NaN,
          };
        return { rate, ok };
      }),
    { startRate: 200, maxProbes: 12, minRate: 5, maxRate: MAX_RATE, tolerance: 0.08 },
  );
  return { capacity, ...last, probes: notes };
}

function raw(variant: string, batch: number): number {
  const out = execFileSync(
    process.execPath,
    [
      join(DIST, 'bench', 'peers', 'raw-ort.js'),
      '--variant',
      `${variant}=${model?.variants[variant]?.path}`,
      '--batches',
      String(batch),
      '--ms',
      '2000',
      '--threads',
      String(workers),
    ],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  const report = JSON.parse(out) as RawReport;
  return report.variants[0]?.best.rowsPerS ?? Number.NaN;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Latency at a light load through a local worker and through a remote runtime node: the hop's cost per request. */
async function hop(variant: string): Promise<{ local: number[]; remote: number[] }> {
  const measure = async (url: string): Promise<number[]> => {
    const inputs = await prepareInputs({ url, protocol: 'binary', inputs: 'random', seed: 1 }, ['r'], true);
    const r = await runBench(
      {
        url,
        route: 'r',
        mode: { kind: 'open', load: { kind: 'constant', rate: 100, arrivals: 'poisson' } },
        protocol: 'binary',
        inputs: 'random',
        durationS: 8,
        maxRequests: 2000,
        seed: 1,
        sloMs: () => 1000,
        warmupS: 1,
        maxConnections: 16,
      },
      inputs,
    );
    const l = r.summary.overall.latency;
    return [l.p50Ms ?? Number.NaN, l.p99Ms ?? Number.NaN];
  };
  const local = await startSlogateProcess(serverConfig(variant, 1));
  let localLat: number[];
  try {
    localLat = await measure(local.url);
  } finally {
    await local.stop();
  }
  const port = await freePort();
  const node = await startSlogateProcess(serverConfig(variant, 1), { command: 'runtime', port });
  try {
    const gw = await startSlogateProcess(
      serverConfig(variant, 1, { workers: 0, replicas: [{ url: `http://127.0.0.1:${port}`, concurrency: 1 }] }),
    );
    try {
      return { local: localLat, remote: await measure(gw.url) };
    } finally {
      await gw.stop();
    }
  } finally {
    await node.stop();
  }
}

const peers = (['naive', 'bare'] as const).filter((p) => values[p] === true);
const rows: {
  variant: string;
  off?: Found | undefined;
  /** Each round's searches; the tables show their medians. */
  rounds: Round[];
  rawRowsPerS?: number | undefined;
  rawAtBatch: number;
}[] = [];
for (const v of variants) {
  let off: Found | undefined;
  if (values['skip-off'] !== true) {
    process.stderr.write(`capacity: ${v} without batching...\n`);
    off = await capacityOf(v, 1);
  }
  const rounds: Round[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    process.stderr.write(`capacity: ${v} with batching${peers.map((p) => ` and on ${p}`).join('')}, round ${i}...\n`);
    const round = await roundOf(v, peers);
    rounds.push(round);
    process.stderr.write(
      `  ${v}: ${round.on.capacity.toFixed(0)} req/s (batch ${round.on.meanBatch.toFixed(1)})${peers.map((p) => `, ${p} ${round[p]?.capacity.toFixed(0)}`).join('')}\n`,
    );
  }
  const b = Math.max(1, Math.round(median(rounds.map((r) => r.on.meanBatch))));
  const rawRowsPerS = off === undefined ? undefined : raw(v, b);
  rows.push({ variant: v, off, rounds, rawRowsPerS, rawAtBatch: b });
}
const hopResult =
  values['skip-hop'] === true ? undefined : await hop(variants.includes('small') ? 'small' : (variants[0] as string));

const ratio = (a: number, b: number | undefined) => a / Math.max(1, b ?? 0);
const x = (r: number) => `${r.toFixed(2)}x`;
/** The median over a variant's rounds of one server's capacity. */
const capacityOfRounds = (rounds: readonly Round[], who: 'on' | Peer) =>
  median(rounds.map((r) => r[who]?.capacity ?? Number.NaN));
const lines = [
  `Target p99 ${P99} ms, binary protocol, open-loop Poisson, ${PROBE_S} s probes (a miss retried ${RETRIES}x), ${workers} worker(s)${values['server-cpus'] === undefined ? '' : `, servers on CPUs ${values['server-cpus']}`}; raw = onnxruntime in-process, no HTTP, same workers, same batch size.${ROUNDS > 1 ? ` Medians of ${ROUNDS} rounds; a ratio is the median of the rounds' ratios.` : ''}`,
];
if (values['skip-off'] !== true)
  lines.push(
    '',
    '| variant | capacity, batching off (req/s) | capacity, batching on (req/s) | gain | mean batch at capacity | raw onnxruntime at that batch (rows/s) | gateway / raw |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => {
      const on = capacityOfRounds(r.rounds, 'on');
      return `| ${r.variant} | ${r.off?.capacity.toFixed(0)} | ${on.toFixed(0)} | ${x(ratio(on, r.off?.capacity))} | ${median(r.rounds.map((round) => round.on.meanBatch)).toFixed(1)} | ${r.rawRowsPerS?.toFixed(0)} | ${(on / (r.rawRowsPerS ?? Number.NaN)).toFixed(2)} |`;
    }),
  );
if (peers.length > 0) {
  const title = { naive: 'hand-written peer', bare: 'HTTP floor, no model' };
  const roundsColumn = ROUNDS > 1 ? ' | ratios by round' : '';
  lines.push(
    '',
    `| variant | slogate, batching on (req/s) | ${peers.map((p) => `${title[p]} (req/s) | slogate / ${p}`).join(' | ')}${roundsColumn} |`,
    `| --- | ---: | ${peers.map(() => '---: | ---:').join(' | ')}${ROUNDS > 1 ? ' | ---' : ''} |`,
    ...rows.map((r) => {
      const cells = peers.map((p) => {
        const ratios = r.rounds.map((round) => ratio(round.on.capacity, round[p]?.capacity));
        return `${capacityOfRounds(r.rounds, p).toFixed(0)} | ${x(median(ratios))}`;
      });
      const byRound =
        ROUNDS > 1
          ? ` | ${r.rounds.map((round) => peers.map((p) => x(ratio(round.on.capacity, round[p]?.capacity))).join(' / ')).join(', ')}`
          : '';
      return `| ${r.variant} | ${capacityOfRounds(r.rounds, 'on').toFixed(0)} | ${cells.join(' | ')}${byRound} |`;
    }),
  );
}
if (hopResult !== undefined) {
  lines.push('', '| replica | p50 ms | p99 ms |', '| --- | ---: | ---: |');
  lines.push(
    `| local worker | ${hopResult.local[0]} | ${hopResult.local[1]} |`,
    `| remote runtime node (loopback) | ${hopResult.remote[0]} | ${hopResult.remote[1]} |`,
  );
}
const md = lines.join('\n');
console.log(md);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(ROOT, 'bench', 'results', 'capacity.json'),
  `${JSON.stringify({ p99Ms: P99, probeS: PROBE_S, workers, rounds: ROUNDS, rows, hop: hopResult, at: new Date().toISOString() }, null, 2)}\n`,
);
writeFileSync(join(ROOT, 'bench', 'results', 'capacity.md'), `${md}\n`);
