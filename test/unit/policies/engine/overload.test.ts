// Recovery once an overload has gone: the rules on a table of contexts, then an overload and a steady load near
// capacity through decide() over ticks of the manual clock (docs/engine.md, "Hysteresis: down at once, up slowly").
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diagnose } from '../../../../policies/engine/bottleneck.js';
import {
  decide,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
} from '../../../../policies/engine/index.js';
import { noteOverload, overloadPassed } from '../../../../policies/engine/overload.js';
import { FRESH_EVIDENCE_MS } from '../../../../policies/engine/params.js';
import { prepareRoute } from '../../../../policies/engine/route.js';
import { upgrade, waitForWindow } from '../../../../policies/engine/route-rules.js';
import { type StepContext, stepContext } from '../../../../policies/engine/route-step.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

const NOW_MS = 100_000;
const IDLE = { replicaUtilisation: 0.1, gatewayUtilisation: 0.2 };

function contextOf(over: Partial<RouteInput>, snapshotOver: Partial<EngineSnapshot> = IDLE): StepContext {
  const s = snapshot([routeInput(over)], snapshotOver);
  const route = prepareRoute(s.routes[0] as RouteInput, s, s.variants.get('m') ?? new Map());
  return stepContext(route, s, diagnose(s), 0);
}

/** Downgraded to the cheapest rung 2 s ago by an overload of `overloadRps` (other load `other`), backing off. */
function afterOverload(overloadRps: number, other = 0): RouteEngineState {
  return settled(0, {
    lastSwitchMs: NOW_MS - 2000,
    lastBreachMs: NOW_MS - 2000,
    ceiling: 3,
    ceilingRps: 100,
    ceilingUntilMs: NOW_MS + 3000,
    backoffMs: 5000,
    overloadRps,
    overloadOtherUtilisation: other,
    overloadAtMs: NOW_MS - 2000,
  });
}

/** The overload's answers still in the 5 s window; the last second's within the target. */
const STALE_BREACH = { observedP99Ms: 40, observedSinceSwitchP99Ms: 40, recentP99Ms: 2 };

interface Case {
  readonly name: string;
  readonly route: Partial<RouteInput>;
  readonly snapshot?: Partial<EngineSnapshot>;
  readonly passed: boolean;
}

const CASES: readonly Case[] = [
  {
    name: 'the route rate that forced it has dropped, the last second meets the target',
    route: { rate: rate(100), ...STALE_BREACH, state: afterOverload(600) },
    passed: true,
  },
  {
    name: 'other load on the replicas has gone (the route rate never changed)',
    route: { rate: rate(100), ...STALE_BREACH, state: afterOverload(100, 0.6) },
    passed: true,
  },
  {
    name: 'the recent peak still holds the overload rate',
    route: { rate: rate(100, { peak: 600, recentPeak: 600 }), ...STALE_BREACH, state: afterOverload(600) },
    passed: false,
  },
  {
    name: 'the rate dropped by less than half',
    route: { rate: rate(350), ...STALE_BREACH, state: afterOverload(600) },
    passed: false,
  },
  {
    name: 'the last second is still late',
    route: { rate: rate(100), ...STALE_BREACH, recentP99Ms: 30, state: afterOverload(600) },
    passed: false,
  },
  {
    name: 'too few answers for a fresh p99',
    route: { rate: rate(100), ...STALE_BREACH, recentP99Ms: Number.NaN, state: afterOverload(600) },
    passed: false,
  },
  {
    name: 'the replicas are still busy',
    route: { rate: rate(100), ...STALE_BREACH, state: afterOverload(600) },
    snapshot: { replicaUtilisation: 0.7 },
    passed: false,
  },
  {
    name: 'other load still there',
    route: { rate: rate(100), ...STALE_BREACH, state: afterOverload(100, 0.6) },
    snapshot: { replicaUtilisation: 0.45 },
    passed: false,
  },
  {
    name: 'other load too small to have caused it',
    route: { rate: rate(100), ...STALE_BREACH, state: afterOverload(100, 0.2) },
    passed: false,
  },
  {
    name: 'no overload noted',
    route: { rate: rate(100), ...STALE_BREACH, state: { ...afterOverload(600), overloadAtMs: -Infinity } },
    passed: false,
  },
];

