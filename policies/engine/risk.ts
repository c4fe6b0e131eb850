// Miss risk: the share of requests a plan loses to the host's stalls, and its calibration against the misses each
// route saw (docs/engine.md, "Miss risk" and "Risk calibration").
import type { EngineParams } from './params.js';
import type { RouteEngineState } from './types.js';

/** The stall model of missRisk(). */
export type StallModel = Pick<EngineParams, 'stallShare' | 'stallMeanMs'>;

/**
 * Calibration: misses decay with RISK_TAU_MS; the scale (seen + prior) / (expected + prior) stays within its bounds,
 * never under 1: the gateway counts fewer misses than clients, whose counts the model was calibrated on.
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
 * Scales the stall model by the misses seen against those the decisions in force expected, both decayed. `learn` is
 * false while a surge is in the window: those misses come from the reaction to it, not from stalls.
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
