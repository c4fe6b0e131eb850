// The status page's JSON, built from plain inputs: per-second history in columns, attainment and shed rate over the
// window, decisions with non-finite numbers as null, replicas, queues and the latest decision changes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Decision } from '../../../../core/decision.js';
import { buildStatusData, type StatusInputs, type StatusRoute } from '../../../../gateway/status/status-data.js';
import type { DecisionChange } from '../../../../policies/controller.js';
import { RouteStats } from '../../../../policies/route-stats.js';
import type { ReplicaStats } from '../../../../runtime/replica-pool.js';

const WALL = 1_800_000_000_000;

function decision(patch: Partial<Decision> = {}): Decision {
  return {
    route: 'digits',
    model: 'digits',
    variants: [
      { variant: 'large', share: 0.7 },
      { variant: 'small', share: 0.3 },
    ],
    maxBatch: 8,
    maxQueueDelayMs: 1.5,
    admissionRps: Number.POSITIVE_INFINITY,
    predictedP99Ms: 12.345678,
    accuracy: 0.98765,
    costPerMillion: 0.0123456,
    reason: 'steady',
    inputs: {
      rateFast: 10,
      rateSlow: 10,
      burstiness: 1,
      queuedRows: 0,
      observedP99Ms: Number.NaN,
      observedSinceSwitchP99Ms: Number.NaN,
      capacityRps: 100,
      replicas: 1,
      overheadMs: 1,
      correction: 1,
      missRiskScale: 1,
      gatewayUtilisation: 0.1,
      replicaUtilisation: 0.2,
    },
    atMs: 0,
    at: new Date(WALL).toISOString(),
    ...patch,
  };
}

function route(name: string, stats: RouteStats): StatusRoute {
  return {
    name,
    config: { model: 'digits', slo: { p99Ms: 20, minAccuracy: 0.9 }, priority: 3, objective: 'max-accuracy' },
    policy: 'adaptive',
    stats,
  };
}

function inputs(routes: StatusRoute[], nowMs: number, patch: Partial<StatusInputs> = {}): StatusInputs {
  return {
    version: '1.2.3',
    nowMs,
    wallMs: WALL + nowMs,
    startedWallMs: WALL,
    provider: 'cpu',
    routes,
    decision: () => undefined,
    changes: [],
    replicas: [],
    queues: [],
    utilisation: { gateway: 0.123456, replicas: Number.NaN },
    ...patch,
  };
}

