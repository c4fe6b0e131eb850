import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CATALOG, type ErrorCode, SlogateError, toSlogateError } from '../../../core/errors.js';
import { ROOT } from '../../helpers.js';

const codes = Object.keys(ERROR_CATALOG) as ErrorCode[];

test('every error code is SLOGATE_ERR_*, has a real HTTP status, and is documented once in docs/errors.md with that status', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  for (const code of codes) {
    assert.match(code, /^SLOGATE_ERR_[A-Z_]+$/);
    const { status } = ERROR_CATALOG[code];
    assert.ok(status >= 400 && status <= 599, `${code} status ${status}`);
    const rows = doc
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map((l) => l.split('|').map((c) => c.trim()))
      .filter((cells) => cells[1] === `\`${code}\``);
    assert.equal(rows.length, 1, `${code} must have exactly one row in docs/errors.md`);
    assert.equal(rows[0]?.[2], String(status), `${code} row must state status ${status}`);
  }
  const documented = [...doc.matchAll(/SLOGATE_ERR_[A-Z_]+/g)].map((m) => m[0]);
  for (const d of documented) assert.ok(codes.includes(d as ErrorCode), `docs/errors.md mentions unknown code ${d}`);
});

test('errors cross worker boundaries as plain data and come back with the same code and retry hint', () => {
  const e = new SlogateError('SLOGATE_ERR_QUEUE_FULL', 'full', { retryAfterMs: 1500 });
  const back = SlogateError.fromData(structuredClone(e.toData()));
  assert.equal(back.code, 'SLOGATE_ERR_QUEUE_FULL');
  assert.equal(back.statusCode, 503);
  assert.equal(back.retryable, true);
  assert.equal(back.retryAfterMs, 1500);
});

test('an unknown code from the other side becomes INTERNAL; foreign errors become INTERNAL with their cause', () => {
  assert.equal(SlogateError.fromData({ code: 'NOPE' as ErrorCode, message: 'x' }).code, 'SLOGATE_ERR_INTERNAL');
  const cause = new TypeError('boom');
  const e = toSlogateError(cause);
  assert.equal(e.code, 'SLOGATE_ERR_INTERNAL');
  assert.equal(e.cause, cause);
});
