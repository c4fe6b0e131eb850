// Miss risk: the share of requests a plan loses to the host's stalls, and its calibration against the misses each
// route saw (docs/engine.md, "Miss risk" and "Risk calibration").
import type { EngineParams } from './params.js';
import type { RouteEngineState } from './types.js';

/** The stall model of missRisk(). */
export type StallModel = Pick<EngineParams, 'stallShare' | 'stallMeanMs'>;

/**
 * Miss-risk calibration: seen and expected misses decay with this time constant; the scale on the stall model is
 * (seen + prior) / (expected + prior), within these bounds. The prior keeps a few misses from moving it much. The
 * scale never goes under 1: the gateway sees only its own share of a request's latency, so it counts fewer misses
 * than clients do, against whose counts the stall model was calibrated.
 */
export const RISK_TAU_MS = 30_000;
export const RISK_PRIOR = 3;
export const RISK_SCALE_MIN = 1;
export const RISK_SCALE_MAX = 20;

/**
 * Expected share of requests that miss the target under a plan. Stalls of exponential length (mean m) taking a share f
 * of the time delay the requests that arrive during them; those with less slack (target minus the predicted p99) than
 * the delay miss: f x exp(-slack / m) / (1 - rho). It grows fast near the budget and near saturation.
 */
export function missRisk(predictedP99Ms: number, utilisation: number, targetMs: number, stalls: StallModel): number {
  if (!Number.isFinite(predictedP99Ms) || utilisation >= 1) return 1;
  const slackMs = Math.max(0, targetMs - predictedP99Ms);
  return Math.min(1, (stalls.stallShare * Math.exp(-slackMs / stalls.stallMeanMs)) / Math.max(0.02, 1 - utilisation));
}

/** Decayed misses seen and expected, and the scale they put on the stall model. */
export interface RiskCalibration {
  readonly missesSeen: number;
  readonly missesExpected: number;
  readonly scale: number;
}

/**
 * Checks the stall model against what happened: the misses seen since the last decision against the ones the
 * decision in force expected (its miss share x the requests answered), both decayed over RISK_TAU_MS. Their ratio
 * scales the stall model for this route, never below RISK_SCALE_MIN. `learn` is false while a surge is in the window
 * (those misses come from the reaction to the surge, which the stall model does not describe).
 */
export function calibrateRisk(
  state: Pick<RouteEngineState, 'missesSeen' | 'missesExpected' | 'riskAtMs' | 'riskPerRequest'>,
  outcomes: { readonly answered: number; readonly missed: number },
  nowMs: number,
  learn: boolean,
): RiskCalibration {
  const decay = Number.isFinite(state.riskAtMs) ? Math.exp(-Math.max(0, nowMs - state.riskAtMs) / RISK_TAU_MS) : 1;
  let seen = state.missesSeen * decay;
  let expected = state.missesExpected * decay;
  if (learn) {
    seen += outcomes.missed;
    expected += outcomes.answered * state.riskPerRequest;
  }
  const scale = Math.min(RISK_SCALE_MAX, Math.max(RISK_SCALE_MIN, (seen + RISK_PRIOR) / (expected + RISK_PRIOR)));
  return { missesSeen: seen, missesExpected: expected, scale };
}
