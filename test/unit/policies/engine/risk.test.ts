// Miss risk and its calibration against the misses a route saw.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  calibrateRisk,
  DEFAULT_ENGINE_PARAMS,
  decide,
  INITIAL_STATE,
  missRisk,
  RISK_PRIOR,
  RISK_SCALE_MAX,
  RISK_SCALE_MIN,
  RISK_TAU_MS,
} from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('miss risk', () => {
  test('miss risk grows as the slack shrinks and as utilisation rises, and is certain for an unbounded plan', () => {
    const P = DEFAULT_ENGINE_PARAMS;
    assert.ok(missRisk(5, 0.2, 25, P) < missRisk(15, 0.2, 25, P), 'less slack, more risk');
    assert.ok(missRisk(10, 0.2, 25, P) < missRisk(10, 0.7, 25, P), 'busier, more risk');
    // The closed form: share x exp(-slack / mean) / (1 - rho).
    assert.ok(Math.abs(missRisk(10, 0.5, 25, P) - (P.stallShare * Math.exp(-15 / P.stallMeanMs)) / 0.5) < 1e-12);
    assert.equal(missRisk(Number.POSITIVE_INFINITY, 0.1, 25, P), 1);
  });

  test('calibrateRisk: misses over what the stall model expected scale it up, fewer leave it as calibrated, both decay', () => {
    const fresh = { missesSeen: 0, missesExpected: 0, riskAtMs: Number.NaN, riskPerRequest: 0.002 };
    // 10,000 answers at 0.2% expected: 20 misses expected, 80 seen.
    const worse = calibrateRisk(fresh, { answered: 10_000, missed: 80 }, 0, true);
    assert.equal(worse.missesExpected, 20);
    assert.ok(Math.abs(worse.scale - (80 + RISK_PRIOR) / (20 + RISK_PRIOR)) < 1e-12);
    // Fewer misses than expected: (2 + 3) / (20 + 3) = 0.22, but the gateway undercounts clients' misses, so the
    // scale stays at its floor, 1 (the model as calibrated).
    const better = calibrateRisk(fresh, { answered: 10_000, missed: 2 }, 0, true);
    assert.equal(RISK_SCALE_MIN, 1);
    assert.equal(better.scale, RISK_SCALE_MIN);
    // Nothing learnt (a surge in the window): the sums only decay, by e after RISK_TAU_MS.
    const later = calibrateRisk(
      { ...worse, riskAtMs: 0, riskPerRequest: 0.002 },
      { answered: 10_000, missed: 500 },
      RISK_TAU_MS,
      false,
    );
    assert.ok(Math.abs(later.missesSeen - 80 / Math.E) < 1e-9 && Math.abs(later.missesExpected - 20 / Math.E) < 1e-9);
    // Bounded.
    assert.equal(calibrateRisk(fresh, { answered: 100, missed: 10_000 }, 0, true).scale, RISK_SCALE_MAX);
  });

  test('the engine weighs upgrades with the stall model its own misses calibrated', () => {
    // With the default stall model, 75% large at 500 req/s from 2.5 is worth its risk (see above); on a route that
    // saw four times the misses the model expected, it is not, and the decision says by how much the model was scaled.
    const missy = settled(2.5, {
      upStreak: 3,
      missesSeen: 4 * 100 + 3 * RISK_PRIOR,
      missesExpected: 100,
      riskAtMs: 100_000,
    });
    const r = decide(snapshot([routeInput({ rate: rate(500), state: missy })]));
    assert.equal(r.states.get('r')?.position, 2.5, r.decisions.get('r')?.reason);
    assert.match(r.decisions.get('r')?.reason ?? '', /not worth its risk/);
    assert.ok(Math.abs((r.decisions.get('r')?.inputs.missRiskScale ?? 0) - 4) < 1e-9);
    // The next state carries the decision's own expected miss share, for the next tick's check.
    const risk = r.states.get('r')?.riskPerRequest ?? 0;
    assert.ok(risk > 0 && risk < 0.01, `risk per request ${risk}`);
    // Misses since the last tick count against the model; not the misses of a route nothing could serve (its
    // probes: an empty ladder in the state), nor those of a surge.
    const missed = { answered: 1000, missed: 100 };
    const learnt = decide(
      snapshot([routeInput({ rate: rate(300), state: settled(3, { riskAtMs: 100_000 }), outcomes: missed })]),
    );
    assert.ok((learnt.decisions.get('r')?.inputs.missRiskScale ?? 1) > 10);
    const probes = decide(
      snapshot([
        routeInput({ rate: rate(300), state: { ...INITIAL_STATE, ladder: [], riskAtMs: 100_000 }, outcomes: missed }),
      ]),
    );
    assert.equal(probes.decisions.get('r')?.inputs.missRiskScale, 1);
    const surge = decide(
      snapshot([
        routeInput({
          rate: rate(900, { slow: 300, peak: 900 }),
          state: settled(3, { riskAtMs: 100_000 }),
          outcomes: missed,
        }),
      ]),
    );
    assert.equal(surge.decisions.get('r')?.inputs.missRiskScale, 1);
  });
});
