// The engine's tunable parameters (the first four come from `engine.*` in the config) and its fixed thresholds.
// What each one does: docs/engine.md.

export interface EngineParams {
  readonly margin: number;
  readonly maxUtilisation: number;
  readonly upgradeTicks: number;
  readonly upgradeHoldMs: number;
  /** Stricter planning for upgrades. */
  readonly upgradeMargin: number;
  readonly upgradeUtilisation: number;
  /** Ladder step of one upgrade (0.5 = half a rung: a 50/50 mix, then the full rung). */
  readonly upgradeStep: number;
  /**
   * Miss risk: the host stalls (GC, the OS, neighbours) for this share of the time, in stalls of this mean length
   * (exponential). See missRisk().
   */
  readonly stallShare: number;
  readonly stallMeanMs: number;
  /** A move for expected effective accuracy alone must gain at least this much (0.0005 = 0.05 points). */
  readonly riskHysteresis: number;
}

export const DEFAULT_ENGINE_PARAMS: EngineParams = {
  margin: 0.1,
  maxUtilisation: 0.8,
  upgradeTicks: 3,
  upgradeHoldMs: 3000,
  upgradeMargin: 0.25,
  upgradeUtilisation: 0.6,
  upgradeStep: 0.5,
  stallShare: 0.001,
  stallMeanMs: 15,
  riskHysteresis: 0.0005,
};

/** Replica utilisation from which a latency breach is blamed on the replicas (a cheaper variant helps). */
export const REPLICA_BUSY = 0.5;
/** Event-loop utilisation above which (with replicas not busy) the gateway, not the model, is the bottleneck. */
export const GATEWAY_SATURATED = 0.85;

/** A route nothing can serve still admits this much, to keep measuring. */
export const PROBE_RPS = 2;
export const PROBE_SHARE = 0.02;

/** An observed breach is acted on at most this often: the p99 window needs time to show an action's effect. */
export const BREACH_COOLDOWN_MS = 1000;
/** Upgrade backoff after a breach-driven downgrade: first hold, and its cap as repeats double it. */
export const BACKOFF_BASE_MS = 5000;
export const BACKOFF_MAX_MS = 60_000;
/**
 * The load that forced a downgrade has gone when it is at most this share of what it was (the route's rate, or the
 * replicas' utilisation by everything else, that from at least OTHER_LOAD_MATTERS).
 */
export const OVERLOAD_GONE_SHARE = 0.5;
export const OTHER_LOAD_MATTERS = 0.25;
/** Downgrades within this long of the last one belong to the same overload (its load is the highest of them). */
export const OVERLOAD_EPISODE_MS = 5000;
/**
 * A downgrade within RECOVERY_TRIAL_MS of a recovery proves it wrong (the cause had not gone, whatever the measures
 * said): the next RECOVERY_BLOCK_MS climb the slow way, under the backoff.
 */
export const RECOVERY_TRIAL_MS = 5000;
export const RECOVERY_BLOCK_MS = 60_000;
/**
 * After a recovery from an overload, the route plans on fresh evidence for this long (unless the recovery failed):
 * the averages can hold a clumped overload that long (the burstiness forgets a factor e every 2 s, and an overload's
 * can be hundreds of times the route's own, clamped at 25).
 */
export const FRESH_EVIDENCE_MS = 15_000;
/** The backoff ceiling applies while the rate is at least this share of the rate it breached at. */
export const CEILING_RATE_SHARE = 0.8;
/**
 * A rate over this multiple of the route's slow (5 s) average is a surge: downgrades then land with upgrade headroom,
 * and neither the latency correction nor the risk calibration learns while one is in the latency window.
 */
export const SURGE_OVER_SLOW_RATE = 1.5;
