import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { RuntimeHealth } from '../../../runtime/health.js';
import type { ReplicaState } from '../../../runtime/replica.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { FakeReplica } from './fake-replica.js';

function setup(specs: readonly { slots?: number; state?: ReplicaState }[], o: { min?: number; liveMs?: number } = {}) {
  const clock = new ManualClock(0);
  const fakes = specs.map((s, i) => new FakeReplica(`r${i}`, s.slots ?? 1));
  for (const [i, s] of specs.entries()) if (s.state !== undefined) fakes[i]?.setState(s.state);
  const pool = new ReplicaPool(fakes, { clock });
  const health = new RuntimeHealth({
    clock,
    pool,
    models: ['digits', 'other'],
    minReadySlots: o.min ?? 1,
    livenessTimeoutMs: o.liveMs ?? 1000,
  });
  return { clock, fakes, health };
}

describe('readiness: every served model has at least minReadySlots ready slots', () => {
  const cases: [string, { slots?: number; state?: ReplicaState }[], number, boolean][] = [
    ['one ready slot, minimum 1', [{}], 1, true],
    ['every replica down', [{ state: 'down' }, { state: 'down' }], 1, false],
    ['pending (being replaced) and closed count for nothing', [{ state: 'pending' }, { state: 'closed' }], 1, false],
    ['one of two ready', [{ state: 'down' }, {}], 1, true],
    ['minimum 3: a ready 2-slot node and a down worker fall short', [{ slots: 2 }, { state: 'down' }], 3, false],
    ['minimum 3: a ready 2-slot node and a ready worker make it', [{ slots: 2 }, {}], 3, true],
    ['busy slots are still ready slots', [{ slots: 1 }], 1, true],
  ];
  for (const [name, specs, min, want] of cases) {
    test(name, () => {
      const { health } = setup(specs, { min });
      const r = health.readiness();
      assert.equal(r.ready, want);
      assert.equal(health.modelReady('digits'), want);
      assert.equal(r.models.length, 2, 'one entry per served model');
      if (!want) assert.match(r.reason ?? '', new RegExp(`minimum ${min}\\): digits has \\d+, other has \\d+`));
    });
  }

  test('follows replica state changes', () => {
    const { fakes, health } = setup([{}]);
    fakes[0]?.setState('down');
    assert.equal(health.readiness().ready, false);
    fakes[0]?.setState('ready');
    assert.equal(health.readiness().ready, true);
  });
});

describe('liveness: fails after livenessTimeoutMs without any ready slot (on the clock)', () => {
  test('down for less than the timeout: live; from the timeout on: not live; a ready slot: live again', () => {
    const { clock, fakes, health } = setup([{}, {}], { liveMs: 1000 });
    assert.deepEqual(health.liveness(), { live: true, noReadySlotMs: 0 });
    clock.advance(5000);
    fakes[0]?.setState('down');
    clock.advance(2000);
    assert.equal(health.liveness().live, true, 'one replica still ready');
    fakes[1]?.setState('pending');
    clock.advance(999);
    assert.deepEqual(health.liveness(), { live: true, noReadySlotMs: 999 });
    clock.advance(1);
    const l = health.liveness();
    assert.equal(l.live, false);
    assert.match(l.reason ?? '', /no replica slot has been ready for 1000 ms/);
    fakes[1]?.setState('ready');
    assert.deepEqual(health.liveness(), { live: true, noReadySlotMs: 0 });
  });

  test('a replica flapping between down and pending does not restart the count', () => {
    const { clock, fakes, health } = setup([{}], { liveMs: 1000 });
    fakes[0]?.setState('pending');
    clock.advance(600);
    fakes[0]?.setState('down');
    clock.advance(600);
    assert.equal(health.liveness().live, false);
  });

  test('timeout 0: liveness never fails', () => {
    const { clock, fakes, health } = setup([{}], { liveMs: 0 });
    fakes[0]?.setState('down');
    clock.advance(1e9);
    assert.equal(health.liveness().live, true);
  });

  test('the count starts at construction when no replica is ready yet (start-up)', () => {
    const { clock, health } = setup([{ state: 'pending' }], { liveMs: 1000 });
    clock.advance(1000);
    assert.equal(health.liveness().live, false);
  });
});

describe('hung replicas: a hung slot is not a ready slot, and a worker stuck too long fails liveness', () => {
  test('a replica told its batch timed out is not ready; readiness follows', () => {
    const { fakes, health } = setup([{}]);
    (fakes[0] as FakeReplica).timedOut('batch passed its timeout');
    assert.equal(health.readiness().ready, false);
  });

  test('an abandoned worker stuck for livenessTimeoutMs fails liveness, though other slots are ready', () => {
    const { clock, fakes, health } = setup([{}, {}], { liveMs: 1000 });
    clock.advance(100);
    (fakes[0] as FakeReplica).stuckSinceMs = clock.now();
    clock.advance(999);
    assert.equal(health.liveness().live, true);
    clock.advance(1);
    const l = health.liveness();
    assert.equal(l.live, false);
    assert.match(l.reason ?? '', /hung worker has been stuck in a batch for 1000 ms/);
    (fakes[0] as FakeReplica).stuckSinceMs = undefined;
    assert.equal(health.liveness().live, true, 'live again once its run returned');
  });
});
