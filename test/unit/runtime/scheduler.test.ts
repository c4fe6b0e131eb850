import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram } from 'prom-client';
import { type CancelSignal, ClientGone } from '../../../core/cancel.js';
import { ManualClock } from '../../../core/clock.js';
import type { SlogateError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import type { BatchKnobs } from '../../../runtime/batch-policy.js';
import type { BatchTimeoutKnobs } from '../../../runtime/batch-timeout.js';
import type { ProfilePoint } from '../../../runtime/latency-profile.js';
import { LatencyProfiles } from '../../../runtime/latency-profile.js';
import type { BatchOutcome, BatchTask } from '../../../runtime/replica.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import { Scheduler } from '../../../runtime/scheduler.js';
import type { SubmitResult } from '../../../runtime/types.js';
import { FakeReplica, flush } from './fake-replica.js';

// Service time: 1 ms alone (p50), 2 ms p99; 8 rows take 4 ms p50 / 6 ms p99; linear in between.
const POINTS: ProfilePoint[] = [
  { rows: 1, p50Ms: 1, p99Ms: 2, samples: 100 },
  { rows: 8, p50Ms: 4, p99Ms: 6, samples: 100 },
];

interface Tracked {
  value?: SubmitResult;
  error?: SlogateError;
  readonly done: Promise<void>;
}

function setup(
  opts: {
    knobs?: BatchKnobs;
    replicas?: number;
    maxQueueRows?: number;
    variants?: string[];
    batchTimeout?: BatchTimeoutKnobs;
  } = {},
) {
  const clock = new ManualClock(1000);
  const replicas = Array.from({ length: opts.replicas ?? 1 }, (_, i) => new FakeReplica(`r${i}`));
  const pool = new ReplicaPool(replicas, { clock, retryWaitMs: 1000 });
  const profiles = new LatencyProfiles();
  const drops: string[] = [];
  const scheduler = new Scheduler({
    clock,
    pool,
    profiles,
    maxQueueRows: opts.maxQueueRows ?? 1000,
    events: { onDrop: (_m, _v, code) => drops.push(code) },
    batchTimeout: opts.batchTimeout,
  });
  for (const v of opts.variants ?? ['v']) {
    profiles.setPoints('m', v, POINTS);
    scheduler.addVariant('m', v, opts.knobs ?? { maxBatch: 8, maxQueueDelayMs: 0 }, true);
  }
  let n = 0;
  /** Submits a one-row request whose payload is its sequence number; deadline relative to now. */
  const submit = (
    o: {
      deadlineMs?: number;
      priority?: number;
      rows?: number;
      signal?: CancelSignal;
      variant?: string;
      tag?: string;
      pinned?: boolean;
      /** Elements per row (the input's trailing dimension). */
      width?: number;
    } = {},
  ): Tracked & { id: number } => {
    const id = n++;
    const rows = o.rows ?? 1;
    const width = o.width ?? 1;
    const now = clock.now();
    const t: Tracked & { id: number } = { id } as Tracked & { id: number };
    (t as { done: Promise<void> }).done = scheduler
      .submit({
        model: 'm',
        variant: o.variant ?? 'v',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, width], data: new Float32Array(rows * width).fill(id) }],
        rows,
        arrivalMs: now,
        deadlineAtMs: now + (o.deadlineMs ?? 100),
        priority: o.priority ?? 0,
        signal: o.signal,
        tag: o.tag,
        pinned: o.pinned,
      })
      .then(
        (v) => {
          t.value = v;
        },
        (e: SlogateError) => {
          t.error = e;
        },
      );
    return t;
  };
  /** Payload ids of the rows in a batch, in batch order. */
  const ids = (batchIndex: number, replica = 0) =>
    Array.from((replicas[replica]?.history[batchIndex]?.inputs[0]?.data ?? []) as Float32Array);
  return { clock, replicas, pool, profiles, scheduler, drops, submit, ids };
}

