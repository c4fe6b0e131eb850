// The pure parts of `serve --processes`: how many processes, and the config each gateway process runs with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlogateError } from '../../../core/errors.js';
import { gatewayProcessConfig, resolveProcesses } from '../../../gateway/processes.js';
import { digitsConfig } from '../../helpers.js';

test('--processes: auto is one per two cores (at least 1); a count is 1-256', () => {
  assert.equal(resolveProcesses('auto', 16), 8);
  assert.equal(resolveProcesses('auto', 1), 1);
  assert.equal(resolveProcesses('3', 16), 3);
  for (const bad of ['0', '1.5', 'many', '257'])
    assert.throws(
      () => resolveProcesses(bad, 16),
      (e: unknown) => e instanceof SlogateError && e.code === 'SLOGATE_ERR_CONFIG',
    );
});

test('a gateway process has no local workers and reaches the shared node first, then the listed nodes', () => {
  const base = digitsConfig({ runtime: { workers: 2, replicas: [{ url: 'http://10.0.0.1:8000' }] } });
  const c = gatewayProcessConfig(base, 'http://127.0.0.1:4000', 3);
  assert.equal(c.runtime.workers, 0);
  assert.deepEqual(c.runtime.replicas, [
    { url: 'http://127.0.0.1:4000', concurrency: 3 },
    { url: 'http://10.0.0.1:8000', concurrency: 2 },
  ]);
  assert.equal(base.runtime.workers, 2, 'the loaded config is left as it was');
});
