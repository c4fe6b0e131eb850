import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from 'node:util';
import { BENCH_USAGE, LOAD_OPTIONS, RUN_OPTIONS } from '../../../bench/cli.js';
import {
  choiceFlag,
  numberFlag,
  parserOptions,
  SHARED_OPTIONS,
  UsageError,
  usageLines,
} from '../../../bench/cli-options.js';
import { COMPARE_OPTIONS, COMPARE_USAGE } from '../../../bench/compare-cli.js';

test('both commands take every shared flag with its shared type, short name and default', () => {
  for (const [name, table] of [
    ['bench', RUN_OPTIONS],
    ['bench compare', COMPARE_OPTIONS],
  ] as const) {
    for (const [flag, shared] of Object.entries(SHARED_OPTIONS)) {
      const own = (table as Record<string, { type: string; short?: string; default?: unknown }>)[flag];
      assert.ok(own !== undefined, `${name} takes --${flag}`);
      assert.equal(own.type, shared.type, `${name} --${flag} type`);
      assert.equal(own.short, 'short' in shared ? shared.short : undefined, `${name} --${flag} short`);
      // Only the measured run's length has a command-specific default (bench: 10 s; compare: the scenario's).
      if (flag !== 'duration')
        assert.equal(own.default, 'default' in shared ? shared.default : undefined, `${name} --${flag} default`);
    }
  }
});

test('the usage of each command lists every flag it parses, once', () => {
  for (const [usage, tables] of [
    [BENCH_USAGE, [LOAD_OPTIONS, RUN_OPTIONS]],
    [COMPARE_USAGE, [COMPARE_OPTIONS]],
  ] as const) {
    for (const flag of tables.flatMap((t) => Object.keys(t))) {
      const lines = usage.split('\n').filter((l) => l.startsWith(`  --${flag} `) || l === `  --${flag}`);
      assert.equal(lines.length, 1, `--${flag} in:\n${usage}`);
    }
  }
});

test('usageLines: the help starts at one column, or on the next line after a long flag', () => {
  const text = usageLines({
    seed: SHARED_OPTIONS.seed,
    'a-very-long-flag': { type: 'string', arg: 'SOMETHING|ELSE', help: 'long' },
  });
  assert.equal(
    text,
    `  --seed N${' '.repeat(17)}schedule seed (default 1)\n  --a-very-long-flag SOMETHING|ELSE\n${' '.repeat(27)}long\n`,
  );
});

test('parserOptions keeps only what parseArgs reads, and parses defaults and short names', () => {
  const options = parserOptions(SHARED_OPTIONS);
  assert.deepEqual(options.seed, { type: 'string', default: '1' });
  assert.deepEqual(options.config, { type: 'string', short: 'c' });
  const { values } = parseArgs({ args: ['-c', 'x.yaml', '--json'], options });
  assert.equal(values.config, 'x.yaml');
  assert.equal(values.json, true);
  assert.equal(values.protocol, 'json');
  assert.equal(values['allow-lag'], false);
});

test('numberFlag: absent is undefined; bounds, exclusivity and integers are enforced with the flag named', () => {
  const cases: [string | undefined, Parameters<typeof numberFlag>[2], number | undefined | RegExp][] = [
    [undefined, {}, undefined],
    ['3', {}, 3],
    ['0', {}, 0],
    ['0', { exclusive: true }, /--x must be a number > 0, got '0'/],
    ['-1', {}, /--x must be a number >= 0/],
    ['1.5', { integer: true }, /--x must be an integer >= 0, got '1.5'/],
    ['', {}, /--x must be a number/],
    ['abc', {}, /--x must be a number/],
    ['Infinity', {}, /--x must be a number/],
    ['0.5', { min: 0.1 }, 0.5],
  ];
  for (const [v, o, want] of cases) {
    if (want instanceof RegExp)
      assert.throws(
        () => numberFlag('x', v, o),
        (e) => e instanceof UsageError && want.test((e as Error).message),
      );
    else assert.equal(numberFlag('x', v, o), want, `${v} ${JSON.stringify(o)}`);
  }
});

test('choiceFlag: one of the words, else a usage error that lists them', () => {
  assert.equal(choiceFlag('protocol', 'binary', ['json', 'binary']), 'binary');
  assert.throws(
    () => choiceFlag('protocol', 'xml', ['json', 'binary']),
    (e) => e instanceof UsageError && /--protocol must be json or binary, got 'xml'/.test((e as Error).message),
  );
});