describe('Scheduler batch formation', () => {
  test('work-conserving: with maxQueueDelayMs 0 an idle replica runs the first request at once, alone', async () => {
    const s = setup();
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 1);
    assert.equal(s.replicas[0]?.history[0]?.rows, 1);
  });

  test('requests that arrive while the replica is busy form one batch when it frees', async () => {
    const s = setup();
    const first = s.submit();
    const rest = [s.submit(), s.submit(), s.submit(), s.submit()];
    await flush();
    assert.equal(s.replicas[0]?.history.length, 1, 'only the first batch runs while busy');
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 2);
    assert.deepEqual(s.ids(1), [1, 2, 3, 4]);
    s.replicas[0]?.running[0]?.finish();
    await Promise.all([first.done, ...rest.map((r) => r.done)]);
    assert.equal(first.value?.batchRows, 1);
    for (const r of rest) {
      assert.equal(r.value?.batchRows, 4);
      // Each caller gets its own row back.
      assert.deepEqual(Array.from(r.value?.outputs[0]?.data as Float32Array), [r.id]);
      assert.deepEqual(r.value?.outputs[0]?.shape, [1, 1]);
    }
  });

  test('only requests of the same trailing shape stack; the others keep their place for the next batch', async () => {
    const s = setup();
    s.submit(); // occupies the replica
    const queued = [1, 2, 1, 2, 1].map((width) => s.submit({ width }));
    await flush();
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.deepEqual(s.ids(1), [1, 3, 5]);
    assert.deepEqual(s.replicas[0]?.history[1]?.inputs[0]?.shape, [3, 1]);
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.deepEqual(s.ids(2), [2, 2, 4, 4]);
    assert.deepEqual(s.replicas[0]?.history[2]?.inputs[0]?.shape, [2, 2]);
    s.replicas[0]?.running[0]?.finish();
    await Promise.all(queued.map((q) => q.done));
    for (const q of queued) assert.equal(q.error, undefined);
  });

  test('maxBatch caps a batch: 10 queued rows with maxBatch 4 run as 4, 4, 2', async () => {
    const s = setup({ knobs: { maxBatch: 4, maxQueueDelayMs: 0 } });
    s.submit(); // occupies the replica
    const queued = Array.from({ length: 10 }, () => s.submit());
    await flush();
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      s.replicas[0]?.running[0]?.finish();
      await flush();
    }
    for (const b of s.replicas[0]?.history.slice(1) ?? []) sizes.push(b.rows);
    assert.deepEqual(sizes, [4, 4, 2]);
    await Promise.all(queued.map((q) => q.done));
    assert.ok(queued.every((q) => q.value !== undefined));
  });

  test('maxQueueDelayMs: an idle replica waits for a fuller batch, then sends what it has when the delay ends', async () => {
    const s = setup({ knobs: { maxBatch: 8, maxQueueDelayMs: 5 } });
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 0, 'waits while the delay lasts');
    s.clock.advance(2);
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 0);
    s.clock.advance(3.1);
    await flush();
    assert.equal(s.replicas[0]?.history.length, 1);
    assert.equal(s.replicas[0]?.history[0]?.rows, 2);
  });

  test('a full batch goes at once even inside the queue delay', async () => {
    const s = setup({ knobs: { maxBatch: 3, maxQueueDelayMs: 50 } });
    s.submit();
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 0);
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history[0]?.rows, 3);
  });

  test('preferredBatchSizes: reaching a preferred size sends at once', async () => {
    const s = setup({ knobs: { maxBatch: 8, maxQueueDelayMs: 50, preferredBatchSizes: [2, 4] } });
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 0);
    s.submit();
    await flush();
    assert.equal(s.replicas[0]?.history[0]?.rows, 2);
  });

  test('deadline-driven early dispatch: the wait ends when the head must start to make its deadline', async () => {
    // Delay 50 ms, but the head's deadline is 10 ms away and a batch of 2 takes ~2.6 ms p99: it must start by ~7.4 ms.
    const s = setup({ knobs: { maxBatch: 8, maxQueueDelayMs: 50 } });
    s.submit({ deadlineMs: 10 });
    await flush();
    s.clock.advance(7);
    await flush();
    assert.equal(s.replicas[0]?.history.length, 0, 'still waiting at 7 ms');
    s.clock.advance(1);
    await flush();
    assert.equal(s.replicas[0]?.history.length, 1, 'sent before the head could no longer make it');
  });

  test('a batch shrinks so that its head still finishes before the deadline', async () => {
    const s = setup({ knobs: { maxBatch: 8, maxQueueDelayMs: 0 } });
    s.submit(); // busy
    s.submit({ deadlineMs: 5 }); // head: 5 ms left; 8 rows take 6 ms p99, 4 rows ~3.7 ms
    for (let i = 0; i < 7; i++) s.submit({ deadlineMs: 100 });
    await flush();
    s.replicas[0]?.running[0]?.finish();
    await flush();
    const rows = s.replicas[0]?.history[1]?.rows ?? 0;
    assert.ok(rows >= 1 && rows < 8, `expected a shrunken batch, got ${rows}`);
    const p99 = s.profiles.serviceMs('m', 'v', rows, 'p99');
    assert.ok(p99 <= 5, `batch of ${rows} (p99 ${p99} ms) must fit the head's 5 ms`);
    assert.equal(s.ids(1)[0], 1, 'the head is in it');
  });
});

