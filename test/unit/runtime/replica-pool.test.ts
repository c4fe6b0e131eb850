// Replica choice in the pool, table-driven on fake replicas and a manual clock (the way undici tests its balanced
// pool): load over slots, the error penalty and its decay, the retry elsewhere, and waiters woken by free slots.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { SlogateError } from '../../../core/errors.js';
import type { BatchOutcome, BatchTask, ReplicaState } from '../../../runtime/replica.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { FakeReplica, flush } from './fake-replica.js';

const task = (): BatchTask => ({
  model: 'm',
  variant: 'v',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: new Float32Array([1]) }],
  rows: 1,
  transfer: false,
});

interface FakeSpec {
  readonly slots?: number;
  /** Batches already running on it (started outside the pool). */
  readonly load?: number;
  readonly state?: ReplicaState;
  /** Error penalty to give it first, as batch scripts run through the pool while it is the only ready replica. */
  readonly penalty?: Script[];
}

/** What the replica does with each attempt of one pool.run(): `ok` finishes, `fault` is a replica fault. */
type Script = ('ok' | 'fault' | 'request-error')[];

interface Setup {
  readonly clock: ManualClock;
  readonly pool: ReplicaPool;
  readonly fakes: FakeReplica[];
  readonly retries: string[];
  readonly slotFree: { count: number };
}

function setup(specs: readonly FakeSpec[], retryWaitMs = 1000): Setup {
  const clock = new ManualClock(0);
  const fakes = specs.map((s, i) => new FakeReplica(String.fromCharCode(97 + i), s.slots ?? 1));
  const pool = new ReplicaPool(fakes, { clock, retryWaitMs });
  const retries: string[] = [];
  const slotFree = { count: 0 };
  pool.on('retry', (id, reason) => retries.push(`${id}: ${reason}`));
  pool.on('slot-free', () => slotFree.count++);
  return { clock, pool, fakes, retries, slotFree };
}

/** Batches started outside the pool to load a replica; never finished by play(). */
const held = new Set<FakeReplica['running'][number]>();

/** Plays one pool.run() whose attempts follow `script`, each on whichever fake got it; returns its outcome. */
async function play(s: Setup, script: Script): Promise<BatchOutcome | SlogateError> {
  const result = s.pool.run(task).then(
    (o) => o,
    (e: SlogateError) => e,
  );
  for (const step of script) {
    await flush();
    const running = s.fakes.flatMap((f) => f.running.filter((rb) => !held.has(rb)));
    assert.equal(running.length, 1, `one attempt running for step ${step}`);
    const rb = running[0] as FakeReplica['running'][number];
    if (step === 'ok') rb.finish();
    else if (step === 'fault') rb.fault('worker crashed');
    else rb.failRequest('bad input');
  }
  return result;
}

async function build(specs: readonly FakeSpec[]): Promise<Setup> {
  const s = setup(specs);
  for (const [i, spec] of specs.entries()) {
    const fake = s.fakes[i] as FakeReplica;
    if (spec.penalty !== undefined) {
      const others = s.fakes.filter((f) => f !== fake);
      for (const f of others) f.setState('down');
      for (const script of spec.penalty) await play(s, script);
      for (const f of others) f.setState('ready');
    }
  }
  for (const [i, spec] of specs.entries()) {
    const fake = s.fakes[i] as FakeReplica;
    for (let k = 0; k < (spec.load ?? 0); k++) {
      void fake.run(task()).catch(() => {});
      held.add(fake.running.at(-1) as FakeReplica['running'][number]);
    }
    if (spec.state !== undefined) fake.setState(spec.state);
  }
  return s;
}

