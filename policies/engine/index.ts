// The tradeoff engine's public surface: decide() and the types and constants its callers and tests use.
export { nextCorrection } from './correction.js';
export { decide } from './decide.js';
export { buildLadder, GRID } from './ladder.js';
export {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  BREACH_COOLDOWN_MS,
  CEILING_RATE_SHARE,
  DEFAULT_ENGINE_PARAMS,
  type EngineParams,
  GATEWAY_SATURATED,
  PROBE_RPS,
  PROBE_SHARE,
  REPLICA_BUSY,
  SURGE_OVER_SLOW_RATE,
} from './params.js';
export {
  calibrateRisk,
  missRisk,
  RISK_PRIOR,
  RISK_SCALE_MAX,
  RISK_SCALE_MIN,
  RISK_TAU_MS,
  type RiskCalibration,
} from './risk.js';
export {
  type EngineResult,
  type EngineSnapshot,
  INITIAL_STATE,
  type RouteEngineState,
  type RouteInput,
  type RouteKind,
} from './types.js';
