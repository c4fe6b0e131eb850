// `slogate bench compare --config FILE --scenario steady|step|bursty|sweep`: argument parsing and outputs
// (bench/results/<name>.json, .md and SVG plots). Exit 3 when a run's sender fell behind (unless --allow-lag).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
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
import { runCompare } from './compare.js';
import { comparePlots, renderCompareMarkdown } from './compare-report.js';
import { progressPrinter } from './progress.js';
import { writeOutputs } from './report.js';
import { SCENARIOS, type ScenarioName } from './scenarios.js';

export const COMPARE_OPTIONS = {
  config: { ...SHARED_OPTIONS.config, help: 'the slogate config whose route is compared (required)' },
  scenario: { type: 'string', arg: 'NAME', help: 'steady, step, bursty or sweep (required)' },
  route: { ...SHARED_OPTIONS.route, help: "route under test (default: the config's first route)" },
  quick: { type: 'boolean', default: false, help: 'short version of the scenario (CI smoke test, under two minutes)' },
  rate: { type: 'string', arg: 'R', help: 'base rate C in requests/s (default: calibrate C_L)' },
  policies: {
    type: 'string',
    arg: 'LIST',
    help:
      'comma-separated: adaptive, static:VARIANT:b1|best|bN[:Dms], fixed, aimd[:VARIANT],\n' +
      `${' '.repeat(HELP_COLUMN)}naive[:VARIANT], raw[:VARIANT] (default: all static variants, or the extremes with --quick)`,
  },
  duration: { ...SHARED_OPTIONS.duration, help: 'override the length of each measured run' },
  'sweep-base': {
    type: 'string',
    default: 'common',
    arg: 'common|own',
    help: "sweep loads as multiples of C for every policy (default), or of each policy's own capacity",
  },
  protocol: SHARED_OPTIONS.protocol,
  eval: SHARED_OPTIONS.eval,
  inputs: SHARED_OPTIONS.inputs,
  seed: SHARED_OPTIONS.seed,
  'max-connections': SHARED_OPTIONS['max-connections'],
  'allow-lag': SHARED_OPTIONS['allow-lag'],
  name: { ...SHARED_OPTIONS.name, help: `${SHARED_OPTIONS.name.help} (default compare-SCENARIO[-quick])` },
  out: SHARED_OPTIONS.out,
  json: SHARED_OPTIONS.json,
  help: SHARED_OPTIONS.help,
} as const satisfies Record<string, OptionSpec>;

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
${usageLines(COMPARE_OPTIONS)}`;

export async function compareMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: parserOptions(COMPARE_OPTIONS) });
  if (values.help === true) {
    process.stdout.write(COMPARE_USAGE);
    return 0;
  }
  if (values.config === undefined) throw new UsageError('compare: --config FILE is required');
  const scenario = values.scenario as ScenarioName;
  if (!SCENARIOS.includes(scenario)) throw new UsageError(`compare: --scenario must be one of ${SCENARIOS.join(', ')}`);
  const protocol = choiceFlag('protocol', values.protocol, ['json', 'binary']);
  const sweepBase = choiceFlag('sweep-base', values['sweep-base'], ['common', 'own']);
  const inputs = choiceFlag('inputs', values.inputs, ['eval', 'random']);
  const positive = (name: string, v: string | undefined, integer = false) =>
    numberFlag(name, v, { min: 0, exclusive: true, integer });
  const config = loadConfigFile(values.config, process.env);
  const route = values.route ?? Object.keys(config.routes)[0];
  if (route === undefined || config.routes[route] === undefined)
    throw new UsageError(`compare: the config has no route '${route}'`);
  const evalPath = values.eval ?? config.models[config.routes[route]?.model ?? '']?.eval ?? DEFAULT_EVAL;
  if (inputs === 'eval' && !existsSync(evalPath))
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
    protocol,
    seed: numberFlag('seed', values.seed, { integer: true }) as number,
    durationS: positive('duration', values.duration),
    evalSet: inputs === 'eval' ? readEvalSet(evalPath) : undefined,
    sweepBase,
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
