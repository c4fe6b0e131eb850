import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  gcFlags,
  pretenuring,
  runtimeGcFlags,
  SINGLE_THREADED_GC_MAX_CORES,
  singleThreadedGc,
} from '../../../core/gc-mode.js';

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

test('runtime flags: allocation-site pretenuring off, unless a pretenuring flag is given by hand', () => {
  assert.deepEqual(runtimeGcFlags([]), ['--no-allocation-site-pretenuring']);
  assert.deepEqual(runtimeGcFlags(['--single-threaded-gc']), ['--no-allocation-site-pretenuring']);
  assert.deepEqual(runtimeGcFlags(['--allocation-site-pretenuring']), []);
  assert.deepEqual(runtimeGcFlags(['--no-allocation-site-pretenuring']), []);
});

test('pretenuring reads the last of the two flags when none was set at run time', () => {
  assert.equal(pretenuring([]), true);
  assert.equal(pretenuring(['--no-allocation-site-pretenuring']), false);
  assert.equal(pretenuring(['--no-allocation-site-pretenuring', '--allocation-site-pretenuring']), true);
});
