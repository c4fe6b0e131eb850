// The option table of `slogate bench` and `slogate bench compare`: each flag is spelled, defaulted, described and
// checked once, and both commands build their parser and their usage text from it.
import { join, resolve } from 'node:path';

export const ROOT = resolve(new URL('../../', import.meta.url).pathname);
export const DEFAULT_EVAL = join(ROOT, 'models', 'digits', 'eval.bin');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

/** A wrong command line: the CLI prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly short?: string;
  /** The argument's shape in the usage text (`N`, `FILE`, `json|binary`); none for a boolean. */
  readonly arg?: string;
  readonly help: string;
}

/** Flags both commands take, with the same meaning. */
export const SHARED_OPTIONS = {
  route: { type: 'string', arg: 'R', help: 'route under test' },
  config: { type: 'string', short: 'c', arg: 'FILE', help: 'a slogate config' },
  duration: { type: 'string', arg: 'S', help: 'length of each measured run' },
  protocol: {
    type: 'string',
    default: 'json',
    arg: 'json|binary',
    help: 'request encoding (binary = the binary tensor data extension; default json)',
  },
  eval: { type: 'string', arg: 'FILE', help: 'eval set for inputs and scoring (default models/digits/eval.bin)' },
  inputs: {
    type: 'string',
    default: 'eval',
    arg: 'eval|random',
    help: 'eval samples (scored) or random tensors shaped from the metadata (default eval)',
  },
  seed: { type: 'string', default: '1', arg: 'N', help: 'schedule seed (default 1)' },
  'max-connections': { type: 'string', default: '256', arg: 'N', help: 'open-loop connection pool (default 256)' },
  'allow-lag': {
    type: 'boolean',
    default: false,
    help: 'report runs whose sender fell behind its schedule (marked invalid) instead of refusing them',
  },
  name: { type: 'string', arg: 'NAME', help: 'output name: bench/results/NAME.{json,md}, NAME-*.svg' },
  out: { type: 'string', arg: 'DIR', help: 'output folder (default bench/results)' },
  json: { type: 'boolean', default: false, help: 'print the JSON result on stdout; no progress line' },
  help: { type: 'boolean', short: 'h', help: 'this text' },
} as const satisfies Record<string, OptionSpec>;

/** Where help texts start in the usage; continuation lines of a help text indent to it. */
export const HELP_COLUMN = 27;

/** Usage lines for a table, in its order: `  --flag ARG`, then the help from a fixed column (or the next line). */
export function usageLines(table: Readonly<Record<string, OptionSpec>>): string {
  return Object.entries(table)
    .map(([flag, o]) => {
      const left = `  --${flag}${o.arg === undefined ? '' : ` ${o.arg}`}`;
      const gap =
        left.length < HELP_COLUMN - 1 ? ' '.repeat(HELP_COLUMN - left.length) : `\n${' '.repeat(HELP_COLUMN)}`;
      return `${left}${gap}${o.help}\n`;
    })
    .join('');
}

/** The `parseArgs` options of a table (its own keys only, so the help texts stay out of the parser). */
export function parserOptions<T extends Record<string, OptionSpec>>(
  table: T,
): { [K in keyof T]: Pick<T[K], Extract<keyof T[K], 'type' | 'default' | 'short'>> } {
  const out: Record<string, unknown> = {};
  for (const [flag, { type, default: d, short }] of Object.entries(table))
    out[flag] = { type, ...(d === undefined ? {} : { default: d }), ...(short === undefined ? {} : { short }) };
  return out as { [K in keyof T]: Pick<T[K], Extract<keyof T[K], 'type' | 'default' | 'short'>> };
}

/** A numeric flag: undefined when absent, else a finite number >= min (> min when `exclusive`), an integer if asked. */
export function numberFlag(
  name: string,
  v: string | undefined,
  o: { min?: number; exclusive?: boolean; integer?: boolean } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const min = o.min ?? 0;
  const x = Number(v);
  const inRange = o.exclusive === true ? x > min : x >= min;
  if (v.trim() === '' || !Number.isFinite(x) || !inRange || (o.integer === true && !Number.isInteger(x)))
    throw new UsageError(
      `--${name} must be ${o.integer === true ? 'an integer' : 'a number'} ${o.exclusive === true ? '>' : '>='} ${min}, got '${v}'`,
    );
  return x;
}

/** A flag that takes one of a few words. */
export function choiceFlag<C extends string>(name: string, v: string | undefined, choices: readonly C[]): C {
  if (!choices.includes(v as C)) throw new UsageError(`--${name} must be ${choices.join(' or ')}, got '${v}'`);
  return v as C;
}
