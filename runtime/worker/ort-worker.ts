// The only importer of onnxruntime-node: one worker thread = one replica holding a session per variant.
// Inference runs here because onnxruntime-node executes session.run synchronously on its calling thread.
import { performance } from 'node:perf_hooks';
import { workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { Piscina } from 'piscina';
import type { TensorSpec, TensorStorage, V2Datatype } from '../../core/types.js';
import type {
  DescribeResult,
  RunTask,
  SessionDescription,
  WireTensor,
  WorkerInit,
  WorkerResult,
  WorkerTask,
} from './messages.js';
import { ORT_TO_V2, V2_TO_ORT } from './messages.js';

const init = workerData as WorkerInit;
const sessions = new Map<string, ort.InferenceSession>();
let provider = 'cpu';
let providerWarning: string | undefined;

function sessionOptions(useCuda: boolean, deviceId: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: useCuda ? [{ name: 'cuda', deviceId }] : ['cpu'],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Idle spinning burns a core and causes 10-40 ms p99 spikes when workers share cores with the gateway.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

async function createSession(path: string): Promise<ort.InferenceSession> {
  const wantCuda = init.device.startsWith('cuda');
  const deviceId = wantCuda && init.device.includes(':') ? Number(init.device.split(':')[1]) : 0;
  if (wantCuda && providerWarning === undefined) {
    try {
      const s = await ort.InferenceSession.create(path, sessionOptions(true, deviceId));
      provider = 'cuda';
      return s;
    } catch (err) {
      // onnxruntime-node treats a missing CUDA provider as a hard error, not a fallback: fall back ourselves.
      providerWarning = `CUDA execution provider unavailable (${(err as Error).message.split('\n')[0]}); running on CPU`;
      provider = 'cpu';
    }
  }
  return ort.InferenceSession.create(path, sessionOptions(provider === 'cuda', deviceId));
}

function toSpec(meta: ort.InferenceSession.ValueMetadata, where: string): TensorSpec {
  if (!meta.isTensor)
    throw new Error(`${where} '${meta.name}' is not a tensor; slogate serves tensor inputs and outputs only`);
  const datatype = ORT_TO_V2[meta.type];
  if (datatype === undefined)
    throw new Error(`${where} '${meta.name}' has type ${meta.type}, which slogate cannot serve`);
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
}

function describe(): DescribeResult {
  const out: SessionDescription[] = [];
  for (const v of init.variants) {
    const s = sessions.get(key(v.model, v.variant)) as ort.InferenceSession;
    out.push({
      model: v.model,
      variant: v.variant,
      inputs: s.inputMetadata.map((m) => toSpec(m, `${v.path}: input`)),
      outputs: s.outputMetadata.map((m) => toSpec(m, `${v.path}: output`)),
    });
  }
  const result: DescribeResult = { ok: true, kind: 'describe', provider, sessions: out };
  if (providerWarning !== undefined) result.providerWarning = providerWarning;
  return result;
}

function toOrt(t: WireTensor): ort.Tensor {
  const type = V2_TO_ORT[t.datatype];
  if (type === undefined) throw new Error(`datatype ${t.datatype} is not supported by onnxruntime`);
  if (t.datatype === 'BYTES') {
    const dec = new TextDecoder();
    return new ort.Tensor(
      'string',
      (t.data as Uint8Array[]).map((b) => dec.decode(b)),
      t.shape,
    );
  }
  return new ort.Tensor(type as 'float32', t.data as Float32Array, t.shape);
}

function fromOrt(name: string, value: ort.OnnxValue): WireTensor {
  const t = value as ort.Tensor;
  const datatype: V2Datatype | undefined = ORT_TO_V2[t.type];
  if (datatype === undefined) throw new Error(`output '${name}' has type ${t.type}, which slogate cannot serve`);
  let data: TensorStorage;
  if (datatype === 'BYTES') {
    const enc = new TextEncoder();
    data = (t.data as string[]).map((s) => enc.encode(s));
  } else {
    data = t.data as Float32Array;
  }
  return { name, datatype, shape: [...t.dims], data };
}

async function run(task: RunTask): Promise<WorkerResult> {
  const start = performance.now();
  const session = sessions.get(key(task.model, task.variant));
  if (session === undefined)
    return {
      ok: false,
      error: {
        code: 'SLOGATE_ERR_VARIANT_NOT_FOUND',
        message: `replica ${init.replicaId} has no session for ${task.model}/${task.variant}`,
      },
    };
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of task.inputs) feeds[t.name] = toOrt(t);
  const t0 = performance.now();
  let results: ort.InferenceSession.ReturnType;
  try {
    results = task.outputs === undefined ? await session.run(feeds) : await session.run(feeds, task.outputs);
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 'SLOGATE_ERR_INFERENCE_FAILED',
        message: `${task.model}/${task.variant}: ${(err as Error).message}`,
      },
    };
  }
  const inferMs = performance.now() - t0;
  const outputs = Object.entries(results).map(([name, v]) => fromOrt(name, v));
  return { ok: true, kind: 'run', outputs, inferMs, workerMs: performance.now() - start };
}

/** Wraps a result so piscina transfers (not copies) the output buffers back. */
function movable(result: WorkerResult): unknown {
  if (!result.ok || result.kind !== 'run') return result;
  const buffers = new Set<ArrayBuffer>();
  for (const o of result.outputs) {
    if (!Array.isArray(o.data)) {
      const d = o.data as Float32Array;
      // Only whole, exclusively owned buffers can move; anything else is copied by the structured clone.
      if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer)
        buffers.add(d.buffer);
    }
  }
  if (buffers.size === 0) return result;
  return Piscina.move({
    [Piscina.transferableSymbol]: [...buffers],
    [Piscina.valueSymbol]: result,
  } as unknown as Parameters<typeof Piscina.move>[0]);
}

function key(model: string, variant: string): string {
  return `${model}\u0000${variant}`;
}

async function load(): Promise<(task: WorkerTask) => Promise<unknown>> {
  for (const v of init.variants) {
    try {
      sessions.set(key(v.model, v.variant), await createSession(v.path));
    } catch (err) {
      // Answered, not thrown: a worker whose module fails makes piscina restart it at once and may leave the task
      // waiting; the replica reads this answer, destroys the worker and retries later.
      const error = {
        code: 'SLOGATE_ERR_MODEL_LOAD' as const,
        message: `cannot load ${v.model}/${v.variant} from ${v.path}: ${(err as Error).message}`,
      };
      return async () => ({ ok: false, error }) satisfies WorkerResult;
    }
  }
  return async (task: WorkerTask) => {
    try {
      if (task.kind === 'describe') return describe();
      return movable(await run(task));
    } catch (err) {
      return {
        ok: false,
        error: { code: 'SLOGATE_ERR_INTERNAL', message: `worker: ${(err as Error).stack ?? String(err)}` },
      } satisfies WorkerResult;
    }
  };
}

export default load();