describe('ReplicaPool.pick: least load over slots, plus the error penalty', () => {
  const cases: [string, FakeSpec[], string | undefined][] = [
    ['the idle replica over a busy one', [{ slots: 2, load: 1 }, { slots: 2 }], 'b'],
    ['load is relative to slots: 2 of 4 busy (0.5) loses to 0 of 1', [{ slots: 4, load: 2 }, { slots: 1 }], 'b'],
    [
      '1 of 4 busy (0.25) beats 1 of 2 (0.5)',
      [
        { slots: 4, load: 1 },
        { slots: 2, load: 1 },
      ],
      'a',
    ],
    [
      'a full replica is never picked',
      [
        { slots: 1, load: 1 },
        { slots: 3, load: 2 },
      ],
      'b',
    ],
    ['every replica full: none', [{ load: 1 }, { load: 1 }], undefined],
    ['ties go to the first listed', [{}, {}], 'a'],
    [
      'pending, down and closed replicas are skipped',
      [{ state: 'pending' }, { state: 'down' }, { state: 'closed' }, {}],
      'd',
    ],
    ['no ready replica: none', [{ state: 'down' }, { state: 'pending' }], undefined],
    [
      'a penalty of 2 (two faults) loses to 3 of 4 slots busy',
      [{ penalty: [['fault', 'fault']] }, { slots: 4, load: 3 }],
      'b',
    ],
    // One fault then a success: 1 halved to 0.5, which 3 of 4 busy (0.75) still loses to.
    ['a decayed penalty (0.5) beats 3 of 4 busy', [{ penalty: [['fault', 'ok']] }, { slots: 4, load: 3 }], 'a'],
    ['a decayed penalty (0.5) loses to 1 of 4 busy', [{ penalty: [['fault', 'ok']] }, { slots: 4, load: 1 }], 'b'],
  ];
  for (const [name, specs, want] of cases) {
    test(name, async () => {
      const s = await build(specs);
      assert.equal(s.pool.pick()?.id, want);
    });
  }

  test('exclude skips that replica even when it is the best', async () => {
    const s = await build([{}, { slots: 2, load: 1 }]);
    assert.equal(s.pool.pick(s.fakes[0])?.id, 'b');
    assert.equal(s.pool.pick(s.fakes[1])?.id, 'a');
  });
});

describe('the error penalty: +1 per replica fault (capped at 10), halved per success, zero below 0.01', () => {
  // Each row: batch scripts run on a lone replica (a fault is retried on the same one), then its error score.
  const cases: [string, Script[], number][] = [
    ['a success leaves it at 0', [['ok']], 0],
    ['a fault then its retry succeeding: 1 halved', [['fault', 'ok']], 0.5],
    ['two faults in one batch: 2', [['fault', 'fault']], 2],
    ['a request error is not the replica fault: no penalty', [['request-error']], 0],
    ['then a success halves it', [['fault', 'fault'], ['ok']], 1],
    ['twelve faults stop at 10', Array.from({ length: 6 }, () => ['fault', 'fault'] as Script), 10],
    ['0.5 halved 5 times is 0.016: still counted', [['fault', 'ok'], ['ok'], ['ok'], ['ok'], ['ok'], ['ok']], 0.016],
    [
      'halved once more it is under 0.01: forgotten',
      [['fault', 'ok'], ['ok'], ['ok'], ['ok'], ['ok'], ['ok'], ['ok']],
      0,
    ],
  ];
  for (const [name, scripts, want] of cases) {
    test(name, async () => {
      const s = await build([{}]);
      for (const script of scripts) await play(s, script);
      assert.equal(s.pool.stats()[0]?.errorScore, want);
    });
  }
});

