// What the tradeoff engine decides for a route, as plain data: read by the router on every request, shown by the
// admin API and the status page, recorded in the decision history.

export interface VariantShare {
  readonly variant: string;
  /** Fraction of the route's admitted traffic (shares of a decision sum to 1). */
  readonly share: number;
}

export interface DecisionInputs {
  /** Arrival rate, requests/s: fast and slow moving averages. */
  readonly rateFast: number;
  readonly rateSlow: number;
  /** Index of dispersion of arrival counts in 50 ms bins (1 = Poisson; larger = burstier). */
  readonly burstiness: number;
  readonly queuedRows: number;
  /** Observed p99 over the recent window (ms), NaN with too few samples. */
  readonly observedP99Ms: number;
  /** Observed p99 of the answers since the route's last switch (ms; NaN with too few, or when the switch is older). */
  readonly observedSinceSwitchP99Ms: number;
  /** Capacity of the chosen plan, requests/s, at maxUtilisation. */
  readonly capacityRps: number;
  readonly replicas: number;
  /** Gateway overhead (ms, high quantile) and the learned correction on predicted latency. */
  readonly overheadMs: number;
  readonly correction: number;
  /** Scale on the engine's stall model learnt from the route's misses (1 = as calibrated; see calibrateRisk). */
  readonly missRiskScale: number;
  /** Measured utilisation of the gateway's event loop and of the replicas over the last tick (0..1). */
  readonly gatewayUtilisation: number;
  readonly replicaUtilisation: number;
}

export interface Decision {
  readonly route: string;
  readonly model: string;
  readonly variants: readonly VariantShare[];
  readonly maxBatch: number;
  readonly maxQueueDelayMs: number;
  /** Admitted requests per second (token bucket rate); Infinity = no limit. */
  readonly admissionRps: number;
  /** Predicted p99 end-to-end latency of this plan (ms). */
  readonly predictedP99Ms: number;
  /** Share-weighted accuracy of the mix (NaN when unknown). */
  readonly accuracy: number;
  /** Share-weighted cost per million inferences (pricing units). */
  readonly costPerMillion: number;
  /** The route's fastest eligible variant: queued requests that would miss their deadline move there. */
  readonly fallbackVariant?: string | undefined;
  /** One line on why, for humans. */
  readonly reason: string;
  readonly inputs: DecisionInputs;
  /** When it was made (clock ms) and, for the history, wall-clock time. */
  readonly atMs: number;
  readonly at: string;
}
