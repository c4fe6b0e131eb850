// Conversions between the wire's tensors and onnxruntime's, and the session options every session shares: used by
// the worker threads and by the inline runner on the main thread (runtime/inline-runner.ts).
import * as ort from 'onnxruntime-node';
import type { TensorStorage, V2Datatype } from '../../core/types.js';
import type { WireTensor } from './messages.js';
import { ORT_TO_V2, V2_TO_ORT } from './messages.js';

export function sessionOptions(
  intraOpThreads: number,
  provider: { cuda: false } | { cuda: true; deviceId: number },
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider.cuda ? [{ name: 'cuda', deviceId: provider.deviceId }] : ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Idle spinning burns a core and causes 10-40 ms p99 spikes when workers share cores with the gateway.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

export function toOrt(t: WireTensor): ort.Tensor {
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

export function fromOrt(name: string, value: ort.OnnxValue): WireTensor {
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
