// Every message between the main thread and an onnxruntime worker, typed in one place. Errors cross as plain
// data (ErrorData) and are rebuilt as SlogateError on the main thread.
import type { MessagePort } from 'node:worker_threads';
import type { ErrorData } from '../../core/errors.js';
import type { TensorSpec, TensorStorage, V2Datatype } from '../../core/types.js';

export interface WorkerVariant {
  readonly model: string;
  readonly variant: string;
  readonly path: string;
  /** The revision (`sha256:<hex>`) the file holds; sessions are keyed by it. */
  readonly revision: string;
}

/** workerData of every worker replica. */
export interface WorkerInit {
  readonly replicaId: string;
  readonly variants: readonly WorkerVariant[];
  /** cpu | cuda | cuda:N */
  readonly device: string;
  readonly intraOpThreads: number;
}

export interface WireTensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  data: TensorStorage;
}

export interface DescribeTask {
  kind: 'describe';
}

export interface RunTask {
  kind: 'run';
  model: string;
  variant: string;
  inputs: WireTensor[];
  /** Outputs to fetch (all when absent). */
  outputs?: string[];
  /** Run this loaded revision instead of the variant's active one (the gates run candidates this way). */
  revision?: string;
}

/** Loads a candidate revision beside the active one; it serves nothing until activated. */
export interface LoadTask {
  kind: 'load';
  model: string;
  variant: string;
  revision: string;
  path: string;
}

/** New batches of the variant go to `revision`; the previous session is released after its last running batch. */
export interface ActivateTask {
  kind: 'activate';
  model: string;
  variant: string;
  revision: string;
}

/** Releases a loaded revision that is not active (a rejected candidate), once no batch runs on it. */
export interface UnloadTask {
  kind: 'unload';
  model: string;
  variant: string;
  revision: string;
}

/** Drops the variant itself (removed or unloaded): its active session is released after its last running batch. */
export interface RemoveTask {
  kind: 'remove';
  model: string;
  variant: string;
}

export type RevisionTask = LoadTask | ActivateTask | UnloadTask | RemoveTask;

/** Hands the worker the port its batches arrive on (runtime/worker-channel.ts); answered with ChannelOpened. */
export interface ChannelTask {
  kind: 'channel';
  port: MessagePort;
}

/** One batch on the channel, answered by the ChannelReply of the same id. */
export interface ChannelRequest {
  id: number;
  task: RunTask;
}

export interface ChannelReply {
  id: number;
  result: WorkerResult;
}

export type WorkerTask = DescribeTask | RunTask | RevisionTask | ChannelTask;

export interface SessionDescription {
  model: string;
  variant: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface DescribeResult {
  ok: true;
  kind: 'describe';
  /** Execution provider actually in use: 'cpu' or 'cuda'. */
  provider: string;
  /** Set when CUDA was asked for but could not be loaded (the worker fell back to CPU). */
  providerWarning?: string;
  sessions: SessionDescription[];
}

export interface RunResult {
  ok: true;
  kind: 'run';
  outputs: WireTensor[];
  /** Wall time of session.run inside the worker. */
  inferMs: number;
  /** Wall time of the whole task inside the worker (conversions, run, outputs): how long the replica was busy. */
  workerMs: number;
}

export interface LoadResult {
  ok: true;
  kind: 'load';
  session: SessionDescription;
}

export interface RevisionDone {
  ok: true;
  kind: 'activate' | 'unload' | 'remove';
  /** Sessions the worker holds after the task, as model/variant@revision (for tests and logs). */
  sessions: string[];
}

export interface ChannelOpened {
  ok: true;
  kind: 'channel';
}

export interface FailedResult {
  ok: false;
  error: ErrorData;
}

export type WorkerResult = DescribeResult | RunResult | LoadResult | RevisionDone | ChannelOpened | FailedResult;
export type RevisionResult = LoadResult | RevisionDone | FailedResult;

/** onnxruntime tensor type names <-> V2 datatypes. */
export const ORT_TO_V2: Readonly<Record<string, V2Datatype>> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

export const V2_TO_ORT: Readonly<Partial<Record<V2Datatype, string>>> = Object.fromEntries(
  Object.entries(ORT_TO_V2).map(([k, v]) => [v, k]),
);
