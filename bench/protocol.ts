// `npm run bench:protocol`: what the wire format costs. Requests/s and p99 for JSON vs the binary tensor extension
// against the small and the large variant (each pinned by a static route, with and without batching across
// requests) at a fixed concurrency, and the same bodies against a bare Fastify route (HTTP + parsing, no model) as the
// ceiling. Three references on binary: node:http answering a precomputed V2 answer (the floor of any V2 server here,
// bench/peers/bare.ts), the same over sockets alone (what node:http itself costs) and the hand-written server running
// `small` per request (bench/peers/naive.ts). Without
// batching every request is a round trip to the worker, which caps small-model rates; with it, the gateway's own
// per-request work (parsing above all) is what limits them. Each row also gives the server process's CPU per request
// (Linux /proc), steadier than requests/s on a shared host. Every server runs from the start and the cells are measured
// in alternated rounds (--rounds, bench/rounds.ts): each slogate row's ratio to bare Fastify is the median of its
// round-by-round ratios. --routes, --protocols and --skip-references pick cells, e.g. `--routes small-batched
// --protocols binary --skip-references` for an A/B of the request path. --server-cpus pins every server to those
// cores (taskset); run the bench itself pinned to the others, so neither takes the other's. Servers run as child
// processes; every run is bounded in time and stops by itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readEvalSet } from '../runtime/eval-set.js';
import type { Batches } from './prom.js';
import { type Cell, type CellResult, measureInRounds, median, roundRatios } from './rounds.js';
import { type ServerProcess, startNodeProcess, startSlogateProcess } from './server-process.js';
import { evalBody, type Protocol } from './v2-requests.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    /** Measured seconds per cell, split over the rounds. */
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '8' },
    /** Slogate's routes to measure (comma separated): small, small-batched, large. */
    routes: { type: 'string', default: 'small,small-batched,large' },
    protocols: { type: 'string', default: 'json,binary' },
    /** Only slogate's rows: no bare Fastify, node:http or hand-written server. */
    'skip-references': { type: 'boolean', default: false },
    'server-cpus': { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'protocol.json') },
  },
});
const durationS = Number(values.duration);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds takes a whole number of at least 1, got ${values.rounds}`);
const routes = values.routes.split(',');
const serverCpus = values['server-cpus'];
const protocols = values.protocols.split(',') as Protocol[];
for (const p of protocols)
  if (p !== 'json' && p !== 'binary') throw new Error(`--protocols takes json,binary, got ${p}`);
const PEERS = join(ROOT, 'dist', 'bench', 'peers');
const set = readEvalSet(join(ROOT, 'models', 'digits', 'eval.bin'));
const input = { name: 'pixels', shape: [-1, 784] };
const bodies = (protocol: Protocol) => Array.from({ length: 64 }, (_, i) => evalBody(set, input, i, 1, protocol));

const config = {
  server: { logLevel: 'warn' },
  runtime: { workers: 'auto', profile: { enabled: true, cacheDir: join(ROOT, '.slogate-cache') } },
  models: {
    digits: {
      // small-b is small again under another name: its own queue, so its batching knobs do not touch small's.
      variants: {
        small: { path: join(ROOT, 'models/digits/small.onnx') },
        'small-b': { path: join(ROOT, 'models/digits/small.onnx') },
        large: { path: join(ROOT, 'models/digits/large.onnx') },
      },
    },
  },
  routes: {
    small: { model: 'digits', slo: { p99Ms: 10_000 }, policy: { static: { variant: 'small', maxBatch: 1 } } },
    large: { model: 'digits', slo: { p99Ms: 10_000 }, policy: { static: { variant: 'large', maxBatch: 1 } } },
    'small-batched': {
      model: 'digits',
      slo: { p99Ms: 10_000 },
      policy: { static: { variant: 'small-b', maxBatch: 64 } },
    },
  },
};

for (const r of routes)
  if (!(r in config.routes)) throw new Error(`--routes takes ${Object.keys(config.routes).join(',')}, got ${r}`);

const FASTIFY = 'bare Fastify (ceiling)';
const servers: ServerProcess[] = [];
/** Starts a server, kept to be stopped at the end. */
async function started(start: Promise<ServerProcess>): Promise<ServerProcess> {
  const server = await start;
  servers.push(server);
  return server;
}

let results: CellResult[];
try {
  const cells: Cell[] = [];
  if (!values['skip-references']) {
    const hello = await started(startNodeProcess(join(PEERS, 'hello.js'), [], { cpus: serverCpus }));
    for (const protocol of protocols)
      cells.push({ target: FASTIFY, protocol, server: hello, path: '/hello', bodies: bodies(protocol) });
    const small = `small=${join(ROOT, 'models/digits/small.onnx')}`;
    const references = [
      { target: 'sockets, V2 answer, no HTTP library', script: 'bare.js', args: ['--server', 'net'] },
      { target: 'node:http, V2 answer, no model (floor)', script: 'bare.js', args: ['--server', 'http'] },
      { target: 'hand-written small', script: 'naive.js', args: [] },
    ];
    for (const ref of references) {
      const args = ['--route', 'small', '--variant', small, ...ref.args];
      const server = await started(startNodeProcess(join(PEERS, ref.script), args, { cpus: serverCpus }));
      const path = '/v2/models/small/infer';
      cells.push({ target: ref.target, protocol: 'binary', server, path, bodies: bodies('binary') });
    }
  }
  const sg = await started(startSlogateProcess(config, { cpus: serverCpus }));
  for (const route of routes)
    for (const protocol of protocols) {
      const variant = `digits/${config.routes[route as keyof typeof config.routes].policy.static.variant}`;
      const path = `/v2/models/${route}/infer`;
      cells.push({ target: `slogate ${route}`, protocol, server: sg, path, bodies: bodies(protocol), variant });
    }
  results = await measureInRounds(cells, { rounds, roundS: durationS / rounds, warmupS: 1, connections });
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}

const pinned = serverCpus === undefined ? '' : `, servers on cores ${serverCpus}`;
const machine = `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores${pinned}, Node ${process.version}`;
console.log(
  `\n${machine}; ${connections} connections, ${durationS} s per cell in ${rounds} alternated rounds; one digit per request; small and large: no batching across requests; small-batched: up to 64 per batch\n`,
);
console.log(
  '| target | protocol | req/s | server CPU, us/request | p50 ms | p99 ms | errors | rows per batch | inline batches |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results)
  console.log(
    `| ${r.target} | ${r.protocol} | ${Math.round(r.rps)} | ${r.cpuUsPerRequest.toFixed(1)} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors + r.non2xx} | ${batchColumns(r.batches)} |`,
  );
const ratios = [];
for (const r of results) {
  const ceiling = results.find((c) => c.target === FASTIFY && c.protocol === r.protocol);
  if (!r.target.startsWith('slogate ') || ceiling === undefined) continue;
  const perRound = roundRatios(r, ceiling);
  ratios.push({ target: r.target, protocol: r.protocol, over: FASTIFY, perRound, median: median(perRound) });
}
if (ratios.length > 0) console.log(`\nOver ${FASTIFY}, the median of ${rounds} rounds (each round's ratio):`);
for (const q of ratios)
  console.log(
    `- ${q.target}, ${q.protocol}: ${q.median.toFixed(2)}x (${q.perRound.map((x) => x.toFixed(2)).join(', ')})`,
  );
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const at = new Date().toISOString();
writeFileSync(
  values.out,
  `${JSON.stringify({ machine, serverCpus, connections, durationS, rounds, at, rows: results, ratios }, null, 2)}\n`,
);

/** Rows per batch and the share of batches run inline; dashes for a server without slogate's metrics. */
function batchColumns(b: Batches | undefined): string {
  if (b === undefined || b.count === 0) return '- | -';
  return `${(b.rows / b.count).toFixed(2)} | ${((100 * b.inline) / b.count).toFixed(0)}%`;
}
