// A replica that is another slogate node (`slogate runtime`), reached over HTTP with an undici Pool (keep-alive,
// the binary tensor extension both ways). Health is probed on an unref'd timer: a node that stops answering is
// marked down (its in-flight batches fail over as ReplicaFault, which the pool retries elsewhere) and probed until
// it comes back.
import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import type { Clock, TimerHandle } from '../core/clock.js';
import { isErrorCode, SlogateError } from '../core/errors.js';
import type { TensorSpec, V2Datatype } from '../core/types.js';
import type { BatchOutcome, BatchTask, Replica, ReplicaEvents, ReplicaState } from './replica.js';
import { ReplicaFault } from './replica.js';
import { allocate, binaryData, isV2Datatype, parseBytesElements } from './tensor.js';
import type { DescribeResult, SessionDescription, WireTensor } from './worker/messages.js';

export interface RemoteReplicaOptions {
  readonly id: string;
  readonly url: string;
  /** Batches sent at once (HTTP connections). */
  readonly slots: number;
  /** What the gateway expects the node to serve: model -> variant names. */
  readonly models: ReadonlyMap<string, readonly string[]>;
  readonly clock: Clock;
  readonly healthCheckIntervalMs: number;
  /** How long start() waits for the node to be ready. */
  readonly startTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

interface MetadataResponse {
  name: string;
  versions?: string[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** Server-Timing `total` (ms) of a response, or NaN. */
function serverTotalMs(header: string | string[] | undefined): number {
  const h = Array.isArray(header) ? header.join(',') : (header ?? '');
  const m = h.match(/total;dur=([\d.]+)/);
  return m === null ? Number.NaN : Number(m[1]);
}

export class RemoteReplica implements Replica {
  readonly kind = 'remote' as const;
  readonly provider = 'remote';
  readonly events = new EventEmitter<ReplicaEvents>();
  readonly #o: RemoteReplicaOptions;
  readonly #pool: Pool;
  #state: ReplicaState = 'pending';
  #outstanding = 0;
  #timer: TimerHandle | undefined;
  #probing = false;
  #closed = false;

  constructor(o: RemoteReplicaOptions) {
    this.#o = o;
    const timeout = o.requestTimeoutMs ?? 30_000;
    this.#pool = new Pool(o.url, {
      connections: o.slots + 1,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect: { timeout: 5_000 },
    });
  }

  get id(): string {
    return this.#o.id;
  }
  get slots(): number {
    return this.#o.slots;
  }
  get state(): ReplicaState {
    return this.#state;
  }
  get outstanding(): number {
    return this.#outstanding;
  }

  async start(): Promise<DescribeResult> {
    const deadline = this.#o.clock.now() + (this.#o.startTimeoutMs ?? 60_000);
    for (;;) {
      if (await this.#ready()) break;
      if (this.#o.clock.now() > deadline)
        throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `remote replica ${this.#o.url} did not become ready`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const sessions: SessionDescription[] = [];
    for (const [model, variants] of this.#o.models) {
      const meta = await this.#json<MetadataResponse>(`/v2/models/${encodeURIComponent(model)}`);
      for (const v of variants) {
        if (meta.versions !== undefined && !meta.versions.includes(v)) {
          throw new SlogateError(
            'SLOGATE_ERR_MODEL_LOAD',
            `remote replica ${this.#o.url} does not serve ${model}/${v} (it serves ${meta.versions.join(', ')})`,
          );
        }
        sessions.push({ model, variant: v, inputs: meta.inputs, outputs: meta.outputs });
      }
    }
    this.#setState('ready', 'remote node ready');
    this.#schedule();
    return { ok: true, kind: 'describe', provider: 'remote', sessions };
  }

  async #json<T>(path: string): Promise<T> {
    const r = await this.#pool.request({ method: 'GET', path });
    const text = await r.body.text();
    if (r.statusCode !== 200)
      throw new SlogateError(
        'SLOGATE_ERR_MODEL_LOAD',
        `remote replica ${this.#o.url}${path}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`,
      );
    return JSON.parse(text) as T;
  }

  async #ready(): Promise<boolean> {
    try {
      const r = await this.#pool.request({
        method: 'GET',
        path: '/v2/health/ready',
        headersTimeout: 2000,
        bodyTimeout: 2000,
      });
      await r.body.dump();
      return r.statusCode === 200;
    } catch {
      return false;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#o.clock.setTimer(() => void this.#probe(), this.#o.healthCheckIntervalMs);
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      const ok = await this.#ready();
      if (ok && this.#state === 'down') {
        this.#setState('ready', 'remote node answers again');
        this.events.emit('restart', 'remote node came back');
      } else if (!ok && this.#state === 'ready') this.#setState('down', 'health check failed');
    } finally {
      this.#probing = false;
      this.#schedule();
    }
  }

  #setState(state: ReplicaState, reason: string): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.events.emit('state', state, reason);
  }