describe('ReplicaPool.run: a replica fault is retried once, elsewhere when it can be', () => {
  test('a fault on one replica is retried on the other, and the retry is announced', async () => {
    const s = await build([{}, {}]);
    const out = await play(s, ['fault', 'ok']);
    assert.ok(!(out instanceof Error), String(out));
    assert.equal(out.replicaId, 'b');
    assert.deepEqual(s.retries, ['a: worker crashed']);
    assert.deepEqual(
      s.fakes.map((f) => f.history.length),
      [1, 1],
    );
  });

  test('the retry waits for a slot elsewhere rather than going back to the replica that failed', async () => {
    const s = await build([{}, {}]);
    // b busy with a batch of the pool's own (only those free slots the pool sees), then a fails its batch.
    s.fakes[0]?.setState('down');
    const onB = s.pool.run(task);
    s.fakes[0]?.setState('ready');
    const result = s.pool.run(task);
    await flush();
    const [attempt] = s.fakes[0]?.running ?? [];
    attempt?.fault();
    await flush();
    assert.equal(s.fakes[0]?.history.length, 1, 'a is free and ready, but the retry does not go back to it');
    assert.equal(s.pool.freeSlots, 0, "a's free slot is held for the waiting retry");
    s.fakes[1]?.running[0]?.finish();
    await onB;
    await flush();
    assert.equal(s.fakes[1]?.running.length, 1, 'the retry took b as soon as it freed');
    s.fakes[1]?.running[0]?.finish();
    assert.equal((await result).replicaId, 'b');
    assert.equal(s.slotFree.count > 0, true);
  });

  test('when every other replica is down, the failed one, if ready, takes its own retry at once', async () => {
    const s = await build([{}, { state: 'down' }, { state: 'closed' }]);
    const out = await play(s, ['fault', 'ok']);
    assert.ok(!(out instanceof Error), String(out));
    assert.equal(out.replicaId, 'a');
    assert.equal(s.clock.pendingTimers, 0, 'no wait for a replica that is not coming');
  });

  test('the only replica takes its own retry once it is back (a replaced worker)', async () => {
    const s = await build([{}]);
    const result = s.pool.run(task).catch((e: SlogateError) => e);
    await flush();
    s.fakes[0]?.setState('pending');
    s.fakes[0]?.running[0]?.fault();
    await flush();
    s.clock.advance(999);
    await flush();
    assert.equal(s.fakes[0]?.history.length, 1, 'nothing runs while the replica is pending');
    s.fakes[0]?.setState('ready');
    await flush();
    s.fakes[0]?.running[0]?.finish();
    const out = await result;
    assert.ok(!(out instanceof Error), String(out));
    assert.equal(out.replicaId, 'a');
  });

  const failures: [string, FakeSpec[], Script, (s: Setup) => void, RegExp][] = [
    ['no replica ready: refused at once', [{ state: 'down' }], [], () => {}, /no replica is ready/],
    ['a fault twice: unavailable, naming both', [{}, {}], ['fault', 'fault'], () => {}, /batch failed on two replicas/],
    [
      'no other replica ready within retryWaitMs (on the clock): unavailable',
      [{}, { state: 'pending' }],
      ['fault'],
      (s) => s.clock.advance(1000),
      /no replica became available for the retry/,
    ],
  ];
  for (const [name, specs, script, after, message] of failures) {
    test(name, async () => {
      const s = await build(specs);
      const pending = play(s, script);
      await flush();
      after(s);
      const out = await pending;
      assert.ok(out instanceof SlogateError, `an error, got ${JSON.stringify(out)}`);
      assert.equal(out.code, 'SLOGATE_ERR_REPLICA_UNAVAILABLE');
      assert.match(out.message, message);
    });
  }

  test("a request's own error is not retried and keeps its code", async () => {
    const s = await build([{}, {}]);
    const out = await play(s, ['request-error']);
    assert.ok(out instanceof SlogateError);
    assert.equal(out.code, 'SLOGATE_ERR_INFERENCE_FAILED');
    assert.deepEqual(s.retries, []);
    assert.equal(s.fakes[1]?.history.length, 0);
  });
});

describe('waiters: retries waiting for a slot are woken in order, before the scheduler', () => {
  test('each freed slot wakes the oldest waiting retry; slot-free is announced only when no retry takes it', async () => {
    const s = await build([{ slots: 2 }, { state: 'down' }]);
    const first = s.pool.run(task);
    const second = s.pool.run(task);
    await flush();
    const [r1, r2] = s.fakes[0]?.running ?? [];
    // Both fault while a is replaced; b is down, so a takes its own retries once back.
    s.fakes[0]?.setState('pending');
    r1?.fault('one');
    r2?.fault('two');
    await flush();
    const before = s.slotFree.count;
    s.fakes[0]?.setState('ready');
    await flush();
    assert.deepEqual(s.retries, ['a: one'], 'the oldest retry runs first');
    assert.equal(s.slotFree.count, before, 'the slot went to a retry, not to the scheduler');
    s.fakes[0]?.running[0]?.finish();
    await first;
    await flush();
    assert.deepEqual(s.retries, ['a: one', 'a: two'], 'its freed slot woke the next retry');
    assert.equal(s.slotFree.count, before, 'still no slot-free: a retry took it');
    s.fakes[0]?.running[0]?.finish();
    await second;
    assert.equal(s.slotFree.count, before + 1, 'slot-free once no retry waits');
  });

  test('freeSlots counts the waiting retries against the free slots', async () => {
    const s = await build([{ slots: 2 }, { state: 'down' }]);
    const run = s.pool.run(task).catch((e: SlogateError) => e);
    await flush();
    s.fakes[0]?.setState('pending');
    s.fakes[0]?.running[0]?.fault();
    await flush();
    assert.equal(s.pool.freeSlots, 0, 'pending replica: nothing free');
    s.fakes[1]?.setState('ready');
    await flush();
    assert.equal(s.fakes[1]?.running.length, 1, 'the retry woke on b');
    assert.equal(s.pool.freeSlots, 0);
    s.fakes[1]?.running[0]?.finish();
    await run;
    assert.equal(s.pool.freeSlots, 1);
  });

  test('close() answers every waiting retry with unavailable and clears its timer', async () => {
    const s = await build([{}, { state: 'pending' }]);
    const out = play(s, ['fault']);
    await flush();
    assert.equal(s.clock.pendingTimers, 1);
    await s.pool.close();
    const e = await out;
    assert.ok(e instanceof SlogateError && e.code === 'SLOGATE_ERR_REPLICA_UNAVAILABLE');
    assert.equal(s.clock.pendingTimers, 0);
  });
});

