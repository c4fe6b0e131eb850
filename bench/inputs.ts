// Request bodies per route, encoded once before the run (the sender only picks one): real eval samples, so every
// answer can be scored against its label, or random tensors shaped from the model's metadata (GET /v2/models/{m}).
import { request } from 'undici';
import { mulberry32 } from '../core/prng.js';
import type { EvalSet } from '../runtime/eval-set.js';
import { evalBody, type Protocol, randomBody, type V2Body } from './v2-requests.js';
import type { Scoring } from './v2-response.js';

export interface TensorMeta {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions?: readonly string[];
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
}

export interface RouteInputs {
  readonly route: string;
  /** POST path of the route's infer endpoint. */
  readonly path: string;
  readonly bodies: readonly V2Body[];
  /** Eval label of each body (-1: unknown). */
  readonly labels: Int16Array;
  readonly scoring: Scoring | undefined;
}

export interface InputOptions {
  readonly protocol: Protocol;
  readonly source: 'eval' | 'random';
  readonly evalSet?: EvalSet | undefined;
  /** Distinct bodies to encode (cycled through). */
  readonly count: number;
  readonly seed: number;
  /** False: binary requests ask for JSON outputs (the closed loop reads answers as text). */
  readonly binaryOutputs: boolean;
}

export async function fetchMetadata(url: string, route: string): Promise<ModelMetadata> {
  const res = await request(`${url}/v2/models/${encodeURIComponent(route)}`, {
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200)
    throw new Error(`GET /v2/models/${route} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const doc = JSON.parse(text) as Partial<ModelMetadata>;
  if (!Array.isArray(doc.inputs) || !Array.isArray(doc.outputs))
    throw new Error(`GET /v2/models/${route}: metadata without inputs/outputs`);
  return doc as ModelMetadata;
}

/** What to read from answers: the `label` output when the model has one, else the argmax of its first output. */
export function scoringFor(meta: ModelMetadata): Scoring | undefined {
  if (meta.outputs.some((o) => o.name === 'label')) return { output: 'label', mode: 'label' };
  const first = meta.outputs[0];
  return first === undefined ? undefined : { output: first.name, mode: 'argmax' };
}

export function buildInputs(route: string, meta: ModelMetadata, o: InputOptions): RouteInputs {
  if (meta.inputs.length !== 1)
    throw new Error(`route ${route}: bench drives single-input models; this one has ${meta.inputs.length} inputs`);
  const input = meta.inputs[0] as TensorMeta;
  if (input.datatype !== 'FP32')
    throw new Error(`route ${route}: input ${input.name} is ${input.datatype}; bench generates FP32 inputs only`);
  const scoring = scoringFor(meta);
  const outputs = scoring === undefined ? [] : [scoring.output];
  const path = `/v2/models/${encodeURIComponent(route)}/infer`;
  if (o.source === 'eval') {
    const set = o.evalSet;
    if (set === undefined) throw new Error('eval inputs need an eval set (--eval FILE)');
    const features = input.shape.slice(1).reduce((a, b) => a * (b < 0 ? 1 : b), 1);
    if (input.shape.slice(1).some((d) => d < 0) || features !== set.features) {
      throw new Error(
        `route ${route}: input ${input.name}[${input.shape.join(',')}] does not take the eval set's ${set.features} features per sample; use --inputs random or another --eval`,
      );
    }
    const n = Math.min(o.count, set.count);
    const bodies = Array.from({ length: n }, (_, i) =>
      evalBody(set, input, i, 1, o.protocol, outputs, o.binaryOutputs),
    );
    return { route, path, bodies, labels: Int16Array.from(bodies, (b) => b.labels?.[0] ?? -1), scoring };
  }
  const rand = mulberry32(o.seed);
  const bodies = Array.from({ length: Math.min(o.count, 64) }, () =>
    randomBody(input, 1, o.protocol, rand, outputs, o.binaryOutputs),
  );
  return { route, path, bodies, labels: new Int16Array(bodies.length).fill(-1), scoring: undefined };
}
