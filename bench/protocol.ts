// `npm run bench:protocol`: what the wire format costs. Requests/s and p99 for JSON vs the binary tensor extension
// against the small and the large variant (each pinned by a static route, with and without batching across
// requests) at a fixed concurrency, and the same bodies against a bare Fastify route (HTTP + parsing, no model) as the
// ceiling. Two references on binary: node:http answering a precomputed V2 answer (the floor of any V2 server here,
// bench/peers/bare.ts) and the hand-written server running `small` per request (bench/peers/naive.ts). Without
// batching every request is a round trip to the worker, which caps small-model rates; with it, the gateway's own
// per-request work (parsing above all) is what limits them.
// Servers run as child processes; every run is bounded in time and stops by itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readEvalSet } from '../runtime/eval-set.js';
import { type ClosedLoopResult, closedLoop } from './closed-loop.js';
import { startNodeProcess, startSlogateProcess } from './server-process.js';
import { evalBody, type Protocol } from './v2-requests.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '8' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'protocol.json') },
  },
});
const durationS = Number(values.duration);
const connections = Number(values.connections);
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

interface Row extends ClosedLoopResult {
  target: string;
  protocol: Protocol;
}

const rows: Row[] = [];
const hello = await startNodeProcess(join(ROOT, 'dist', 'bench', 'peers', 'hello.js'), []);
try {
  for (const protocol of ['json', 'binary'] as const) {
    const r = await closedLoop({ url: hello.url, path: '/hello', bodies: bodies(protocol), connections, durationS });
    rows.push({ target: 'bare Fastify (ceiling)', protocol, ...r });
  }
} finally {
  await hello.stop();
}
const small = `small=${join(ROOT, 'models/digits/small.onnx')}`;
const references = [
  { target: 'node:http, V2 answer, no model (floor)', script: 'bare.js', args: ['--server', 'http'] },
  { target: 'hand-written small', script: 'naive.js', args: [] },
];
for (const ref of references) {
  const args = ['--route', 'small', '--variant', small, ...ref.args];
  const peer = await startNodeProcess(join(ROOT, 'dist', 'bench', 'peers', ref.script), args);
  try {
    const path = '/v2/models/small/infer';
    await closedLoop({ url: peer.url, path, bodies: bodies('binary'), connections, durationS: 1 });
    const r = await closedLoop({ url: peer.url, path, bodies: bodies('binary'), connections, durationS });
    rows.push({ target: ref.target, protocol: 'binary', ...r });
  } finally {
    await peer.stop();
  }
}
const sg = await startSlogateProcess(config);
try {
  for (const route of ['small', 'small-batched', 'large']) {
    for (const protocol of ['json', 'binary'] as const) {
      // Warm-up, then the measured run.
      await closedLoop({
        url: sg.url,
        path: `/v2/models/${route}/infer`,
        bodies: bodies(protocol),
        connections,
        durationS: 1,
      });
      const r = await closedLoop({
        url: sg.url,
        path: `/v2/models/${route}/infer`,
        bodies: bodies(protocol),
        connections,
        durationS,
      });
      rows.push({ target: `slogate ${route}`, protocol, ...r });
    }
  }
} finally {
  await sg.stop();
}

const machine = `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}`;
console.log(
  `\n${machine}; ${connections} connections, ${durationS} s per cell; one digit per request; small and large: no batching across requests; small-batched: up to 64 per batch\n`,
);
console.log('| target | protocol | req/s | p50 ms | p99 ms | errors |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.target} | ${r.protocol} | ${Math.round(r.rps)} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors + r.non2xx} |`,
  );
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify({ machine, connections, durationS, at: new Date().toISOString(), rows }, null, 2)}\n`,
);