describe('Scheduler order, drops and rejects', () => {
  test('earliest deadline first, then higher priority within a deadline tie', async () => {
    const s = setup({ knobs: { maxBatch: 1, maxQueueDelayMs: 0 } });
    s.submit(); // busy
    s.submit({ deadlineMs: 90, priority: 0 }); // id 1
    s.submit({ deadlineMs: 50, priority: 0 }); // id 2
    s.submit({ deadlineMs: 90, priority: 5 }); // id 3
    s.submit({ deadlineMs: 70, priority: -1 }); // id 4
    await flush();
    const order: number[] = [];
    for (let i = 0; i < 5; i++) {
      s.replicas[0]?.running[0]?.finish();
      await flush();
    }
    for (const b of s.replicas[0]?.history.slice(1) ?? [])
      order.push((b.inputs[0]?.data as Float32Array | undefined)?.[0] ?? -1);
    assert.deepEqual(order, [2, 4, 3, 1]);
  });

  test('a queued request that can no longer make its deadline, even alone, is dropped with DEADLINE_UNREACHABLE', async () => {
    const s = setup();
    s.submit({ deadlineMs: 1000 }); // occupies the replica for a long time
    const doomed = s.submit({ deadlineMs: 20 });
    await flush();
    s.clock.advance(19.5); // 0.5 ms left; alone it needs ~1 ms
    await flush();
    assert.equal(doomed.error?.code, 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
    assert.ok((doomed.error?.retryAfterMs ?? 0) > 0);
    assert.deepEqual(s.drops, ['SLOGATE_ERR_DEADLINE_UNREACHABLE']);
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.equal(s.replicas[0]?.history.length, 1, 'the dropped request never ran');
  });

  test('a full queue rejects at once with QUEUE_FULL and a Retry-After hint', async () => {
    const s = setup({ maxQueueRows: 3 });
    s.submit(); // runs
    s.submit();
    s.submit({ rows: 2 });
    const over = s.submit();
    await flush();
    assert.equal(over.error?.code, 'SLOGATE_ERR_QUEUE_FULL');
    assert.ok((over.error?.retryAfterMs ?? 0) >= 100);
    assert.deepEqual(s.drops, ['SLOGATE_ERR_QUEUE_FULL']);
    assert.equal(s.scheduler.queuedRows('m', 'v'), 3);
  });

  // The gateway signals a disconnect with a ClientGone; in-process callers may pass an AbortSignal.
  for (const kind of ['AbortSignal', 'ClientGone'] as const) {
    test(`a client that disconnects removes its queued request; it is never run (${kind})`, async () => {
      const s = setup();
      s.submit(); // busy
      const cancel = kind === 'AbortSignal' ? new AbortController() : new ClientGone();
      const gone = s.submit({ signal: cancel instanceof AbortController ? cancel.signal : cancel });
      const stays = s.submit();
      await flush();
      cancel.abort();
      await flush();
      assert.equal(gone.error?.code, 'SLOGATE_ERR_CANCELLED');
      assert.equal(s.scheduler.queuedRows('m', 'v'), 1);
      s.replicas[0]?.running[0]?.finish();
      await flush();
      assert.deepEqual(s.ids(1), [2], 'only the remaining request runs');
      s.replicas[0]?.running[0]?.finish();
      await stays.done;
      assert.ok(stays.value !== undefined);
    });
  }

  test('a disconnect during a running batch neither cancels the batch nor its batch-mates', async () => {
    const s = setup();
    s.submit(); // busy
    const ac = new AbortController();
    const a = s.submit({ signal: ac.signal });
    const b = s.submit();
    await flush();
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.equal(s.replicas[0]?.history[1]?.rows, 2);
    ac.abort();
    s.replicas[0]?.running[0]?.finish();
    await Promise.all([a.done, b.done]);
    assert.ok(a.value !== undefined, 'the result is delivered (the gateway discards it)');
    assert.ok(b.value !== undefined);
  });

  test('with two variants and one free slot, the batch with the least laxity goes first', async () => {
    const s = setup({ variants: ['x', 'y'], knobs: { maxBatch: 1, maxQueueDelayMs: 0 } });
    s.submit({ variant: 'x', deadlineMs: 1000 }); // busy
    s.submit({ variant: 'x', deadlineMs: 80 });
    s.submit({ variant: 'y', deadlineMs: 30 });
    await flush();
    s.replicas[0]?.running[0]?.finish();
    await flush();
    assert.equal(s.replicas[0]?.history[1]?.variant, 'y');
  });
});

describe('Scheduler migration', () => {
  test("a route's queued requests move to the new variant; pinned ones and other routes' stay", async () => {
    const s = setup({ variants: ['v', 'w'] });
    const busy = s.submit({ variant: 'w' });
    const moves = s.submit({ variant: 'v', tag: 'r' });
    const pinned = s.submit({ variant: 'v', tag: 'r', pinned: true });
    const other = s.submit({ variant: 'v', tag: 'other' });
    await flush();
    assert.equal(s.scheduler.migrate('m', 'v', 'w', 'r', 1), 1, 'only the unpinned request of route r');
    for (let i = 0; i < 3; i++) {
      s.replicas[0]?.running[0]?.finish();
      await flush();
    }
    await Promise.all([busy.done, moves.done, pinned.done, other.done]);
    assert.deepEqual(
      [moves, pinned, other].map((t) => t.value?.variant),
      ['w', 'v', 'v'],
    );
  });
});

describe('Scheduler with failing replicas', () => {
  test('a batch whose replica faults is retried once on another replica; callers see no error', async () => {
    const s = setup({ replicas: 2 });
    const a = s.submit();
    await flush();
    const first = s.replicas.find((r) => r.running.length === 1) as FakeReplica;
    const other = s.replicas.find((r) => r !== first) as FakeReplica;
    first.running[0]?.fault();
    await flush();
    assert.equal(other.history.length, 1, 'retried on the other replica');
    other.running[0]?.finish();
    await a.done;
    assert.equal(a.value?.replicaId, other.id);
  });

  test('a second fault fails the batch with REPLICA_UNAVAILABLE', async () => {
    const s = setup({ replicas: 2 });
    const a = s.submit();
    await flush();
    const first = s.replicas.find((r) => r.running.length === 1) as FakeReplica;
    first.running[0]?.fault();
    await flush();
    const other = s.replicas.find((r) => r !== first) as FakeReplica;
    other.running[0]?.fault();
    await a.done;
    assert.equal(a.error?.code, 'SLOGATE_ERR_REPLICA_UNAVAILABLE');
  });

  test('a request fault (bad input) is not retried', async () => {
    const s = setup({ replicas: 2 });
    const a = s.submit();
    await flush();
    const first = s.replicas.find((r) => r.running.length === 1) as FakeReplica;
    first.running[0]?.failRequest();
    await a.done;
    assert.equal(a.error?.code, 'SLOGATE_ERR_INFERENCE_FAILED');
    assert.equal(
      s.replicas.reduce((n, r) => n + r.history.length, 0),
      1,
    );
  });

  test('with a single replica, the retry waits for it to come back', async () => {
    const s = setup({ replicas: 1 });
    const a = s.submit();
    await flush();
    const r = s.replicas[0] as FakeReplica;
    r.setState('pending');
    r.running[0]?.fault();
    await flush();
    assert.equal(r.history.length, 1, 'nothing runs while the replica is restarting');
    r.setState('ready');
    await flush();
    assert.equal(r.history.length, 2);
    r.running[0]?.finish();
    await a.done;
    assert.ok(a.value !== undefined);
  });
});

describe('Scheduler drain', () => {
  test('drain refuses new work with SHUTTING_DOWN and resolves once queued and running work is answered', async () => {
    const s = setup();
    const a = s.submit();
    const b = s.submit();
    await flush();
    let drained: boolean | undefined;
    const d = s.scheduler.drain(10_000).then((ok) => {
      drained = ok;
    });
    const late = s.submit();
    await flush();
    assert.equal(late.error?.code, 'SLOGATE_ERR_SHUTTING_DOWN');
    assert.equal(drained, undefined);
    s.replicas[0]?.running[0]?.finish();
    await flush();
    s.replicas[0]?.running[0]?.finish();
    await d;
    assert.equal(drained, true);
    assert.ok(a.value !== undefined && b.value !== undefined);
  });

  test('drain that times out refuses what is still queued', async () => {
    const s = setup();
    s.submit({ deadlineMs: 10_000 });
    const queued = s.submit({ deadlineMs: 10_000 });
    await flush();
    const d = s.scheduler.drain(100);
    s.clock.advance(101);
    assert.equal(await d, false);
    await queued.done;
    assert.equal(queued.error?.code, 'SLOGATE_ERR_SHUTTING_DOWN');
  });
});

/** A replica whose answers carry output storage that cannot be split into the batch's rows. */
class MalformedReplica extends FakeReplica {
  override run(task: BatchTask): Promise<BatchOutcome> {
    const data = null as unknown as Float32Array;
    return Promise.resolve({
      outputs: [{ name: 'out', datatype: 'FP32', shape: [task.rows, 1], data }],
      inferMs: 1,
      workerMs: 1,
      replicaId: this.id,
    });
  }
}

describe('Scheduler containment: a batch always settles', () => {
  type Options = ConstructorParameters<typeof Scheduler>[0];
  /** A scheduler whose observers are the test's, with one two-row batch submitted and dispatched. */
  async function running(events: Options['events'], tracing?: Options['tracing'], replica = new FakeReplica('r0')) {
    const clock = new ManualClock(1000);
    const pool = new ReplicaPool([replica], { clock, retryWaitMs: 1000 });
    const profiles = new LatencyProfiles();
    profiles.setPoints('m', 'v', POINTS);
    const logged: string[] = [];
    const logger = { ...silentLogger, error: (_o: unknown, msg?: string) => logged.push(String(msg)) };
    const scheduler = new Scheduler({ clock, pool, profiles, maxQueueRows: 100, events, tracing, logger });
    scheduler.addVariant('m', 'v', { maxBatch: 8, maxQueueDelayMs: 5 }, true);
    const answers: { value?: SubmitResult; error?: SlogateError }[] = [];
    const done = [0, 1].map((id) => {
      const a: { value?: SubmitResult; error?: SlogateError } = {};
      answers.push(a);
      return scheduler
        .submit({
          model: 'm',
          variant: 'v',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(id) }],
          rows: 1,
          arrivalMs: 1000,
          deadlineAtMs: 1100,
          priority: 0,
        })
        .then(
          (v) => {
            a.value = v;
          },
          (e: SlogateError) => {
            a.error = e;
          },
        );
    });
    clock.advance(6); // the bounded wait is over: both rows go as one batch
    await flush();
    return { replica, scheduler, answers, done, logged };
  }

  test('a batch metric that throws on a non-finite value is logged and skipped; both requests are answered', async () => {
    const histogram = new Histogram({ name: 'test_infer_seconds', help: 'x', registers: [] });
    const s = await running({ onBatch: (o) => histogram.observe(o.inferMs / 1000) });
    assert.equal(s.replica.running.length, 1);
    assert.equal(s.replica.running[0]?.task.rows, 2);
    s.replica.running[0]?.finish(Number.NaN);
    await Promise.all(s.done);
    assert.deepEqual(
      s.answers.map((a) => Array.from(a.value?.outputs[0]?.data as Float32Array)),
      [[0], [1]],
    );
    assert.equal(s.scheduler.inflightBatches, 0);
    assert.ok(
      s.logged.some((m) => m.includes('onBatch failed')),
      s.logged.join('|'),
    );
  });

  test('tracing that throws when a batch ends does not keep its requests from their answers', async () => {
    const tracing = {
      current: () => undefined,
      queued: () => undefined,
      dropped: () => {},
      dispatched: () => ({}),
      ran: () => {
        throw new Error('exporter exploded');
      },
    } as unknown as Options['tracing'];
    const s = await running({}, tracing);
    s.replica.running[0]?.finish();
    await Promise.all(s.done);
    assert.ok(s.answers.every((a) => a.value !== undefined));
    assert.ok(s.logged.some((m) => m.includes('tracing failed')));
  });

  test('a delivery that throws answers every request with INTERNAL and frees the batch', async () => {
    const s = await running({}, undefined, new MalformedReplica('bad'));
    await Promise.all(s.done);
    assert.deepEqual(
      s.answers.map((a) => a.error?.code),
      ['SLOGATE_ERR_INTERNAL', 'SLOGATE_ERR_INTERNAL'],
    );
    assert.equal(s.scheduler.inflightBatches, 0);
    assert.ok(s.logged.some((m) => m.includes('could not be delivered')));
  });
});