describe('overload passed, one context at a time', () => {
  for (const c of CASES) {
    test(`${c.passed ? 'passed' : 'not passed'}: ${c.name}`, () => {
      const ctx = contextOf(c.route, c.snapshot ?? IDLE);
      assert.equal(overloadPassed(ctx.route, ctx.snapshot, ctx.loadNow()), c.passed);
      assert.equal(ctx.overloadPassed, c.passed);
      // A passed overload's breach is stale: the window no longer holds the route.
      assert.equal(ctx.observedBreach, !c.passed);
      assert.equal(waitForWindow(ctx) === undefined, c.passed);
    });
  }

  test('passed: straight to the target, past the backoff and the stale record of the current choice', () => {
    const move = upgrade(contextOf({ rate: rate(100), ...STALE_BREACH, state: afterOverload(600) }));
    assert.ok(move !== undefined);
    assert.equal(move.position, 3);
    assert.equal(move.switched, true);
    assert.equal(move.overload, 'upgrade');
    assert.match(move.reason, /^upgrade: the overload has passed \(600 -> 100 req\/s, other load 0% -> \d+%\)/);
  });

  test('not passed: the backoff still holds below where it broke', () => {
    const state = { ...afterOverload(150), upStreak: 3 };
    const move = upgrade(contextOf({ rate: rate(100), ...STALE_BREACH, observedP99Ms: 1, state }));
    assert.ok(move !== undefined);
    assert.ok(move.position < 3, JSON.stringify(move));
  });

  test('fresh evidence lasts FRESH_EVIDENCE_MS after a recovery, until any downgrade', () => {
    const stale = rate(100, { fast: 300, burstiness: 20, recentBurstiness: 1 });
    const fresh = (state: Partial<RouteEngineState>) => {
      const route = contextOf({ rate: stale, state: settled(3, state) }).route;
      return [route.freshEvidence, route.rateNowRps, route.planner.normal.load.burstiness];
    };
    assert.deepEqual(fresh({ recoveredAtMs: NOW_MS - 7000 }), ['recovered', 100, 1]);
    assert.deepEqual(fresh({ recoveredAtMs: NOW_MS - FRESH_EVIDENCE_MS - 1 }), [undefined, 300, 20]);
    assert.deepEqual(fresh({ recoveredAtMs: NOW_MS - 7000, overloadAtMs: NOW_MS - 1000 }), [undefined, 300, 20]);
    assert.deepEqual(fresh({ recoveredAtMs: NOW_MS - 3000, recoveryFailedAtMs: NOW_MS - 1000 }), [undefined, 300, 20]);
  });

  test('an episode keeps its highest load; a later downgrade starts a fresh note', () => {
    const state = { ...INITIAL_STATE };
    noteOverload(state, 1000, { rateRps: 600, otherUtilisation: 0.1 });
    noteOverload(state, 2000, { rateRps: 300, otherUtilisation: 0.5 });
    assert.deepEqual([state.overloadRps, state.overloadOtherUtilisation, state.overloadAtMs], [600, 0.5, 2000]);
    noteOverload(state, 60_000, { rateRps: 300, otherUtilisation: 0.1 });
    assert.deepEqual([state.overloadRps, state.overloadOtherUtilisation, state.overloadAtMs], [300, 0.1, 60_000]);
  });
});

/** What the route's answers look like around one tick of a scripted run. */
interface World {
  readonly rps: number;
  readonly recentPeakRps: number;
  readonly peakRps: number;
  readonly observedP99Ms: number;
  readonly recentP99Ms: number;
  readonly replicaUtilisation: number;
  /** The fast average and the burstiness when they differ from `rps` and 1, and the last second's burstiness. */
  readonly fastRps?: number;
  readonly burstiness?: number;
  readonly recentBurstiness?: number;
  /** The gateway overhead's 5 s p90 and the last second's (1 ms and unknown when absent). */
  readonly overheadMs?: number;
  readonly recentOverheadMs?: number;
}

const TICK_MS = 250;

/** Runs decide() every tick from `fromMs` for `ms`, the world scripted per tick; returns positions and switches. */
function run(state0: RouteEngineState, fromMs: number, ms: number, world: (atMs: number, position: number) => World) {
  let state = state0;
  const positions: { atMs: number; position: number }[] = [];
  const reasons: string[] = [];
  let switches = 0;
  for (let t = fromMs; t < fromMs + ms; t += TICK_MS) {
    const w = world(t, state.position);
    const input = routeInput({
      rate: rate(w.rps, {
        peak: w.peakRps,
        recentPeak: w.recentPeakRps,
        slow: w.rps,
        fast: w.fastRps ?? w.rps,
        burstiness: w.burstiness ?? 1,
        ...(w.recentBurstiness === undefined ? {} : { recentBurstiness: w.recentBurstiness }),
      }),
      observedP99Ms: w.observedP99Ms,
      recentP99Ms: w.recentP99Ms,
      ...(w.overheadMs === undefined ? {} : { overheadMs: w.overheadMs }),
      ...(w.recentOverheadMs === undefined ? {} : { recentOverheadMs: w.recentOverheadMs }),
      state,
    });
    const result = decide(snapshot([input], { nowMs: t, replicaUtilisation: w.replicaUtilisation }));
    const next = result.states.get('r') as RouteEngineState;
    if (next.position !== state.position) {
      switches++;
      reasons.push(result.decisions.get('r')?.reason ?? '');
    }
    state = next;
    positions.push({ atMs: t, position: state.position });
  }
  return { state, positions, switches, reasons };
}

