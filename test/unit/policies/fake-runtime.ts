// A RuntimePort for policy unit tests: one model with the given variants, service times and backlog the test sets, and
// a submit that records each request and answers it at once (nothing runs).
import { ModelSchema } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { SlogateError } from '../../../core/errors.js';
import type { BatchKnobs } from '../../../runtime/batch-policy.js';
import type { ServiceTable } from '../../../runtime/latency-profile.js';
import type { ModelInfo, VariantInfo } from '../../../runtime/model-repository.js';
import type { RuntimePort } from '../../../runtime/port.js';
import type { SubmitRequest, SubmitResult } from '../../../runtime/types.js';

export class FakeRuntime implements RuntimePort {
  readonly models: Map<string, ModelInfo>;
  readonly submitted: SubmitRequest[] = [];
  readonly knobsSet: { model: string; variant: string; knobs: BatchKnobs }[] = [];
  ready = true;
  readySlots = 1;
  /** Backlog (ms) of the whole queue, and of the requests due no later than a deadline. */
  backlog = { totalMs: 0, beforeMs: (_deadlineAtMs: number) => 0 };
  /** p99 service time at batch 1 per variant (ms). */
  readonly p99Ms = new Map<string, number>();

  /** `variants`: name -> accuracy, most accurate first or not. */
  constructor(model: string, variants: Readonly<Record<string, number>>) {
    const infos = new Map<string, VariantInfo>();
    for (const [name, accuracy] of Object.entries(variants))
      infos.set(name, { model, name, path: `${name}.onnx`, sha256: `sha-${name}`, sizeBytes: 1, accuracy });
    const config = ModelSchema.parse({ variants: Object.fromEntries([...infos.keys()].map((v) => [v, { path: v }])) });
    this.models = new Map([[model, { name: model, config, variants: infos, signature: undefined }]]);
  }

  model(name: string): ModelInfo {
    const m = this.models.get(name);
    if (m === undefined) throw new SlogateError('SLOGATE_ERR_ROUTE_NOT_FOUND', `no model ${name}`);
    return m;
  }

  backlogMs(beforeMs?: number): number {
    return beforeMs === undefined ? this.backlog.totalMs : this.backlog.beforeMs(beforeMs);
  }

  serviceMs(_model: string, variant: string, _rows: number, _q: 'p50' | 'p99'): number {
    return this.p99Ms.get(variant) ?? 0;
  }

  serviceTable(_model: string, _variant: string, _maxRows: number): ServiceTable {
    throw new Error('not used by these tests');
  }

  queueStats() {
    return [];
  }

  knobs(_model: string, _variant: string): BatchKnobs {
    return { maxBatch: 1, maxQueueDelayMs: 0 };
  }

  setKnobs(model: string, variant: string, knobs: BatchKnobs): void {
    this.knobsSet.push({ model, variant, knobs });
  }

  migrate(): number {
    return 0;
  }

  onBatch(): void {}

  submit(req: SubmitRequest): Promise<SubmitResult> {
    this.submitted.push(req);
    return Promise.resolve({
      outputs: [],
      model: req.model,
      variant: req.variant,
      queueMs: 0,
      serviceMs: 1,
      computeMs: 1,
      inferMs: 1,
      batchRows: req.rows,
      replicaId: 'fake',
    });
  }
}

/** A decision for a route with the given mix; everything else neutral (no admission limit, a finite prediction). */
export function decision(route: string, variants: Record<string, number>, extra: Partial<Decision> = {}): Decision {
  return {
    route,
    model: 'm',
    variants: Object.entries(variants).map(([variant, share]) => ({ variant, share })),
    maxBatch: 1,
    maxQueueDelayMs: 0,
    admissionRps: Number.POSITIVE_INFINITY,
    predictedP99Ms: 10,
    accuracy: Number.NaN,
    costPerMillion: 0,
    reason: 'test',
    inputs: {
      rateFast: 0,
      rateSlow: 0,
      burstiness: 1,
      queuedRows: 0,
      observedP99Ms: Number.NaN,
      observedSinceSwitchP99Ms: Number.NaN,
      capacityRps: 0,
      replicas: 1,
      overheadMs: 0,
      correction: 1,
      missRiskScale: 1,
      gatewayUtilisation: 0,
      replicaUtilisation: 0,
    },
    atMs: 0,
    at: '',
    ...extra,
  };
}