describe('Scheduler with a batch timeout', () => {
  // 1-row batches: p99 2 ms, so 4 x p99 = 8 ms; a 100 ms deadline wins: timeout = 100 + 10 ms after dispatch.
  const batchTimeout = { p99Factor: 4, marginMs: 10, floorMs: 50 };

  test('a hung batch is answered with BATCH_TIMEOUT at its timeout, and the other replica keeps answering', async () => {
    const s = setup({ replicas: 2, batchTimeout });
    const hung = s.submit({ deadlineMs: 100 });
    await flush();
    const stuck = s.replicas.find((r) => r.running.length === 1) as FakeReplica;
    s.clock.advance(109);
    await flush();
    assert.equal(hung.error === undefined, true, 'not before deadline + margin');
    s.clock.advance(1);
    await hung.done;
    assert.equal(hung.error?.code, 'SLOGATE_ERR_BATCH_TIMEOUT');
    assert.match(hung.error?.message ?? '', /deadline has passed/);
    assert.equal(stuck.timeouts.length, 1, 'its replica was told');
    assert.equal(stuck.state, 'pending');
    const next = s.submit();
    await flush();
    const other = s.replicas.find((r) => r !== stuck) as FakeReplica;
    assert.equal(other.history.length, 1, 'new work goes to the healthy replica');
    other.running[0]?.finish();
    await next.done;
    assert.ok(next.value !== undefined);
  });

  test('the floor holds for a tight deadline: a 5 ms deadline times out after 50 ms, not 15', async () => {
    const s = setup({ replicas: 1, batchTimeout });
    const a = s.submit({ deadlineMs: 5 });
    await flush();
    s.clock.advance(49);
    await flush();
    assert.equal(a.error === undefined, true);
    s.clock.advance(1);
    await a.done;
    assert.equal(a.error?.code, 'SLOGATE_ERR_BATCH_TIMEOUT');
  });

  test('without a batch timeout a batch may run for ever (the simulator and profiler case)', async () => {
    const s = setup({ replicas: 1 });
    const a = s.submit({ deadlineMs: 5 });
    await flush();
    s.clock.advance(60_000);
    await flush();
    assert.equal(a.error, undefined);
    s.replicas[0]?.running[0]?.finish();
    await a.done;
    assert.ok(a.value !== undefined);
  });
});
