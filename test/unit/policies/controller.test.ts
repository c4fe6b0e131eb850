// The control loop on a fake runtime and the manual clock: a tick that throws is contained (logged, counted, the
// decisions in force kept) and the loop goes on to the next tick.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { ConfigSchema } from '../../../core/config.js';
import { type Logger, silentLogger } from '../../../core/logger.js';
import { Metrics } from '../../../core/metrics.js';
import { Controller } from '../../../policies/controller.js';
import { Router } from '../../../policies/router.js';
import type { ServiceTable } from '../../../runtime/latency-profile.js';
import { FakeRuntime } from './fake-runtime.js';

const VARIANTS = { large: 0.99, small: 0.95 };

/** A runtime whose service tables fail while `broken` is set, as a bug in a profile read would. */
class FlakyRuntime extends FakeRuntime {
  broken = false;
  override serviceTable(model: string, variant: string, maxRows: number): ServiceTable {
    if (this.broken) throw new RangeError(`no table for ${model}/${variant}`);
    const ms = variant === 'large' ? 2 : 0.5;
    const rows = Float64Array.from({ length: maxRows }, (_, i) => ms * (1 + i / 4));
    return { p50: rows, p99: rows.map((x) => x * 1.5) };
  }
}

test('a tick that throws is logged and counted; the decisions in force stay and the loop goes on', async () => {
  const clock = new ManualClock(1000);
  const runtime = new FlakyRuntime('m', VARIANTS);
  const metrics = new Metrics({ defaultMetrics: false });
  const config = ConfigSchema.parse({
    models: { m: { maxBatch: 8, variants: { large: { path: 'large' }, small: { path: 'small' } } } },
    routes: { r: { model: 'm', slo: { p99Ms: 50 } } },
  });
  const router = new Router({ runtime, clock, metrics, routes: config.routes });
  const errors: string[] = [];
  const logger: Logger = { ...silentLogger, error: (a: unknown, b?: string) => errors.push(String(b ?? a)) };
  const controller = new Controller({ config, runtime, router, clock, metrics, logger, pricePerSlotMs: 0 });
  router.setDecisionSource(controller);
  controller.start();
  const before = controller.current('r');
  assert.ok(before !== undefined, 'the first tick decided');

  runtime.broken = true;
  assert.doesNotThrow(() => clock.advance(config.engine.tickMs));
  assert.equal(controller.current('r'), before, 'the decision in force stays');
  assert.equal((await metrics.engineTickFailures.get()).values[0]?.value, 1);
  assert.match(errors.join('\n'), /engine tick failed/);
  assert.equal(clock.pendingTimers >= 1, true, 'the next tick is scheduled');

  runtime.broken = false;
  clock.advance(config.engine.tickMs);
  assert.equal((await metrics.engineTickFailures.get()).values[0]?.value, 1, 'the loop recovered');
  controller.close();
});
