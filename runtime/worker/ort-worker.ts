// One worker thread = one replica holding a session per variant revision. Inference runs here because
// onnxruntime-node executes session.run synchronously on its calling thread (only batches cheaper than the hand-off
// run on the main thread: runtime/inline-runner.ts). Sessions are
// reference counted: a revision replaced as active is released only after the last batch running on it.
import { performance } from 'node:perf_hooks';
import { type MessagePort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { Piscina } from 'piscina';
import type { TensorSpec } from '../../core/types.js';
import type {
  ChannelReply,
  ChannelRequest,
  DescribeResult,
  LoadTask,
  RevisionDone,
  RevisionTask,
  RunTask,
  SessionDescription,
  WorkerInit,
  WorkerResult,
  WorkerTask,
} from './messages.js';
import { ORT_TO_V2 } from './messages.js';
import { fromOrt, sessionOptions, toOrt } from './ort-tensors.js';

const init = workerData as WorkerInit;

interface Held {
  readonly session: ort.InferenceSession;
  /** Batches running on it now. */
  runs: number;
  /** No longer active (or a rejected candidate): released when `runs` reaches 0. */
  retired: boolean;
}

/** Loaded sessions by model, variant and revision. */
const sessions = new Map<string, Held>();
/** The active revision of each variant (model, variant -> revision). */
const active = new Map<string, string>();
let provider = 'cpu';
let providerWarning: string | undefined;

async function createSession(path: string): Promise<ort.InferenceSession> {
  const wantCuda = init.device.startsWith('cuda');
  const deviceId = wantCuda && init.device.includes(':') ? Number(init.device.split(':')[1]) : 0;
  if (wantCuda && providerWarning === undefined) {
    try {
      const s = await ort.InferenceSession.create(path, sessionOptions(init.intraOpThreads, { cuda: true, deviceId }));
      provider = 'cuda';
      return s;
    } catch (err) {
      // onnxruntime-node treats a missing CUDA provider as a hard error, not a fallback: fall back ourselves.
      providerWarning = `CUDA execution provider unavailable (${(err as Error).message.split('\n')[0]}); running on CPU`;
      provider = 'cpu';
    }
  }
  return ort.InferenceSession.create(
    path,
    sessionOptions(init.intraOpThreads, provider === 'cuda' ? { cuda: true, deviceId } : { cuda: false }),
  );
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
    const revision = active.get(key(v.model, v.variant)) ?? v.revision;
    const s = (sessions.get(key(v.model, v.variant, revision)) as Held).session;
    out.push(sessionDescription(v.model, v.variant, v.path, s));
  }
  const result: DescribeResult = { ok: true, kind: 'describe', provider, sessions: out };
  if (providerWarning !== undefined) result.providerWarning = providerWarning;
  return result;
}

function sessionDescription(model: string, variant: string, path: string, s: ort.InferenceSession) {
  return {
    model,
    variant,
    inputs: s.inputMetadata.map((m) => toSpec(m, `${path}: input`)),
    outputs: s.outputMetadata.map((m) => toSpec(m, `${path}: output`)),
  };
}

async function run(task: RunTask): Promise<WorkerResult> {
  const start = performance.now();
  const revision = task.revision ?? active.get(key(task.model, task.variant));
  const sessionKey = key(task.model, task.variant, revision ?? '');
  const held = sessions.get(sessionKey);
  if (held === undefined)
    return {
      ok: false,
      error: {
        code: 'SLOGATE_ERR_VARIANT_NOT_FOUND',
        message: `replica ${init.replicaId} has no session for ${task.model}/${task.variant}${task.revision === undefined ? '' : ` revision ${task.revision}`}`,
      },
    };
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of task.inputs) feeds[t.name] = toOrt(t);
  const t0 = performance.now();
  let results: ort.InferenceSession.ReturnType;
  held.runs++;
  try {
    results = task.outputs === undefined ? await held.session.run(feeds) : await held.session.run(feeds, task.outputs);
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 'SLOGATE_ERR_INFERENCE_FAILED',
        message: `${task.model}/${task.variant}: ${(err as Error).message}`,
      },
    };
  } finally {
    held.runs--;
    releaseIfIdle(sessionKey);
  }
  const inferMs = performance.now() - t0;
  const outputs = Object.entries(results).map(([name, v]) => fromOrt(name, v));
  return { ok: true, kind: 'run', outputs, inferMs, workerMs: performance.now() - start };
}

/** Whole, exclusively owned output buffers: they move back to the main thread instead of being copied. */
function outputBuffers(result: WorkerResult): ArrayBuffer[] {
  if (!result.ok || result.kind !== 'run') return [];
  const buffers = new Set<ArrayBuffer>();
  for (const o of result.outputs) {
    if (!Array.isArray(o.data)) {
      const d = o.data as Float32Array;
      if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer)
        buffers.add(d.buffer);
    }
  }
  return [...buffers];
}

