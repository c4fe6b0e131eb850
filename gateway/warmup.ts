// Warms the request path before the server listens: V8 compiles handlers, codecs, router and scheduler lazily, and a
// cold first second reads to the engine as a latency violation. Synthetic requests go through the real handlers
// (inject) to every route and variant while no socket exists, so they are counted nowhere (SLO, request log, traces);
// their batches do count as service-time evidence, so a cold start's first batches never set the correction alone.
// The measurements behind this are in BENCHMARKS.md ("Cold start into full load").
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { ModelSignature, TensorSpec } from '../core/types.js';
import type { RouteState } from '../policies/router.js';
import { NO_RECORDS } from '../policies/slo-recorder.js';
import { allocate, binaryData, jsonDataString } from '../runtime/tensor.js';
import type { RequestPath } from './v2/infer-service.js';

/** Long enough for any answer: a drop would leave cold the path the warm-up is there to run. */
const WARMUP_DEADLINE_MS = 30_000;

/**
 * The warm-up's request path: every request admitted without being counted as an arrival, with a deadline it cannot
 * miss, past the response cache (zeros must run the real path and not fill it), no outcome recorded, and out of the
 * request log and traces.
 */
export const WARMUP_PATH: RequestPath = {
  gate: {
    check: (q) => ({
      admitted: true,
      deadlineAtMs: q.arrivalMs + WARMUP_DEADLINE_MS,
      priority: q.priority ?? q.route.config.priority,
      useCache: false,
    }),
  },
  recorder: NO_RECORDS,
  observed: false,
};

export interface WarmupOptions {
  /** Requests in all (0: no warm-up). */
  readonly requests: number;
  /** Stops sending after this long, whatever is left. */
  readonly maxMs: number;
  /** Requests in flight at once (enough to form batches of several sizes). */
  readonly concurrency: number;
}

export interface WarmupReport {
  readonly requests: number;
  /** Answers other than 200 (a model that refuses zero inputs, a replica that failed). */
  readonly failed: number;
  readonly ms: number;
}

export interface WarmupBody {
  readonly payload: Buffer;
  readonly headers: Record<string, string>;
}

/**
 * A one-row request of zeros for a signature (variable dimensions become 1; BYTES elements empty), in the binary
 * tensor extension (outputs asked for in binary) and in plain JSON.
 */
export function warmupBodies(signature: ModelSignature): { binary: WarmupBody; json: WarmupBody } {
  const tensors = signature.inputs.map((spec) => zeros(spec));
  // The data arrays as literal JSON (exact for 64-bit integers, which JSON.stringify cannot write).
  const jsonInputs = tensors.map(
    (t) =>
      `{"name":${JSON.stringify(t.name)},"shape":${JSON.stringify(t.shape)},"datatype":"${t.datatype}","data":${jsonDataString(t.datatype, t.data)}}`,
  );
  const parts = tensors.map((t) => binaryData(t.datatype, t.data));
  const header = Buffer.from(
    JSON.stringify({
      inputs: tensors.map((t, i) => ({
        name: t.name,
        shape: t.shape,
        datatype: t.datatype,
        parameters: { binary_data_size: parts[i]?.byteLength ?? 0 },
      })),
      parameters: { binary_data_output: true },
    }),
  );
  return {
    binary: {
      payload: Buffer.concat([header, ...parts]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.byteLength),
      },
    },
    json: {
      payload: Buffer.from(`{"inputs":[${jsonInputs.join(',')}]}`),
      headers: { 'content-type': 'application/json' },
    },
  };
}

function zeros(spec: TensorSpec) {
  const shape = spec.shape.map((d) => (d < 0 ? 1 : d));
  const n = shape.reduce((a, b) => a * b, 1);
  const data =
    spec.datatype === 'BYTES' ? Array.from({ length: n }, () => new Uint8Array(0)) : allocate(spec.datatype, n);
  return { name: spec.name, datatype: spec.datatype, shape, data };
}

/** What the warm-up reads of a route. */
export type WarmupRoute = Pick<RouteState, 'name' | 'allowed'> & { readonly model: { readonly name: string } };

export interface Target {
  readonly url: string;
  readonly body: WarmupBody;
}

/**
 * The warm-up's request mix: for every route with a signature, its own URL (the path real traffic takes: the
 * route's decision, or its most accurate variant before the first one) and each allowed variant's pinned URL, each
 * in binary (three in four) and JSON.
 */
export function warmupTargets(
  routes: Iterable<WarmupRoute>,
  signatureOf: (model: string) => ModelSignature | undefined,
): Target[] {
  const out: Target[] = [];
  for (const r of routes) {
    const sig = signatureOf(r.model.name);
    if (sig === undefined) continue;
    const { binary, json } = warmupBodies(sig);
    const base = `/v2/models/${encodeURIComponent(r.name)}`;
    for (const url of [`${base}/infer`, ...r.allowed.map((v) => `${base}/versions/${encodeURIComponent(v)}/infer`)]) {
      out.push({ url, body: binary }, { url, body: binary }, { url, body: binary }, { url, body: json });
    }
  }
  return out;
}

/** Sends the warm-up through `app.inject`, round-robin over the targets, `concurrency` at a time. */
export async function warmUp(
  app: FastifyInstance,
  targets: readonly Target[],
  options: WarmupOptions,
  clock: Clock,
): Promise<WarmupReport> {
  const started = clock.now();
  if (options.requests <= 0 || targets.length === 0) return { requests: 0, failed: 0, ms: 0 };
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < options.requests && clock.now() - started < options.maxMs) {
      const t = targets[next++ % targets.length] as Target;
      const res = await app.inject({ method: 'POST', url: t.url, headers: t.body.headers, payload: t.body.payload });
      if (res.statusCode !== 200) failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, lane));
  return { requests: next, failed, ms: clock.now() - started };
}
