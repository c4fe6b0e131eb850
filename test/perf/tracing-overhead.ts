// `npm run bench:tracing`: what OpenTelemetry tracing costs. Starts `slogate serve` (a child process; the digits models
// of slogate.yaml, one worker, a route with a fixed variant and batch limit so the engine's adaptation does not move
// the numbers) with tracing off and on (exporting OTLP/HTTP JSON every second to a receiver in this process that
// counts the spans), runs the same closed-loop autocannon load against each, alternating off/on for several rounds,
// and prints throughput, latency and the on/off ratio. The default variant, tiny, makes the gateway the bottleneck:
// the worst case for tracing's share.
//   node dist/test/perf/tracing-overhead.js [--rounds 3] [--duration 10] [--connections 8] [--variant tiny] [--max-batch 8]
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { parse as parseYaml } from 'yaml';
import { startSlogateProcess } from '../../bench/server-process.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

interface Run {
  readonly tracing: boolean;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  readonly errors: number;
  readonly spans: number;
}

/** Counts spans in OTLP/HTTP JSON export requests. */
async function startReceiver(): Promise<{ url: string; spans: () => number; close: () => Promise<void> }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
        };
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
      } catch {
        // not JSON: ignored
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans: () => spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function childEnv(otlpUrl: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  env.SLOGATE_HOST = '127.0.0.1';
  if (otlpUrl !== undefined) {
    env.OTEL_EXPORTER_OTLP_ENDPOINT = otlpUrl;
    env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    env.OTEL_BSP_SCHEDULE_DELAY = '1000';
  }
  return env;
}

async function load(url: string, route: string, connections: number, seconds: number, body: string) {
  return autocannon({
    url: `${url}/v2/models/${route}/infer`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  });
}

/** slogate.yaml's models (absolute paths), one worker, and one route with a fixed variant and batch limit. */
function benchConfig(variant: string, maxBatch: number): Record<string, unknown> {
  const base = parseYaml(readFileSync(join(ROOT, 'slogate.yaml'), 'utf8')) as {
    models: Record<string, { eval?: string; variants: Record<string, { path: string }> }>;
  };
  for (const m of Object.values(base.models)) {
    if (m.eval !== undefined) m.eval = join(ROOT, m.eval);
    for (const v of Object.values(m.variants)) v.path = join(ROOT, v.path);
  }
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: 'warn' },
    runtime: { workers: 1, profile: { enabled: false } },
    models: base.models,
    routes: {
      digits: { model: 'digits', slo: { p99Ms: 1000 }, policy: { static: { variant, maxBatch, maxQueueDelayMs: 0 } } },
    },
  };
}

async function measure(
  tracing: boolean,
  receiver: Awaited<ReturnType<typeof startReceiver>>,
  o: { route: string; connections: number; duration: number; body: string; config: Record<string, unknown> },
): Promise<Run> {
  const server = await startSlogateProcess(o.config, { env: childEnv(tracing ? receiver.url : undefined) });
  try {
    await load(server.url, o.route, o.connections, 2, o.body); // warm-up: JIT, profiles, decisions
    await new Promise((resolve) => setTimeout(resolve, 2000)); // its spans are exported (every second)
    const before = receiver.spans();
    const r = await load(server.url, o.route, o.connections, o.duration, o.body);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    return {
      tracing,
      rps: r.requests.average,
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      ok: r['2xx'],
      errors: r.non2xx + r.errors + r.timeouts,
      spans: receiver.spans() - before,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '8' },
      variant: { type: 'string', default: 'tiny' },
      'max-batch': { type: 'string', default: '8' },
    },
  });
  const o = {
    rounds: Number(values.rounds),
    duration: Number(values.duration),
    connections: Number(values.connections),
    route: 'digits',
    body: readFileSync(join(ROOT, 'examples', 'digit.json'), 'utf8'),
    config: benchConfig(values.variant, Number(values['max-batch'])),
  };
  const receiver = await startReceiver();
  const runs: Run[] = [];
  try {
    for (let i = 0; i < o.rounds; i++) {
      for (const tracing of [false, true]) {
        const r = await measure(tracing, receiver, o);
        runs.push(r);
        process.stdout.write(
          `round ${i + 1} tracing ${tracing ? 'on ' : 'off'}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.ok} ok, ${r.errors} errors, ${r.spans} spans exported\n`,
        );
      }
    }
  } finally {
    await receiver.close();
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const off = runs.filter((r) => !r.tracing);
  const on = runs.filter((r) => r.tracing);
  const ratio = mean(on.map((r) => r.rps)) / mean(off.map((r) => r.rps));
  process.stdout.write(
    `\n${o.connections} connections, ${o.duration} s per run, ${o.rounds} rounds, variant ${values.variant}, batch <= ${values['max-batch']}, 1 worker\n` +
      `| tracing | req/s (mean) | p50 ms (mean) | p99 ms (mean) | spans per request |\n|---|---|---|---|---|\n` +
      `| off | ${mean(off.map((r) => r.rps)).toFixed(0)} | ${mean(off.map((r) => r.p50Ms)).toFixed(2)} | ${mean(off.map((r) => r.p99Ms)).toFixed(2)} | 0 |\n` +
      `| on (OTLP/HTTP JSON) | ${mean(on.map((r) => r.rps)).toFixed(0)} | ${mean(on.map((r) => r.p50Ms)).toFixed(2)} | ${mean(on.map((r) => r.p99Ms)).toFixed(2)} | ${(mean(on.map((r) => r.spans)) / Math.max(1, mean(on.map((r) => r.ok)))).toFixed(2)} |\n` +
      `throughput with tracing / without: ${ratio.toFixed(3)} (${((1 - ratio) * 100).toFixed(1)}% overhead)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