describe('ReplicaPool.run with a timeout: a hung attempt is let go, its replica told, the batch retried once', () => {
  const hang = async (s: Setup, options: Parameters<ReplicaPool['run']>[1]) => {
    const result = s.pool.run(task, options).then(
      (o) => o,
      (e: SlogateError) => e,
    );
    await flush();
    return { result };
  };

  test('an attempt still running at its timeout fails over: the replica is told and the retry runs elsewhere', async () => {
    const s = setup([{}, {}]);
    const timeouts: string[] = [];
    s.pool.on('timeout', (id, ms) => timeouts.push(`${id} ${ms}`));
    const { result } = await hang(s, { timeoutMs: () => 50 });
    const [a, b] = s.fakes as [FakeReplica, FakeReplica];
    s.clock.advance(49);
    await flush();
    assert.equal(a.timeouts.length, 0, 'not before its timeout');
    s.clock.advance(1);
    await flush();
    assert.deepEqual(timeouts, ['a 50']);
    assert.match(a.timeouts[0] ?? '', /did not finish the batch within its 50 ms timeout/);
    assert.equal(a.state, 'pending', 'the replica took itself out of service');
    assert.equal(b.running.length, 1, 'the retry runs on the other replica');
    b.running[0]?.finish();
    const out = await result;
    assert.equal((out as BatchOutcome).replicaId, 'b');
    assert.equal(s.retries.length, 1);
  });

  test('a retry that times out too fails the batch with BATCH_TIMEOUT', async () => {
    const s = setup([{}, {}]);
    const { result } = await hang(s, { timeoutMs: () => 50 });
    s.clock.advance(50);
    await flush();
    s.clock.advance(50);
    const err = (await result) as SlogateError;
    assert.equal(err.code, 'SLOGATE_ERR_BATCH_TIMEOUT');
    assert.equal(s.fakes[1]?.timeouts.length, 1);
  });

  test('beforeRetry false (nothing left worth retrying) fails at once with BATCH_TIMEOUT, retrying nothing', async () => {
    const s = setup([{}, {}]);
    let asked = 0;
    const { result } = await hang(s, {
      timeoutMs: () => 50,
      beforeRetry: () => {
        asked++;
        return false;
      },
    });
    s.clock.advance(50);
    const err = (await result) as SlogateError;
    assert.equal(err.code, 'SLOGATE_ERR_BATCH_TIMEOUT');
    assert.equal(asked, 1);
    assert.equal(s.fakes[1]?.history.length, 0);
  });

  test('an attempt that finishes in time clears its timer and tells nobody', async () => {
    const s = setup([{}]);
    const { result } = await hang(s, { timeoutMs: () => 50 });
    s.fakes[0]?.running[0]?.finish();
    assert.equal(((await result) as BatchOutcome).replicaId, 'a');
    assert.equal(s.clock.pendingTimers, 0);
    assert.equal(s.fakes[0]?.timeouts.length, 0);
  });

  test('stuckSinceMs is the oldest of the replicas', () => {
    const s = setup([{}, {}, {}]);
    assert.equal(s.pool.stuckSinceMs, undefined);
    (s.fakes[1] as FakeReplica).stuckSinceMs = 30;
    (s.fakes[2] as FakeReplica).stuckSinceMs = 20;
    assert.equal(s.pool.stuckSinceMs, 20);
  });
});

