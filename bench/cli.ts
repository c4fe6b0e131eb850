// `slogate bench ...`: load-test any V2 endpoint (open or closed loop), and `slogate bench compare` (policies side by
// side). Parses argv, runs, writes bench/results/<name>.{json,md} and SVG plots. Exit codes: 0 done, 1 failure,
// 2 usage, 3 the sender fell behind its schedule (no result reported; --allow-lag overrides).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getGlobalDispatcher } from 'undici';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { progressPrinter } from './progress.js';
import { renderRunMarkdown, runPlots, writeOutputs } from './report.js';
import { type LoadMode, runBench } from './run.js';
import { type Arrivals, type LoadSpec, parsePattern, parseTrace } from './schedule.js';

export const ROOT = resolve(new URL('../../', import.meta.url).pathname);
export const DEFAULT_EVAL = join(ROOT, 'models', 'digits', 'eval.bin');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

export const BENCH_USAGE = `slogate bench: load-test a V2 endpoint (slogate, Triton, KServe, ...)

Usage:
  slogate bench --url URL --route R [load] [options]
  slogate bench compare --config FILE --scenario steady|step|bursty|sweep [options]   (slogate bench compare --help)

Load (one of; default: closed loop):
  --connections N          closed loop through autocannon: N connections, peak throughput (default 8)
  --rate R                 open loop at R requests/s, arrivals --arrivals poisson|uniform (default poisson)
  --pattern step:LOW,HIGH,AT,FOR            LOW req/s, HIGH from AT s for FOR s, then LOW again
  --pattern bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S   two-state MMPP (exponential dwell times)
  --trace FILE             CSV arrival_ms,route[,deadline_ms] (an optional header line)

Options:
  --protocol json|binary   request encoding (binary = the binary tensor data extension; default json)
  --duration S             length of the measured run (default 10)
  --max-requests N         request cap (default 200000); every run stops at its duration or its cap
  --warmup S               unmeasured warm-up before the run (default 1)
  --slo-ms MS              deadline of every request (default: the route's slo.p99Ms from --config, else 100)
  --config FILE            a slogate config, read for route SLOs
  --eval FILE              eval set for inputs and scoring (default models/digits/eval.bin)
  --inputs eval|random     eval samples (scored) or random tensors shaped from the metadata (default eval)
  --seed N                 schedule seed (default 1)
  --max-connections N      open-loop connection pool (default 256)
  --timeout-ms MS          client timeout per request (default max(5000, 10 x deadline))
  --max-lag-ms MS          largest p99 send lag accepted (default max(5, 10% of the deadline))
  --allow-lag              report a result even when the sender fell behind (marked invalid)
  --name NAME              output name: bench/results/NAME.{json,md}, NAME-*.svg (default ROUTE-LOAD)
  --out DIR                output folder (default bench/results)
  --json                   print the JSON result on stdout; no progress line
`;

export class UsageError extends Error {}

const num = (name: string, v: string | undefined, min = 0, integer = false): number | undefined => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || (integer && !Number.isInteger(x)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${v}'`);
  return x;
};

