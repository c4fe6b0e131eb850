// The config watch's decision on each look at the file: unchanged content does nothing, a valid change is applied
// once, an invalid one is counted and never applied. Driven by hand (check()) on a manual clock.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import type { Config } from '../../../core/config.js';
import { silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import { ConfigWatch } from '../../../gateway/config-watch.js';
import { digitsRawConfig, tempDir } from '../../helpers.js';

test('unchanged content does nothing; a valid change applies once; an invalid one is counted, not applied', async () => {
  const file = join(tempDir('slogate-watch-unit-'), 'slogate.json');
  const write = (p99Ms: number | string) =>
    writeFileSync(
      file,
      JSON.stringify(
        digitsRawConfig({
          routes: { digits: { model: 'digits', slo: { p99Ms }, policy: { static: { variant: 'small' } } } },
        }),
      ),
    );
  write(100);
  const applied: Readonly<Config>[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const watch = new ConfigWatch({
    file,
    env: {},
    clock: new ManualClock(),
    logger: silentLogger,
    metrics,
    pollMs: 0,
    apply: async (config) => {
      applied.push(config);
      return { plan: [], steps: [], ok: true };
    },
  });
  watch.start();
  try {
    assert.equal(await watch.check(), 'unchanged', 'the file the server started with');
    write(200);
    assert.equal(await watch.check(), 'applied');
    assert.equal(applied[0]?.routes.digits?.slo.p99Ms, 200);
    write(200);
    assert.equal(await watch.check(), 'unchanged', 'rewritten with the same content');
    write('fast');
    assert.equal(await watch.check(), 'invalid');
    assert.equal(await watch.check(), 'unchanged', 'an invalid file is reported once');
    assert.equal(applied.length, 1);
    const values = (await metrics.configReloads.get()).values;
    assert.deepEqual(Object.fromEntries(values.map((v) => [v.labels.result, v.value])), { applied: 1, invalid: 1 });
  } finally {
    watch.close();
  }
});