describe('replica pool membership', () => {
  test('a replica added takes the next batch and wakes a retry waiting for a slot', async () => {
    const s = await build([{ state: 'down' }]);
    const members: string[] = [];
    s.pool.on('member', (id, change) => members.push(`${id} ${change}`));
    const first = s.pool.run(task).catch((e: SlogateError) => e);
    const e = await first;
    assert.ok(e instanceof SlogateError && e.code === 'SLOGATE_ERR_REPLICA_UNAVAILABLE', 'nothing ready yet');
    const added = new FakeReplica('z');
    s.pool.add(added);
    s.pool.add(added);
    assert.equal(s.pool.replicas.length, 2, 'added once');
    assert.equal(s.pool.replicas[0], added, 'first in the list: it wins ties with idle replicas');
    assert.equal(s.pool.readySlots, 1);
    const run = s.pool.run(task);
    await flush();
    assert.equal(added.running.length, 1);
    added.running[0]?.finish();
    assert.equal((await run).replicaId, 'z');
    assert.deepEqual(members, ['z added']);
  });

  test('a drained replica takes no new batch, finishes its running one, then is closed and removed', async () => {
    const s = setup([{}, {}]);
    const [a, b] = s.fakes as [FakeReplica, FakeReplica];
    const members: string[] = [];
    s.pool.on('member', (id, change) => members.push(`${id} ${change}`));
    const running = s.pool.run(task);
    await flush();
    assert.equal(a.running.length, 1, 'a took the first batch');
    let drained = false;
    const done = s.pool.drain(a).then(() => {
      drained = true;
    });
    assert.equal(s.pool.readySlots, 1, 'a no longer counts');
    assert.equal(s.pool.pick(), b);
    await flush();
    assert.equal(drained, false, 'a batch still runs on a');
    assert.equal(a.state, 'ready', 'not cut mid-batch');
    a.running[0]?.finish();
    assert.equal((await running).replicaId, 'a', 'the running batch finished on a');
    await done;
    assert.equal(a.state, 'closed');
    assert.deepEqual(
      s.pool.replicas.map((r) => r.id),
      ['b'],
    );
    assert.deepEqual(members, ['a draining', 'a removed']);
    a.setState('down');
    assert.equal(s.pool.stats().length, 1, 'no longer listened to');
  });

  test('a batch failing on a draining replica is retried elsewhere; an idle one leaves at once', async () => {
    const s = setup([{}, {}, {}]);
    const [a, b, c] = s.fakes as [FakeReplica, FakeReplica, FakeReplica];
    const running = s.pool.run(task);
    await flush();
    void s.pool.drain(a);
    await s.pool.drain(c);
    assert.equal(c.state, 'closed', 'idle: closed at once');
    a.running[0]?.fault();
    await flush();
    assert.equal(b.running.length, 1, 'retried on b');
    b.running[0]?.finish();
    assert.equal((await running).replicaId, 'b');
    await flush();
    assert.deepEqual(
      s.pool.replicas.map((r) => r.id),
      ['b'],
    );
  });
});

describe('replica pool with load reports', () => {
  /** A fake remote node whose load reports leave it `availableSlots` of its slots. */
  class Reporting extends FakeReplica {
    availableSlots: number;
    constructor(id: string, slots: number, available: number) {
      super(id, slots);
      this.availableSlots = available;
    }
  }

  test('a node busy with other gateways’ work offers only what is left, to the choice and to planning', async () => {
    const clock = new ManualClock(0);
    const shared = new Reporting('shared', 4, 1);
    const own = new FakeReplica('own', 2);
    const pool = new ReplicaPool([shared, own], { clock });
    assert.equal(pool.readySlots, 6, 'readiness counts configured slots');
    assert.equal(pool.availableSlots, 3, 'planning counts what is left');
    assert.equal(pool.pick(), shared, 'idle: the shared node first');
    void pool.run(task).catch(() => {});
    await flush();
    assert.equal(shared.running.length, 1);
    assert.equal(pool.freeSlots, 2, 'the shared node has nothing left');
    assert.equal(pool.pick(), own, 'the shared node is full for this gateway');
    shared.availableSlots = 4;
    assert.equal(pool.freeSlots, 5, 'others finished: the shared node has 3 free again');
    shared.running[0]?.finish();
    await flush();
  });
});

describe('ReplicaPool.whileServing: work beside the scheduler needs no free slot', () => {
  test('with every slot taken, run() refuses but whileServing() queues on the ready replicas in turn', async () => {
    const s = await build([{ load: 1 }, { load: 1 }, { state: 'down' }]);
    const refused = await s.pool.run(task).then(
      () => undefined,
      (e: SlogateError) => e.code,
    );
    assert.equal(refused, 'SLOGATE_ERR_REPLICA_UNAVAILABLE');
    const target = s.pool.whileServing();
    assert.equal(target.readySlots, 2, 'the down replica is not counted');
    const runs = [target.run(task), target.run(task)];
    await flush();
    const started = s.fakes.map((f) => f.running.filter((rb) => !held.has(rb)));
    assert.deepEqual(
      started.map((r) => r.length),
      [1, 1, 0],
    );
    for (const r of started.flat()) r.finish();
    assert.deepEqual((await Promise.all(runs)).map((o) => o.replicaId).sort(), ['a', 'b']);
  });
});