/** Wraps a result so piscina transfers (not copies) the output buffers back. */
function movable(result: WorkerResult): unknown {
  const buffers = outputBuffers(result);
  if (buffers.length === 0) return result;
  return Piscina.move({
    [Piscina.transferableSymbol]: buffers,
    [Piscina.valueSymbol]: result,
  } as unknown as Parameters<typeof Piscina.move>[0]);
}

/** Batches arriving on the replica's own port (runtime/worker-channel.ts), answered on it. */
function openChannel(port: MessagePort): WorkerResult {
  port.on('message', (m: ChannelRequest) => {
    void runSafely(m.task).then((result) =>
      port.postMessage({ id: m.id, result } satisfies ChannelReply, outputBuffers(result)),
    );
  });
  return { ok: true, kind: 'channel' };
}

async function runSafely(task: RunTask): Promise<WorkerResult> {
  try {
    return await run(task);
  } catch (err) {
    return internalError(err);
  }
}

function internalError(err: unknown): WorkerResult {
  return {
    ok: false,
    error: { code: 'SLOGATE_ERR_INTERNAL', message: `worker: ${(err as Error).stack ?? String(err)}` },
  } satisfies WorkerResult;
}

function key(model: string, variant: string, revision?: string): string {
  return revision === undefined ? `${model}\u0000${variant}` : `${model}\u0000${variant}\u0000${revision}`;
}

function releaseIfIdle(sessionKey: string): void {
  const held = sessions.get(sessionKey);
  if (held === undefined || !held.retired || held.runs > 0) return;
  sessions.delete(sessionKey);
  void held.session.release().catch(() => {});
}

function heldNames(): string[] {
  return [...sessions.keys()].map((k) => {
    const [m, v, r] = k.split('\u0000');
    return `${m}/${v}@${r}`;
  });
}

async function loadRevision(task: LoadTask): Promise<WorkerResult> {
  const sessionKey = key(task.model, task.variant, task.revision);
  const existing = sessions.get(sessionKey);
  if (existing !== undefined) {
    existing.retired = false;
    return {
      ok: true,
      kind: 'load',
      session: sessionDescription(task.model, task.variant, task.path, existing.session),
    };
  }
  let session: ort.InferenceSession;
  try {
    session = await createSession(task.path);
  } catch (err) {
    const message = `${task.model}/${task.variant} revision ${task.revision}: ${(err as Error).message.split('\n')[0]}`;
    return { ok: false, error: { code: 'SLOGATE_ERR_NOT_ONNX', message } };
  }
  try {
    const description = sessionDescription(task.model, task.variant, task.path, session);
    sessions.set(sessionKey, { session, runs: 0, retired: false });
    return { ok: true, kind: 'load', session: description };
  } catch (err) {
    void session.release().catch(() => {});
    return { ok: false, error: { code: 'SLOGATE_ERR_SIGNATURE_MISMATCH', message: (err as Error).message } };
  }
}

function revisionTask(task: RevisionTask): Promise<WorkerResult> | WorkerResult {
  if (task.kind === 'load') return loadRevision(task);
  if (task.kind === 'remove') return removeVariant(task.model, task.variant);
  const sessionKey = key(task.model, task.variant, task.revision);
  const held = sessions.get(sessionKey);
  if (held === undefined)
    return {
      ok: false,
      error: {
        code: 'SLOGATE_ERR_REVISION_NOT_FOUND',
        message: `replica ${init.replicaId} has not loaded ${task.model}/${task.variant} revision ${task.revision}`,
      },
    };
  const variantKey = key(task.model, task.variant);
  if (task.kind === 'activate') {
    const previous = active.get(variantKey);
    held.retired = false;
    active.set(variantKey, task.revision);
    if (previous !== undefined && previous !== task.revision) {
      const old = key(task.model, task.variant, previous);
      const oldHeld = sessions.get(old);
      if (oldHeld !== undefined) oldHeld.retired = true;
      releaseIfIdle(old);
    }
  } else if (active.get(variantKey) !== task.revision) {
    held.retired = true;
    releaseIfIdle(sessionKey);
  }
  return { ok: true, kind: task.kind, sessions: heldNames() } satisfies RevisionDone;
}

function removeVariant(model: string, variant: string): RevisionDone {
  const variantKey = key(model, variant);
  active.delete(variantKey);
  for (const [k, held] of sessions)
    if (k.startsWith(`${variantKey}\u0000`)) {
      held.retired = true;
      releaseIfIdle(k);
    }
  return { ok: true, kind: 'remove', sessions: heldNames() };
}

async function load(): Promise<(task: WorkerTask) => Promise<unknown>> {
  for (const v of init.variants) {
    try {
      sessions.set(key(v.model, v.variant, v.revision), {
        session: await createSession(v.path),
        runs: 0,
        retired: false,
      });
      active.set(key(v.model, v.variant), v.revision);
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
      if (task.kind === 'run') return movable(await run(task));
      if (task.kind === 'channel') return openChannel(task.port);
      return await revisionTask(task);
    } catch (err) {
      return internalError(err);
    }
  };
}

export default load();
