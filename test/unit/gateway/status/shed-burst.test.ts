// The shed-burst log: one warning when shedding starts (counts by route and code), at most one summary per repeat
// interval while it lasts, and one line with the totals once it has been quiet; nothing while nothing is shed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../../core/clock.js';
import type { Logger } from '../../../../core/logger.js';
import { ShedBurstLog, type ShedSample } from '../../../../gateway/status/shed-burst.js';

interface Line {
  level: 'warn' | 'info';
  obj: Record<string, unknown>;
  msg: string;
}

function recorder(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (obj: object | string, msg?: string) => {
    lines.push(
      typeof obj === 'string'
        ? { level, obj: {}, msg: obj }
        : { level, obj: obj as Record<string, unknown>, msg: msg ?? '' },
    );
  };
  const logger: Logger = { error: () => {}, warn: at('warn'), info: at('info'), debug: () => {}, child: () => logger };
  return { logger, lines };
}

describe('ShedBurstLog', () => {
  test('quiet, burst start, rate-limited summaries, end after a quiet spell', async () => {
    const clock = new ManualClock();
    const { logger, lines } = recorder();
    const counter = new Map<string, number>();
    const shed = (route: string, code: string, n: number) =>
      counter.set(`${route} ${code}`, (counter.get(`${route} ${code}`) ?? 0) + n);
    const read = (): ShedSample[] =>
      [...counter].map(([k, value]) => {
        const [route, code] = k.split(' ') as [string, string];
        return { route, code, value };
      });
    const log = new ShedBurstLog({ clock, logger, read, pollMs: 1000, repeatMs: 10_000, quietMs: 3000 });
    const step = async () => {
      clock.advance(1000);
      await log.poll();
    };

    await step();
    assert.equal(lines.length, 0, 'nothing shed, nothing logged');

    shed('digits', 'SLOGATE_ERR_SHED', 40);
    shed('digits', 'SLOGATE_ERR_QUEUE_FULL', 2);
    shed('fast', 'SLOGATE_ERR_SHED', 7);
    await step();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 'warn');
    assert.equal(lines[0]?.obj.shed, 49);
    assert.deepEqual(lines[0]?.obj.counts, {
      digits: { SLOGATE_ERR_SHED: 40, SLOGATE_ERR_QUEUE_FULL: 2 },
      fast: { SLOGATE_ERR_SHED: 7 },
    });
    assert.match(lines[0]?.msg ?? '', /49 requests refused or dropped \(digits SLOGATE_ERR_SHED: 40/);
    assert.ok(log.inBurst);

    // A long burst: one summary per 10 s, not one line per second.
    for (let s = 0; s < 12; s++) {
      shed('digits', 'SLOGATE_ERR_SHED', 5);
      await step();
    }
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.level, 'warn');
    assert.equal(lines[1]?.obj.shed, 50, '10 s of 5 a second since the first line');
    assert.match(lines[1]?.msg ?? '', /^still shedding load/);

    // Quiet for less than quietMs: still the same burst.
    await step();
    await step();
    assert.equal(lines.length, 2);
    shed('fast', 'SLOGATE_ERR_DEADLINE_UNREACHABLE', 1);
    await step();
    assert.equal(lines.length, 2);
    for (let s = 0; s < 3; s++) await step();
    assert.equal(lines.length, 3);
    assert.equal(lines[2]?.level, 'info');
    assert.match(lines[2]?.msg ?? '', /^load shedding stopped: 110 requests/);
    assert.deepEqual(lines[2]?.obj.counts, {
      digits: { SLOGATE_ERR_SHED: 100, SLOGATE_ERR_QUEUE_FULL: 2 },
      fast: { SLOGATE_ERR_SHED: 7, SLOGATE_ERR_DEADLINE_UNREACHABLE: 1 },
    });
    assert.ok(!log.inBurst);

    shed('digits', 'SLOGATE_ERR_SHED', 1);
    await step();
    assert.equal(lines.length, 4, 'a new burst starts a new line');
    assert.equal(lines[3]?.obj.shed, 1);
  });

  test('start() polls on the clock and close() stops it', async () => {
    const clock = new ManualClock();
    const { logger } = recorder();
    let reads = 0;
    const log = new ShedBurstLog({
      clock,
      logger,
      read: () => {
        reads++;
        return [];
      },
    });
    log.start();
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    assert.equal(reads, 2);
    log.close();
    clock.advance(5000);
    await new Promise((r) => setImmediate(r));
    assert.equal(reads, 2);
    assert.equal(clock.pendingTimers, 0);
  });
});