describe('overload passed, through decide', () => {
  test('after 3 s of overload the route is back at the top within 3 s of its end, not one rung per hold', () => {
    // At 100 req/s the top holds; 3 s at 900 req/s (busy replicas, late answers) force it down.
    const start = 100_000;
    const end = start + 3000;
    const world = (t: number): World => {
      const during = t < end;
      return {
        rps: during ? 900 : 100,
        // The peak of the last 2 s and of the last 5 s, the 5 s window's p99 and the last second's.
        recentPeakRps: t < end + 2000 ? 900 : 100,
        peakRps: t < end + 5000 ? 900 : 100,
        observedP99Ms: t < end + 6000 ? 40 : 2,
        recentP99Ms: t < end + 1000 ? 40 : 2,
        replicaUtilisation: during ? 0.95 : 0.1,
      };
    };
    const overload = run(settled(3), start, 3000, world);
    assert.ok(overload.state.position < 3, 'the overload forced a downgrade');
    const after = run(overload.state, end, 20_000, world);
    const back = after.positions.find((p) => p.position === 3);
    assert.ok(back !== undefined, 'back at the top');
    assert.ok(back.atMs - end <= 3000, `back ${back.atMs - end} ms after the overload ended`);
    assert.equal(after.switches, 1, 'one jump, no climb through the rungs');
    assert.match(after.reasons[0] ?? '', /^upgrade: the overload has passed \(900 -> 100 req\/s/);
  });

  test('the fast average and the burstiness still hold the overload: planned on the last seconds, one jump', () => {
    // Clumped arrivals during the overload; afterwards the fast average (1 s) and the burstiness (2 s, from hundreds
    // of times the route's own, clamped at 25) decay while the tick's rate, the recent peak and the last second's
    // burstiness are back to the route's own. The burstiness holds the overload for over 5 s after the recovery.
    const start = 100_000;
    const end = start + 3000;
    const world = (t: number): World => {
      const during = t < end;
      const sinceEndMs = Math.max(0, t - end);
      return {
        rps: during ? 900 : 100,
        fastRps: during ? 900 : 100 + 800 * Math.exp(-sinceEndMs / 1000),
        burstiness: during ? 25 : Math.min(25, 1 + 400 * Math.exp(-sinceEndMs / 2000)),
        recentBurstiness: t < end + 1000 ? 25 : 1,
        recentPeakRps: t < end + 2000 ? 900 : 100,
        peakRps: t < end + 5000 ? 900 : 100,
        observedP99Ms: t < end + 6000 ? 40 : 2,
        recentP99Ms: t < end + 1000 ? 40 : 2,
        replicaUtilisation: during ? 0.95 : 0.1,
      };
    };
    const overload = run(settled(3), start, 3000, world);
    assert.ok(overload.state.position < 3, 'the overload forced a downgrade');
    const after = run(overload.state, end, 30_000, world);
    const back = after.positions.find((p) => p.position === 3);
    assert.ok(back !== undefined, 'back at the top');
    assert.ok(back.atMs - end <= 3000, `back ${back.atMs - end} ms after the overload ended: ${after.reasons}`);
    assert.equal(after.switches, 1, `one jump, then it stays: ${after.reasons.join('\n')}`);
    assert.match(
      after.reasons[0] ?? '',
      /; planned on the last seconds \(100 req\/s, burstiness 1\.0, overhead [\d.]+ ms; the averages still held 208/,
    );
  });

  test("an overhead the overload left in the 5 s window: the last second's lets the top back on the ladder", () => {
    // During the overload the gateway's overhead rose so far that the top no longer fit (its eligibility caps the
    // overhead at half the budget); the 5 s window holds it for seconds after, the last second's is back.
    const start = 100_000;
    const end = start + 3000;
    const world = (t: number): World => {
      const during = t < end;
      return {
        rps: during ? 900 : 100,
        recentPeakRps: t < end + 2000 ? 900 : 100,
        peakRps: t < end + 5000 ? 900 : 100,
        observedP99Ms: t < end + 6000 ? 40 : 2,
        recentP99Ms: t < end + 1000 ? 40 : 2,
        replicaUtilisation: during ? 0.95 : 0.1,
        overheadMs: t < end + 6000 ? 19 : 0.5,
        recentOverheadMs: t < end + 1000 ? 19 : 0.5,
      };
    };
    const overload = run(settled(3), start, 3000, world);
    assert.ok(overload.state.position < 3, 'the overload forced a downgrade');
    const after = run(overload.state, end, 20_000, world);
    const back = after.positions.find((p) => p.position === 3);
    assert.ok(back !== undefined, `back at the top: ${after.reasons.join('\n')}`);
    assert.ok(back.atMs - end <= 3000, `back ${back.atMs - end} ms after the overload ended: ${after.reasons}`);
    assert.equal(after.switches, 1, `one jump, then it stays: ${after.reasons.join('\n')}`);
    assert.match(
      after.reasons[0] ?? '',
      /overhead 0\.50 ms; the averages still held 100 req\/s, burstiness 1\.0, overhead 19\.0 ms\)/,
    );
  });

  test('load that comes back within the trial is seen at once, and the recovery counts as failed', () => {
    const start = 100_000;
    const end = start + 3000;
    const returnsAt = end + 3500;
    const world = (t: number): World => {
      const high = t < end || t >= returnsAt;
      const sinceEndMs = Math.max(0, t - end);
      return {
        rps: high ? 900 : 100,
        fastRps: high ? 900 : 100 + 800 * Math.exp(-sinceEndMs / 1000),
        burstiness: high ? 12 : 1 + 11 * Math.exp(-sinceEndMs / 2000),
        recentBurstiness: high || t < end + 1000 ? 12 : 1,
        recentPeakRps: high || t < end + 2000 ? 900 : 100,
        peakRps: 900,
        observedP99Ms: 40,
        recentP99Ms: high || t < end + 1000 ? 40 : 2,
        replicaUtilisation: high ? 0.95 : 0.1,
      };
    };
    const overload = run(settled(3), start, 3000, world);
    const after = run(overload.state, end, returnsAt + TICK_MS - end, world);
    assert.ok(after.state.position < 3, `down again on the tick the load came back: ${after.reasons.join('\n')}`);
    assert.equal(after.state.recoveryFailedAtMs, returnsAt);
  });

  test('a recovery goes as far as the recent rate allows, and on as it falls, until the top spends the note', () => {
    const start = 100_000;
    const end = start + 3000;
    // The rate falls slowly after the overload (the fast average lags): at first only a lower position holds it.
    const world = (t: number): World => {
      const during = t < end;
      const recent = t < end + 2000 ? 900 : t < end + 3000 ? 500 : 100;
      return {
        rps: during ? 900 : t < end + 3000 ? 400 : 100,
        recentPeakRps: recent,
        peakRps: t < end + 5000 ? 900 : 100,
        observedP99Ms: t < end + 6000 ? 40 : 2,
        recentP99Ms: t < end + 1000 ? 40 : 2,
        replicaUtilisation: during ? 0.95 : 0.1,
      };
    };
    const overload = run(settled(3), start, 3000, world);
    const after = run(overload.state, end, 10_000, world);
    const recoveries = after.reasons.filter((r) => r.startsWith('upgrade: the overload has passed'));
    assert.equal(recoveries.length, 2, after.reasons.join('\n'));
    assert.equal(after.state.position, 3);
    assert.equal(after.state.overloadAtMs, Number.NEGATIVE_INFINITY, 'the note is spent at the top');
  });

  test('at a steady rate whose top keeps breaching, a recovery that fails is not tried again for a while', () => {
    // The top breaches whenever it serves (the replicas read busier than the model explains); below it the last
    // second is fine and the replicas quieter, but the rate never changes.
    const world =
      (lateFromMs: { at: number }) =>
      (t: number, position: number): World => {
        if (position >= 3 && t >= lateFromMs.at + 1000) lateFromMs.at = t;
        const late = t < lateFromMs.at + 1000;
        return {
          rps: 300,
          recentPeakRps: 300,
          peakRps: 300,
          observedP99Ms: t < lateFromMs.at + 6000 ? 40 : 2,
          recentP99Ms: late ? 40 : 2,
          replicaUtilisation: late ? 0.9 : 0.1,
        };
      };
    const withRecovery = run(settled(3), 100_000, 60_000, world({ at: Number.NEGATIVE_INFINITY }));
    const plain = world({ at: Number.NEGATIVE_INFINITY });
    const without = run(settled(3), 100_000, 60_000, (t, position) => ({
      ...plain(t, position),
      recentP99Ms: Number.NaN,
    }));
    const recoveries = withRecovery.reasons.filter((r) => r.startsWith('upgrade: the overload has passed')).length;
    assert.equal(recoveries, 1, withRecovery.reasons.join('\n'));
    assert.ok(
      withRecovery.switches <= without.switches + 2,
      `${withRecovery.switches} switches a minute, ${without.switches} without the recovery`,
    );
  });
});
