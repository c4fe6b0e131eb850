// `slogate bench compare --config FILE --scenario steady|step|bursty|sweep`: argument parsing and outputs
// (bench/results/<name>.json, .md and SVG plots). Exit 3 when a run's sender fell behind (unless --allow-lag).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config.js';
import { readEvalSet } from '../runtime/eval-set.js';
import { DEFAULT_EVAL, RESULTS_DIR, UsageError } from './cli.js';
import { runCompare } from './compare.js';
import { comparePlots, renderCompareMarkdown } from './compare-report.js';
import { progressPrinter } from './progress.js';
import { writeOutputs } from './report.js';
import { SCENARIOS, type ScenarioName } from './scenarios.js';

export const COMPARE_USAGE = `slogate bench compare: policies side by side, the same schedule against each, in one run

Usage:
  slogate bench compare --config FILE --scenario steady|step|bursty|sweep [options]

Starts \`slogate serve\` once per policy (the config with only the route's policy replaced; its SLO stays) on a free
loopback port, plus the naive peer (Fastify + onnxruntime, session.run per request) and the raw limit (onnxruntime
in-process, no HTTP), and runs the scenario against each.

Scenarios (C = --rate, or C_L: the capacity at SLO of the most accurate variant with its best fixed batching):
  steady   Poisson at C                              (60 s; --quick 6 s)
  step     0.5C, then 3C for a quarter of the run, then 0.5C   (40 s; --quick 9 s)
  bursty   MMPP-2: 0.6C and 3C, mean dwell 5 s / 1 s  (60 s; --quick 10 s, shorter dwells)
  sweep    per policy: capacity at SLO (doubling, then bisection), then Poisson at 0.3..2 x C (30 s each; --quick 0.5, 1, 2 x C, 2 s each)

Options:
  --route R                route under test (default: the config's first route)
  --quick                  short version of the scenario (CI smoke test, under two minutes)
  --rate R                 base rate C in requests/s (default: calibrate C_L)
  --policies LIST          comma-separated: adaptive, static:VARIANT:b1|best|bN[:Dms], fixed, aimd[:VARIANT],
                           naive[:VARIANT], raw[:VARIANT] (default: all static variants, or the extremes with --quick)
  --duration S             override the length of each measured run
  --sweep-base common|own  sweep loads as multiples of C for every policy (default), or of each policy's own capacity
  --protocol json|binary   (default json)
  --eval FILE              eval set (default models/digits/eval.bin); --inputs random to send random tensors
  --inputs eval|random
  --seed N                 (default 1)
  --max-connections N      open-loop connection pool (default 256)
  --allow-lag              show runs whose sender fell behind (marked) instead of refusing them
  --name NAME              output name (default compare-SCENARIO[-quick])
  --out DIR                output folder (default bench/results)
  --json                   print the JSON result on stdout; no progress
`;

export async function compareMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      scenario: { type: 'string' },
      route: { type: 'string' },
      quick: { type: 'boolean', default: false },
      rate: { type: 'string' },
      policies: { type: 'string' },
      duration: { type: 'string' },
      'sweep-base': { type: 'string', default: 'common' },
      protocol: { type: 'string', default: 'json' },
      eval: { type: 'string' },
      inputs: { type: 'string', default: 'eval' },
      seed: { type: 'string', default: '1' },
      'max-connections': { type: 'string', default: '256' },
      'allow-lag': { type: 'boolean', default: false },
      name: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(COMPARE_USAGE);
    return 0;
  }
  if (values.config === undefined) throw new UsageError('compare: --config FILE is required');
  const scenario = values.scenario as ScenarioName;
  if (!SCENARIOS.includes(scenario)) throw new UsageError(`compare: --scenario must be one of ${SCENARIOS.join(', ')}`);
  if (values.protocol !== 'json' && values.protocol !== 'binary')
    throw new UsageError('compare: --protocol must be json or binary');
  if (values['sweep-base'] !== 'common' && values['sweep-base'] !== 'own')
    throw new UsageError('compare: --sweep-base must be common or own');
  if (values.inputs !== 'eval' && values.inputs !== 'random')
    throw new UsageError('compare: --inputs must be eval or random');
  const positive = (name: string, v: string | undefined, integer = false) => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x)))
      throw new UsageError(`compare: --${name} must be a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
    return x;
  };
  const config = loadConfigFile(values.config, process.env);
  const route = values.route ?? Object.keys(config.routes)[0];
  if (route === undefined || config.routes[route] === undefined)
    throw new UsageError(`compare: the config has no route '${route}'`);
  const evalPath = values.eval ?? config.models[config.routes[route]?.model ?? '']?.eval ?? DEFAULT_EVAL;
  if (values.inputs === 'eval' && !existsSync(evalPath))
    throw new UsageError(`compare: eval set ${evalPath} not found: give --eval FILE or --inputs random`);
  const quiet = values.json;
  const name = values.name ?? `compare-${scenario}${values.quick ? '-quick' : ''}`;
  const result = await runCompare({
    configFile: values.config,
    config,
    route,
    scenario,
    quick: values.quick,
    rate: positive('rate', values.rate),
    policies: values.policies?.split(',').map((p) => p.trim()),
    protocol: values.protocol,
    seed: Number(values.seed),
    durationS: positive('duration', values.duration),
    evalSet: values.inputs === 'eval' ? readEvalSet(evalPath) : undefined,
    sweepBase: values['sweep-base'],
    maxConnections: positive('max-connections', values['max-connections'], true) as number,
    log: quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
    progress: (label) => progressPrinter(`  ${label}`, quiet),
  });
  const command = `slogate bench compare ${argv.join(' ')}`;
  const md = renderCompareMarkdown(result, command, values['allow-lag']);
  const files = writeOutputs(
    values.out ?? RESULTS_DIR,
    name,
    { command, ...result },
    md,
    comparePlots(result, values['allow-lag']),
  );
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(md);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  const lagged = result.rows.flatMap((row) =>
    row.runs.filter((run) => run.result !== null && !run.result.valid).map((run) => `${row.label} (${run.label})`),
  );
  if (lagged.length > 0 && !values['allow-lag']) {
    process.stderr.write(
      `slogate bench compare: the sender fell behind its schedule in ${lagged.join(', ')}; those rows are withheld (--allow-lag shows them)\n`,
    );
    return 3;
  }
  return 0;
}