  async run(task: BatchTask): Promise<BatchOutcome> {
    if (this.#state !== 'ready') throw new ReplicaFault(this.id, `remote replica ${this.id} is ${this.#state}`);
    const { body, jsonLength } = encodeRequest(task);
    this.#outstanding++;
    const t0 = this.#o.clock.now();
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let raw: Buffer;
    try {
      const r = await this.#pool.request({
        method: 'POST',
        path: `/v2/models/${encodeURIComponent(task.model)}/versions/${encodeURIComponent(task.variant)}/infer`,
        body,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(jsonLength) },
      });
      status = r.statusCode;
      headers = r.headers;
      raw = Buffer.from(await r.body.arrayBuffer());
    } catch (err) {
      // The node stopped answering: take it out now (the health check brings it back) and let the pool retry.
      this.#setState('down', `request failed: ${(err as Error).message}`);
      throw new ReplicaFault(this.id, `remote replica ${this.id} failed: ${(err as Error).message}`);
    } finally {
      this.#outstanding--;
    }
    const tripMs = this.#o.clock.now() - t0;
    if (status !== 200) {
      const code = headers['x-slogate-error-code'];
      const message = safeError(raw);
      // A node that is going away or overloaded is a replica fault (another replica may answer); a 4xx is the request's.
      if (status >= 500 || status === 429) {
        if (code === 'SLOGATE_ERR_SHUTTING_DOWN') this.#setState('down', 'remote node is shutting down');
        throw new ReplicaFault(this.id, `remote replica ${this.id}: HTTP ${status} ${code ?? ''} ${message}`);
      }
      throw new SlogateError(
        typeof code === 'string' && isErrorCode(code) ? code : 'SLOGATE_ERR_INFERENCE_FAILED',
        `remote replica ${this.id}: ${message}`,
      );
    }
    const outputs = decodeResponse(raw, headers['inference-header-content-length']);
    const total = serverTotalMs(headers['server-timing']);
    const busy = Number.isFinite(total) ? Math.min(total, tripMs) : tripMs;
    return { outputs, inferMs: busy, workerMs: busy, replicaId: this.id };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#state = 'closed';
    await this.#pool.close();
  }
}

function safeError(raw: Buffer): string {
  try {
    return String((JSON.parse(raw.toString()) as { error?: unknown }).error ?? '');
  } catch {
    return raw.subarray(0, 200).toString();
  }
}

/** A V2 request with every input as binary data and every requested output asked for in binary. */
export function encodeRequest(task: BatchTask): { body: Buffer; jsonLength: number } {
  const blobs = task.inputs.map((t) => binaryData(t.datatype, t.data));
  const header = {
    inputs: task.inputs.map((t, i) => ({
      name: t.name,
      shape: t.shape,
      datatype: t.datatype,
      parameters: { binary_data_size: (blobs[i] as Uint8Array).byteLength },
    })),
    ...(task.outputs !== undefined
      ? { outputs: task.outputs.map((name) => ({ name, parameters: { binary_data: true } })) }
      : {}),
    parameters: { binary_data_output: true },
  };
  const head = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([head, ...blobs]), jsonLength: head.byteLength };
}

/** Decodes a V2 response whose outputs are binary (or JSON) into wire tensors. */
export function decodeResponse(raw: Buffer, headerLength: string | string[] | undefined): WireTensor[] {
  const hl = Number(Array.isArray(headerLength) ? headerLength[0] : headerLength);
  const jsonBytes = Number.isFinite(hl) ? raw.subarray(0, hl) : raw;
  const doc = JSON.parse(jsonBytes.toString()) as {
    outputs: {
      name: string;
      datatype: string;
      shape: number[];
      data?: unknown[];
      parameters?: { binary_data_size?: number };
    }[];
  };
  let off = Number.isFinite(hl) ? hl : raw.byteLength;
  return doc.outputs.map((o) => {
    if (!isV2Datatype(o.datatype))
      throw new SlogateError('SLOGATE_ERR_INFERENCE_FAILED', `remote output '${o.name}' has datatype ${o.datatype}`);
    const dt: V2Datatype = o.datatype;
    const n = o.shape.reduce((a, b) => a * b, 1);
    const size = o.parameters?.binary_data_size;
    if (size !== undefined) {
      const bytes = raw.subarray(off, off + size);
      off += size;
      if (dt === 'BYTES')
        return { name: o.name, datatype: dt, shape: o.shape, data: parseBytesElements(o.name, bytes, n) };
      const copy = new Uint8Array(bytes.byteLength);
      copy.set(bytes);
      const data = allocate(dt, 0);
      const Ctor = (data as Float32Array).constructor as unknown as new (b: ArrayBuffer) => Float32Array;
      return { name: o.name, datatype: dt, shape: o.shape, data: new Ctor(copy.buffer) };
    }
    const out = allocate(dt, n) as Float32Array;
    const src = o.data ?? [];
    for (let i = 0; i < n; i++)
      out[i] = (dt === 'INT64' || dt === 'UINT64' ? BigInt(src[i] as number) : (src[i] as number)) as number;
    return { name: o.name, datatype: dt, shape: o.shape, data: out };
  });
}