describe('buildStatusData', () => {
  test('per-second history in columns, completed seconds only, p99 null where nothing was answered', () => {
    const stats = new RouteStats({ wallOffsetMs: WALL });
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < 10; i++) {
        stats.arrive(s * 1000 + i);
        stats.finish(s * 1000 + i, s === 1 ? 'shed' : 'met', s === 1 ? undefined : 5);
      }
    }
    const data = buildStatusData(inputs([route('digits', stats)], 3500));
    const h = data.routes[0]?.history;
    assert.deepEqual(h?.t, [WALL, WALL + 1000, WALL + 2000]);
    assert.deepEqual(h?.arrivals, [10, 10, 10]);
    assert.deepEqual(h?.met, [10, 0, 10]);
    assert.deepEqual(h?.shed, [0, 10, 0]);
    assert.equal(h?.p99Ms[1], null);
    assert.ok(
      (h?.p99Ms[0] ?? 0) >= 5 && (h?.p99Ms[0] ?? 0) < 5.3,
      'p99 is the histogram bucket edge at or just above 5 ms',
    );
  });

  test('attainment and shed rate cover the window: met / all outcomes; shed + dropped per second', () => {
    const stats = new RouteStats({ wallOffsetMs: WALL });
    for (let i = 0; i < 90; i++) stats.finish(1000 + i, 'met', 1);
    for (let i = 0; i < 6; i++) stats.finish(1000 + i, 'shed');
    for (let i = 0; i < 4; i++) stats.finish(1000 + i, 'dropped');
    const early = buildStatusData(inputs([route('digits', stats)], 5000), { windowMs: 10_000 }).routes[0];
    assert.equal(early?.attainment, 0.9);
    assert.equal(early?.shedRate, 1);
    stats.finish(100_000, 'missed', 50); // the window is the last 10 s: later, only this one counts
    const late = buildStatusData(inputs([route('digits', stats)], 100_500), { windowMs: 10_000 }).routes[0];
    assert.equal(late?.attainment, 0);
    assert.equal(late?.shedRate, 0);
    assert.equal(late?.totals.met, 90);
    const empty = buildStatusData(inputs([route('idle', new RouteStats())], 1000)).routes[0];
    assert.equal(empty?.attainment, null, 'no requests: no attainment, not 0%');
    assert.equal(empty?.observedP99Ms, null);
  });

  test('decisions: rounded, unlimited admission and unknown numbers as null, the SLO as configured', () => {
    const r = route('digits', new RouteStats());
    const data = buildStatusData(
      inputs([r], 1000, { decision: (name) => (name === 'digits' ? decision({ accuracy: Number.NaN }) : undefined) }),
    );
    const d = data.routes[0]?.decision;
    assert.deepEqual(d?.variants, [
      { variant: 'large', share: 0.7 },
      { variant: 'small', share: 0.3 },
    ]);
    assert.equal(d?.admissionRps, null);
    assert.equal(d?.predictedP99Ms, 12.346);
    assert.equal(d?.accuracy, null);
    assert.equal(d?.reason, 'steady');
    assert.deepEqual(data.routes[0]?.slo, { p99Ms: 20, minAccuracy: 0.9, maxCostPerMillion: null });
    assert.equal(
      buildStatusData(inputs([r], 1000, { decision: () => decision({ admissionRps: 42.04 }) })).routes[0]?.decision
        ?.admissionRps,
      42,
    );
    assert.equal(buildStatusData(inputs([r], 1000)).routes[0]?.decision, null);
  });

  test('header numbers, queues by model/variant, and only the latest decision changes', () => {
    const changes: DecisionChange[] = Array.from({ length: 20 }, (_, i) => ({
      at: new Date(WALL + i).toISOString(),
      atMs: i,
      route: 'digits',
      from: `v${i}`,
      to: `v${i + 1}`,
      reason: `r${i}`,
      decision: decision(),
    }));
    const data = buildStatusData(
      inputs([], 61_000, {
        changes,
        queues: [
          {
            model: 'digits',
            variant: 'large',
            knobs: { maxBatch: 16, maxQueueDelayMs: 0 },
            queued: 3,
            queuedRows: 5,
            batches: 7,
            rowsServed: 9,
            dropped: 0,
            rejected: 0,
          },
        ],
      }),
      { changes: 5 },
    );
    assert.equal(data.version, '1.2.3');
    assert.equal(data.uptimeS, 61);
    assert.equal(data.now, new Date(WALL + 61_000).toISOString());
    assert.deepEqual(data.utilisation, { gateway: 0.123, replicas: 0 });
    assert.deepEqual(data.queues, [{ variant: 'digits/large', queued: 3, queuedRows: 5, maxBatch: 16, batches: 7 }]);
    assert.deepEqual(
      data.changes.map((c) => c.to),
      ['v16', 'v17', 'v18', 'v19', 'v20'],
    );
    assert.equal(JSON.parse(JSON.stringify(data)).utilisation.replicas, 0, 'the document is plain JSON');
  });

  test("replicas' last changes show their kind only: no node address, no stack trace on the public page", () => {
    const replica = (id: string, lastChange: string): ReplicaStats => ({
      id,
      kind: 'remote',
      state: 'down',
      provider: 'remote',
      slots: 2,
      outstanding: 0,
      errorScore: 0,
      restarts: 0,
      batches: 0,
      lastChange,
    });
    const data = buildStatusData(
      inputs([], 0, {
        replicas: [
          replica('remote-0', 'request failed: connect ECONNREFUSED 10.1.2.3:8001'),
          replica(
            'local-0',
            'replacement worker failed: Error: boom\n    at load (/srv/slogate/runtime/worker.js:1:1)',
          ),
          replica('local-1', 'models loaded'),
        ],
      }),
    );
    assert.deepEqual(
      data.replicas.map((r) => r.lastChange),
      ['request failed', 'replacement worker failed', 'models loaded'],
    );
    const text = JSON.stringify(data);
    for (const secret of ['10.1.2.3', '/srv/slogate', 'ECONNREFUSED']) assert.ok(!text.includes(secret), secret);
  });
});
