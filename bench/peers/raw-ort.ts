// The raw limit: onnxruntime in-process, no HTTP, no queue, no parsing: rows per second per variant and batch size.
// Nothing served over the network can beat the best of these numbers on the same host.
// Bench peers are the one place outside runtime/worker that imports onnxruntime-node directly.
// Usage: node raw-ort.js --variant NAME=PATH [--variant ...] [--batches 1,2,4,...] [--ms 1000] [--threads N]
// Prints one JSON document on stdout.
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

export interface RawPoint {
  readonly batch: number;
  readonly runs: number;
  readonly rowsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface RawVariant {
  readonly variant: string;
  readonly points: readonly RawPoint[];
  readonly best: RawPoint;
}

export interface RawReport {
  readonly threads: number;
  readonly msPerPoint: number;
  readonly variants: readonly RawVariant[];
}

const { values } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true, default: [] },
    batches: { type: 'string', default: '1,2,4,8,16,32,64' },
    ms: { type: 'string', default: '1000' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const threads = Number(values.threads);
const msPerPoint = Number(values.ms);
const batches = values.batches.split(',').map(Number);

async function measure(name: string, path: string): Promise<RawVariant> {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = session.inputMetadata[0];
  if (input === undefined || !input.isTensor || input.type !== 'float32')
    throw new Error(`${path}: raw-ort drives one FP32 input`);
  const rowShape = input.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const rowLen = rowShape.reduce((a, b) => a * b, 1);
  const points: RawPoint[] = [];
  for (const b of batches) {
    const data = new Float32Array(b * rowLen).map(() => Math.random());
    const feeds = { [input.name]: new ort.Tensor('float32', data, [b, ...rowShape]) };
    for (let i = 0; i < 5; i++) await session.run(feeds); // warm-up
    const times: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < msPerPoint && times.length < 100_000) {
      const s = performance.now();
      await session.run(feeds);
      times.push(performance.now() - s);
    }
    const wall = performance.now() - t0;
    times.sort((x, y) => x - y);
    const q = (p: number) => times[Math.min(times.length - 1, Math.max(0, Math.ceil(p * times.length) - 1))] as number;
    points.push({
      batch: b,
      runs: times.length,
      rowsPerS: Math.round((times.length * b * 1000) / wall),
      p50Ms: round3(q(0.5)),
      p99Ms: round3(q(0.99)),
    });
  }
  await session.release();
  const best = points.reduce((a, p) => (p.rowsPerS > a.rowsPerS ? p : a), points[0] as RawPoint);
  return { variant: name, points, best };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

const variants: RawVariant[] = [];
for (const spec of values.variant) {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--variant NAME=PATH, got '${spec}'`);
  variants.push(await measure(spec.slice(0, eq), spec.slice(eq + 1)));
}
const report: RawReport = { threads, msPerPoint, variants };
process.stdout.write(`${JSON.stringify(report)}\n`);
