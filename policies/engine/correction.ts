// The learned latency correction: a multiplier (1-3) on predicted latency, from observed vs predicted p99
// (docs/engine.md, "Calibration").
import { GATEWAY_SATURATED, REPLICA_BUSY } from './params.js';
import type { EngineSnapshot, RouteInput } from './types.js';

/**
 * Updates the learned correction from observed vs predicted p99 (only when observations exist). `predictedWith` is
 * the correction the prediction was made with (an earlier tick's): the one the observation implies is that times
 * the ratio. Scaling the current correction instead would compound it, tick after tick, against the same prediction.
 */
export function nextCorrection(
  current: number,
  observedMs: number,
  predictedMs: number,
  predictedWith = current,
): number {
  if (!Number.isFinite(observedMs) || !Number.isFinite(predictedMs) || predictedMs <= 0)
    return Math.max(1, current * 0.98);
  const ratio = observedMs / predictedMs;
  if (ratio > 1.1) return Math.min(3, 0.5 * current + 0.5 * Math.min(3, predictedWith * ratio));
  if (ratio < 0.8) return Math.max(1, current * 0.95);
  return current;
}

/**
 * This tick's correction. It is learnt only while the replicas carry real load, the event loop is not saturated and no
 * surge is in the latency window: a stall elsewhere on the machine, or the queue a surge builds before the engine
 * reacts, says nothing about the queueing model. Otherwise it decays.
 */
export function learnCorrection(input: RouteInput, snapshot: EngineSnapshot, surgeInWindow: boolean): number {
  const { state, windowPrediction } = input;
  const learns =
    snapshot.replicaUtilisation >= REPLICA_BUSY && snapshot.gatewayUtilisation < GATEWAY_SATURATED && !surgeInWindow;
  if (!learns) return Math.max(1, state.correction * 0.98);
  return nextCorrection(state.correction, input.observedP99Ms, windowPrediction.p99Ms, windowPrediction.correction);
}
