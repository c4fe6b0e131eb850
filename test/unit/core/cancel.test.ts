import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientGone } from '../../../core/cancel.js';

test('ClientGone runs its listeners once, in order, on the first abort', () => {
  const gone = new ClientGone();
  const calls: string[] = [];
  gone.addEventListener('abort', () => calls.push('a'));
  gone.addEventListener('abort', () => calls.push('b'));
  assert.equal(gone.aborted, false);
  gone.abort();
  gone.abort();
  assert.equal(gone.aborted, true);
  assert.deepEqual(calls, ['a', 'b']);
});

test('a removed listener does not run; one added after the abort never runs (as with AbortSignal)', () => {
  const gone = new ClientGone();
  const calls: string[] = [];
  const removed = () => calls.push('removed');
  gone.addEventListener('abort', removed);
  gone.addEventListener('abort', () => calls.push('kept'));
  gone.removeEventListener('abort', removed);
  gone.removeEventListener('abort', () => calls.push('never added'));
  gone.abort();
  gone.addEventListener('abort', () => calls.push('late'));
  gone.abort();
  assert.deepEqual(calls, ['kept']);
});
