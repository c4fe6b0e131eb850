// DNS membership on the manual clock with a scripted resolver and fake replicas: addresses that appear are started
// and then added, ones that vanish are drained (or closed while starting), a failed start is retried while the
// address is listed, a node going down triggers a resolution, and the first node to join is reported.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import type { Endpoint } from '../../../runtime/dns-endpoints.js';
import { DnsReplicaSet } from '../../../runtime/dns-replicas.js';
import { ReplicaPool } from '../../../runtime/replica-pool.js';
import type { DescribeResult } from '../../../runtime/worker/messages.js';
import { FakeReplica, flush } from './fake-replica.js';

const ep = (last: number): Endpoint => ({ host: `127.0.0.${last}`, port: 8000 });

/** A fake node whose start() the test decides. */
class StartingReplica extends FakeReplica {
  readonly starts: { resolve: (d: DescribeResult) => void; reject: (e: Error) => void }[] = [];
  override start(): Promise<DescribeResult> {
    return new Promise((resolve, reject) => this.starts.push({ resolve, reject }));
  }
  ok(): void {
    this.starts.shift()?.resolve({ ok: true, kind: 'describe', provider: 'remote', sessions: [] });
  }
}

function harness(answers: Endpoint[][]) {
  const clock = new ManualClock();
  const pool = new ReplicaPool([], { clock });
  const made = new Map<string, StartingReplica>();
  let calls = 0;
  const set = new DnsReplicaSet({
    target: { name: 'rt.test', port: 8000 },
    intervalMs: 5000,
    clock,
    logger: silentLogger,
    pool,
    restartDelayMs: 500,
    makeReplica: (e, id) => {
      const r = new StartingReplica(id, 2);
      made.set(e.host, r);
      return r;
    },
    resolve: async () => answers[Math.min(calls++, answers.length - 1)] as Endpoint[],
  });
  const ids = () => pool.replicas.map((r) => r.id).sort();
  return { clock, pool, set, made, ids, calls: () => calls };
}

describe('dns replica set', () => {
  test('a node joins the pool only once started; the first to join is reported', async () => {
    const h = harness([[ep(2), ep(3)]]);
    await h.set.start();
    assert.deepEqual(h.ids(), [], 'nothing joins before it answers');
    assert.equal(h.set.members().length, 2);
    let first: DescribeResult | undefined;
    void h.set.firstJoined().then((d) => {
      first = d;
    });
    h.made.get('127.0.0.3')?.ok();
    await flush();
    assert.deepEqual(h.ids(), ['rt.test/127.0.0.3:8000']);
    assert.equal(first?.provider, 'remote');
    assert.equal(h.pool.readySlots, 2);
    await h.set.close();
    assert.equal(h.made.get('127.0.0.2')?.state, 'closed', 'a node still starting is closed with the set');
  });

  test('re-resolves on the interval: added nodes join, removed ones drain after their batch', async () => {
    const h = harness([[ep(2)], [ep(3)]]);
    await h.set.start();
    h.made.get('127.0.0.2')?.ok();
    await flush();
    const a = h.made.get('127.0.0.2') as StartingReplica;
    const running = h.pool.run(() => ({ model: 'm', variant: 'v', inputs: [], rows: 1, transfer: false }));
    await flush();
    assert.equal(a.running.length, 1);
    h.clock.advance(5000);
    await flush();
    assert.equal(h.calls(), 2);
    assert.equal(h.pool.readySlots, 0, '.2 is draining and .3 not started yet');
    assert.equal(a.state, 'ready', 'the running batch is not cut');
    h.made.get('127.0.0.3')?.ok();
    await flush();
    a.running[0]?.finish();
    await running;
    await flush();
    assert.deepEqual(h.ids(), ['rt.test/127.0.0.3:8000']);
    assert.equal(a.state, 'closed');
    await h.set.close();
  });

  test('a failed start is retried after the delay while listed; a node removed while starting never joins', async () => {
    const h = harness([[ep(2)], []]);
    await h.set.start();
    const r = h.made.get('127.0.0.2') as StartingReplica;
    r.starts.shift()?.reject(new Error('refused'));
    await flush();
    assert.equal(r.starts.length, 0);
    h.clock.advance(500);
    await flush();
    assert.equal(r.starts.length, 1, 'started again');
    h.clock.advance(4500);
    await flush();
    assert.equal(r.state, 'closed', 'gone from DNS while starting: closed');
    r.ok();
    await flush();
    assert.deepEqual(h.ids(), []);
    await h.set.close();
  });

  test('a member going down triggers a resolution before the interval', async () => {
    const h = harness([[ep(2)], [ep(2)]]);
    await h.set.start();
    const r = h.made.get('127.0.0.2') as StartingReplica;
    r.ok();
    await flush();
    assert.equal(h.calls(), 1);
    r.setState('down');
    await flush();
    assert.equal(h.calls(), 2, 'resolved at once');
    await h.set.close();
    assert.equal(h.clock.pendingTimers, 0, 'nothing scheduled after close');
  });
});