function loadMode(v: {
  rate?: string | undefined;
  pattern?: string | undefined;
  trace?: string | undefined;
  arrivals?: string | undefined;
  connections?: string | undefined;
}): LoadMode {
  const given = [v.rate, v.pattern, v.trace].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError('give one of --rate, --pattern, --trace');
  const arrivals = (v.arrivals ?? 'poisson') as Arrivals;
  if (arrivals !== 'poisson' && arrivals !== 'uniform')
    throw new UsageError(`--arrivals must be poisson or uniform, got '${v.arrivals}'`);
  if (v.rate !== undefined)
    return { kind: 'open', load: { kind: 'constant', rate: num('rate', v.rate, 0.001) as number, arrivals } };
  if (v.pattern !== undefined) {
    try {
      return { kind: 'open', load: parsePattern(v.pattern, arrivals) };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (v.trace !== undefined)
    return { kind: 'open', load: { kind: 'trace', rows: parseTrace(readFileSync(v.trace, 'utf8'), v.trace) } };
  return { kind: 'closed', connections: num('connections', v.connections ?? '8', 1, true) as number };
}

function loadName(mode: LoadMode): string {
  if (mode.kind === 'closed') return 'closed';
  const l: LoadSpec = mode.load;
  return l.kind === 'constant' ? l.arrivals : l.kind;
}

async function single(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      route: { type: 'string' },
      protocol: { type: 'string', default: 'json' },
      connections: { type: 'string' },
      duration: { type: 'string', default: '10' },
      'max-requests': { type: 'string', default: '200000' },
      rate: { type: 'string' },
      arrivals: { type: 'string' },
      pattern: { type: 'string' },
      trace: { type: 'string' },
      warmup: { type: 'string', default: '1' },
      'slo-ms': { type: 'string' },
      config: { type: 'string' },
      eval: { type: 'string' },
      inputs: { type: 'string', default: 'eval' },
      seed: { type: 'string', default: '1' },
      'max-connections': { type: 'string', default: '256' },
      'timeout-ms': { type: 'string' },
      'max-lag-ms': { type: 'string' },
      'allow-lag': { type: 'boolean', default: false },
      name: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  if (values.url === undefined) throw new UsageError('--url is required');
  const url = values.url.replace(/\/+$/, '');
  const mode = loadMode(values);
  const route =
    values.route ?? (mode.kind === 'open' && mode.load.kind === 'trace' ? (mode.load.rows[0]?.route ?? '') : undefined);
  if (route === undefined || route === '') throw new UsageError('--route is required (or a --trace naming routes)');
  if (values.protocol !== 'json' && values.protocol !== 'binary')
    throw new UsageError(`--protocol must be json or binary, got '${values.protocol}'`);
  if (values.inputs !== 'eval' && values.inputs !== 'random')
    throw new UsageError(`--inputs must be eval or random, got '${values.inputs}'`);
  const config = values.config === undefined ? undefined : loadConfigFile(values.config, process.env);
  const sloFlag = num('slo-ms', values['slo-ms'], 0.001);
  const sloMs = (r: string) => sloFlag ?? config?.routes[r]?.slo.p99Ms ?? 100;
  const evalPath = values.eval ?? DEFAULT_EVAL;
  if (values.inputs === 'eval' && !existsSync(evalPath))
    throw new UsageError(`eval set ${evalPath} not found: give --eval FILE or --inputs random`);
  const name = values.name ?? `${route}-${loadName(mode)}`;
  const progress = progressPrinter(`bench ${name}`, values.json);
  const result = await runBench({
    url,
    route,
    mode,
    protocol: values.protocol,
    inputs: values.inputs,
    evalSet: values.inputs === 'eval' ? readEvalSet(evalPath) : undefined,
    durationS: num('duration', values.duration, 0.1) as number,
    maxRequests: num('max-requests', values['max-requests'], 1, true) as number,
    seed: num('seed', values.seed, 0, true) as number,
    sloMs,
    warmupS: num('warmup', values.warmup, 0) as number,
    maxConnections: num('max-connections', values['max-connections'], 1, true) as number,
    timeoutMs: num('timeout-ms', values['timeout-ms'], 1),
    lagBoundMs: num('max-lag-ms', values['max-lag-ms'], 0),
    progress: progress.sink,
  });
  progress.done();
  if (!result.valid && !values['allow-lag']) {
    const lag = result.summary.lag;
    process.stderr.write(
      `slogate bench: no result: the sender fell behind its schedule (p99 send lag ${lag?.p99Ms} ms, max ${lag?.maxMs} ms, bound ${lag?.boundMs} ms).\n` +
        '  The numbers would measure the load generator, not the server. Lower the rate, give the sender a core of its own, or pass --allow-lag.\n',
    );
    return 3;
  }
  const command = `slogate bench ${argv.join(' ')}`;
  const md = renderRunMarkdown(result, command);
  const files = writeOutputs(values.out ?? RESULTS_DIR, name, { command, ...result }, md, runPlots(result, name));
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(md);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return 0;
}

export async function benchMain(argv: string[]): Promise<void> {
  try {
    if (argv[0] === 'compare') {
      const { compareMain } = await import('./compare-cli.js');
      process.exitCode = await compareMain(argv.slice(1));
    } else {
      process.exitCode = await single(argv);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      process.stderr.write(`slogate bench: ${(err as Error).message}\n\n${BENCH_USAGE}`);
      process.exitCode = 2;
      return;
    }
    // Unreachable servers, bad metadata, bad files: one line, not a stack.
    process.stderr.write(`slogate bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    // Metadata and /metrics requests use undici's global pool: close it so the process exits now, not at keep-alive end.
    await getGlobalDispatcher().close();
  }
}
