// `slogate bench ...`: load-test any V2 endpoint (open or closed loop), and `slogate bench compare` (policies side by
// side). Parses argv, runs, writes bench/results/<name>.{json,md} and SVG plots. Exit codes: 0 done, 1 failure,
// 2 usage, 3 the sender fell behind its schedule (no result reported; --allow-lag overrides).
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { getGlobalDispatcher } from 'undici';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import {
  choiceFlag,
  DEFAULT_EVAL,
  HELP_COLUMN,
  numberFlag,
  type OptionSpec,
  parserOptions,
  RESULTS_DIR,
  SHARED_OPTIONS,
  UsageError,
  usageLines,
} from './cli-options.js';
import { progressPrinter } from './progress.js';
import { renderRunMarkdown, runPlots, writeOutputs } from './report.js';
import { type LoadMode, runBench } from './run.js';
import { type Arrivals, type LoadSpec, parsePattern, parseTrace } from './schedule.js';

/** How load is offered (one of; default the closed loop). */
export const LOAD_OPTIONS = {
  connections: {
    type: 'string',
    arg: 'N',
    help: 'closed loop: N connections, peak throughput (default 8)',
  },
  rate: { type: 'string', arg: 'R', help: 'open loop at R requests/s, arrivals --arrivals (default poisson)' },
  arrivals: { type: 'string', arg: 'poisson|uniform', help: 'gaps of --rate and --pattern step arrivals' },
  pattern: {
    type: 'string',
    arg: 'step:...|bursty:...|clumped:...',
    help:
      'step:LOW,HIGH,AT,FOR: LOW req/s, HIGH from AT s for FOR s, then LOW again;\n' +
      `${' '.repeat(HELP_COLUMN)}bursty:LOW,HIGH,MEANLOW_S,MEANHIGH_S: two-state MMPP (exponential dwell times);\n` +
      `${' '.repeat(HELP_COLUMN)}clumped:LOW,HIGH,AT,FOR,MEANGAP_MS: LOW, and up to HIGH from AT s for FOR s in clumps`,
  },
  trace: { type: 'string', arg: 'FILE', help: 'CSV arrival_ms,route[,deadline_ms] (an optional header line)' },
} as const satisfies Record<string, OptionSpec>;

export const RUN_OPTIONS = {
  url: { type: 'string', arg: 'URL', help: 'the V2 endpoint (required)' },
  route: { ...SHARED_OPTIONS.route, help: 'route under test (required, unless a --trace names routes)' },
  protocol: SHARED_OPTIONS.protocol,
  duration: { ...SHARED_OPTIONS.duration, default: '10', help: 'length of the measured run (default 10)' },
  'max-requests': {
    type: 'string',
    default: '200000',
    arg: 'N',
    help: 'request cap (default 200000); every run stops at its duration or its cap',
  },
  warmup: { type: 'string', default: '1', arg: 'S', help: 'unmeasured warm-up before the run (default 1)' },
  'slo-ms': {
    type: 'string',
    arg: 'MS',
    help: "deadline of every request (default: the route's slo.p99Ms from --config, else 100)",
  },
  config: { ...SHARED_OPTIONS.config, help: 'a slogate config, read for route SLOs' },
  eval: SHARED_OPTIONS.eval,
  inputs: SHARED_OPTIONS.inputs,
  seed: SHARED_OPTIONS.seed,
  'max-connections': SHARED_OPTIONS['max-connections'],
  'timeout-ms': { type: 'string', arg: 'MS', help: 'client timeout per request (default max(5000, 10 x deadline))' },
  'max-lag-ms': {
    type: 'string',
    arg: 'MS',
    help: 'largest p99 send lag accepted (default max(5, 10% of the deadline))',
  },
  'allow-lag': SHARED_OPTIONS['allow-lag'],
  name: { ...SHARED_OPTIONS.name, help: `${SHARED_OPTIONS.name.help} (default ROUTE-LOAD)` },
  out: SHARED_OPTIONS.out,
  json: SHARED_OPTIONS.json,
  help: SHARED_OPTIONS.help,
} as const satisfies Record<string, OptionSpec>;

export const BENCH_USAGE = `slogate bench: load-test a V2 endpoint (slogate, Triton, KServe, ...)

Usage:
  slogate bench --url URL --route R [load] [options]
  slogate bench compare --config FILE --scenario steady|step|bursty|sweep [options]   (slogate bench compare --help)

Load (one of --connections, --rate, --pattern, --trace; default: closed loop):
${usageLines(LOAD_OPTIONS)}
Options:
${usageLines(RUN_OPTIONS)}`;

const num = (name: string, v: string | undefined, min = 0, integer = false): number | undefined =>
  numberFlag(name, v, { min, integer });

function loadMode(v: {
  rate?: string | undefined;
  pattern?: string | undefined;
  trace?: string | undefined;
  arrivals?: string | undefined;
  connections?: string | undefined;
}): LoadMode {
  const given = [v.rate, v.pattern, v.trace].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError('give one of --rate, --pattern, --trace');
  const arrivals: Arrivals = choiceFlag('arrivals', v.arrivals ?? 'poisson', ['poisson', 'uniform']);
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
  const { values } = parseArgs({ args: argv, options: parserOptions({ ...LOAD_OPTIONS, ...RUN_OPTIONS }) });
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
  const protocol = choiceFlag('protocol', values.protocol, ['json', 'binary']);
  const inputs = choiceFlag('inputs', values.inputs, ['eval', 'random']);
  const config = values.config === undefined ? undefined : loadConfigFile(values.config, process.env);
  const sloFlag = num('slo-ms', values['slo-ms'], 0.001);
  const sloMs = (r: string) => sloFlag ?? config?.routes[r]?.slo.p99Ms ?? 100;
  const evalPath = values.eval ?? DEFAULT_EVAL;
  if (inputs === 'eval' && !existsSync(evalPath))
    throw new UsageError(`eval set ${evalPath} not found: give --eval FILE or --inputs random`);
  const name = values.name ?? `${route}-${loadName(mode)}`;
  const progress = progressPrinter(`bench ${name}`, values.json);
  const result = await runBench({
    url,
    route,
    mode,
    protocol,
    inputs,
    evalSet: inputs === 'eval' ? readEvalSet(evalPath) : undefined,
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
