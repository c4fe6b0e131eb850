import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gcFlags, SINGLE_THREADED_GC_MAX_CORES, singleThreadedGc } from '../../../core/gc-mode.js';

test('auto: single-threaded GC on a host of one core, V8 default above', () => {
  assert.deepEqual(gcFlags(undefined, 1, []), ['--single-threaded-gc']);
  assert.deepEqual(gcFlags(undefined, 2, []), []);
  assert.deepEqual(gcFlags('auto', SINGLE_THREADED_GC_MAX_CORES, []), ['--single-threaded-gc']);
  assert.deepEqual(gcFlags('', SINGLE_THREADED_GC_MAX_CORES + 1, []), []);
  assert.deepEqual(gcFlags('auto', 16, []), []);
});

test('SLOGATE_GC=single and =parallel override the core count', () => {
  assert.deepEqual(gcFlags('single', 16, []), ['--single-threaded-gc']);
  assert.deepEqual(gcFlags('parallel', 1, []), []);
});

test('a GC flag given by hand wins: no flag is added, so no relaunch', () => {
  assert.deepEqual(gcFlags('single', 1, ['--single-threaded-gc']), []);
  assert.deepEqual(gcFlags('auto', 1, ['--no-single-threaded-gc']), []);
  assert.deepEqual(gcFlags('auto', 1, ['--max-old-space-size=512']), ['--single-threaded-gc']);
});

test('an unknown mode is a configuration error that names the variable', () => {
  assert.throws(
    () => gcFlags('fast', 2, []),
    (err: Error & { code?: string }) => err.code === 'SLOGATE_ERR_CONFIG' && /SLOGATE_GC/.test(err.message),
  );
});

test('singleThreadedGc reads the last of the two flags', () => {
  assert.equal(singleThreadedGc(['--single-threaded-gc']), true);
  assert.equal(singleThreadedGc([]), false);
  assert.equal(singleThreadedGc(['--single-threaded-gc', '--no-single-threaded-gc']), false);
});
