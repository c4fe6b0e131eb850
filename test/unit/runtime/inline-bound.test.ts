import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../../core/config.js';
import { resolveInlineMaxMs } from '../../../runtime/runtime.js';
import { digitsRawConfig, ROOT } from '../../helpers.js';

const withInline = (inlineMaxMs?: unknown) =>
  parseConfig(digitsRawConfig(inlineMaxMs === undefined ? {} : { runtime: { inlineMaxMs } }), ROOT);

test('runtime.inlineMaxMs defaults to auto: 0.2 ms with two cores or more, 2 ms on one core', () => {
  const c = withInline();
  assert.equal(c.runtime.inlineMaxMs, 'auto');
  assert.equal(resolveInlineMaxMs(c, 2), 0.2);
  assert.equal(resolveInlineMaxMs(c, 16), 0.2);
  assert.equal(resolveInlineMaxMs(c, 1), 2);
});

test('a number is taken as given on any host, 0 included (inline batches off)', () => {
  assert.equal(resolveInlineMaxMs(withInline(0.5), 1), 0.5);
  assert.equal(resolveInlineMaxMs(withInline(0), 1), 0);
  assert.equal(resolveInlineMaxMs(withInline(0), 8), 0);
});
