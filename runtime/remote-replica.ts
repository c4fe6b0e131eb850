// A replica that is another slogate node (`slogate runtime`), reached over HTTP with an undici Pool (keep-alive,
// the binary tensor extension both ways). Health is probed on an unref'd timer: a node that stops answering is
// marked down, one whose batch passes its timeout suspect (its in-flight batches fail over as ReplicaFault, which
// the pool retries elsewhere), and either is probed with its health check and a real inference until it answers both.
import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import type { Clock, TimerHandle } from '../core/clock.js';
import { isErrorCode, SlogateError } from '../core/errors.js';
import type { TensorSpec, V2Datatype } from '../core/types.js';
import { LOAD_REPORT_HEADER, type NodeLoad, parseLoadReport } from './load-report.js';
import { syntheticInputs } from './profiler.js';
import { nextRemoteState, probeNeedsInference, type RemoteEvent } from './remote-probe.js';
import { NODE_REVISIONS_PATH, NodeRevisionError, RemoteRevisions } from './remote-revisions.js';
import type { BatchOutcome, BatchTask, Replica, ReplicaEvents, ReplicaState } from './replica.js';
import { ReplicaFault } from './replica.js';
import { allocate, binaryData, ELEMENT_BYTES, MAX_ELEMENTS, parseBytesElements } from './tensor.js';
import type {
  DescribeResult,
  RevisionResult,
  RevisionTask,
  SessionDescription,
  WireTensor,
  WorkerVariant,
} from './worker/messages.js';

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
  /** Most bytes an answer may take when the signature does not fix its size (BYTES or free dimensions). */
  readonly maxVariableAnswerBytes?: number;
  /** false: ignore the node's load reports and offer the configured slots (runtime.loadReports). */
  readonly useLoadReports?: boolean;
  /** Bearer token for the node's admin endpoints (revisions travel through them). */
  readonly adminToken?: string | undefined;
  /**
   * The gateway's active revision of every variant: the node is brought to them when it connects, when it comes
   * back, and whenever a probe finds it serving another (a node restarted empty). Absent: revisions are not synced.
   */
  readonly desired?: (() => readonly WorkerVariant[]) | undefined;
  /** Where a node's revision sync is reported. */
  readonly onRevisionSync?: ((id: string, message: string, failed: boolean) => void) | undefined;
}

/** Room for an answer's JSON header (names, datatypes, shapes, sizes) besides its tensor bytes. */
export const ANSWER_HEADER_BYTES = 64 * 1024;
/** Default bound on an answer whose size the signature leaves open. */
export const MAX_VARIABLE_ANSWER_BYTES = 64 * 1024 * 1024;
/** How long a probe's health check and inference may take. */
const PROBE_TIMEOUT_MS = 2000;
/** Characters of a node's error text kept in a message. */
const NODE_ERROR_CHARS = 200;
/**
 * Answers to a batch on a named revision that say the node does not hold it (dropped, restarted empty, never sent) or
 * will not run it for this gateway (another admin token): the node's failure, not the batch's.
 */
const REVISION_MISSING_CODES = new Set([
  'SLOGATE_ERR_VARIANT_NOT_FOUND',
  'SLOGATE_ERR_MODEL_NOT_FOUND',
  'SLOGATE_ERR_REVISION_NOT_FOUND',
  'SLOGATE_ERR_UNAUTHORIZED',
]);

function cannotRunRevision(status: number, code: string | string[] | undefined): boolean {
  if (typeof code === 'string') return REVISION_MISSING_CODES.has(code);
  return status === 404 || status === 401 || status === 403;
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
  /** Aborts the requests in flight (a node whose batch passed its timeout gets none of them back). */
  readonly #inflight = new Set<AbortController>();
  /** Each model's inputs as the node described them at start (probe inferences are built from them). */
  readonly #inputs = new Map<string, { variant: string; inputs: readonly TensorSpec[] }>();
  /** Each model's outputs as the node described them at start. */
  readonly #outputs = new Map<string, readonly TensorSpec[]>();
  /** The node's last load report, when it came, and how many of our batches were on the node then. */
  #report: { load: NodeLoad; atMs: number; ours: number } | undefined;
  /** The node's side of revisions: content-addressed upload, load gate, activation. */
  readonly revisions: RemoteRevisions;
  /** The node cannot list its revisions (an older node, or a different admin token): syncs are skipped. */
  #syncUnsupported = false;

  constructor(o: RemoteReplicaOptions) {
    this.#o = o;
    const timeout = o.requestTimeoutMs ?? 30_000;
    this.#pool = new Pool(o.url, {
      connections: o.slots + 2,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect: { timeout: 5_000 },
    });
    this.revisions = new RemoteRevisions({
      id: o.id,
      url: o.url,
      dispatcher: this.#pool,
      adminToken: o.adminToken,
      timeoutMs: Math.max(timeout, 60_000),
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

  /** The node's last load report while fresh (younger than three probe intervals, at least 2 s). */
  get load(): NodeLoad | undefined {
    const r = this.#report;
    if (r === undefined) return undefined;
    const maxAgeMs = Math.max(2000, 3 * this.#o.healthCheckIntervalMs);
    return this.#o.clock.now() - r.atMs <= maxAgeMs ? r.load : undefined;
  }

  /**
   * Slots this gateway may use on the node: its configured slots, less the node's slots that other gateways' work
   * holds (busy beyond our own batches), but at least one, so a shared node is never shut out and the node's own
   * queue (and refusals) arbitrate. Without a fresh report, or with load reports turned off, the configured slots.
   */
  get availableSlots(): number {
    const load = this.#o.useLoadReports === false ? undefined : this.load;
    if (load === undefined) return this.#o.slots;
    const others = Math.max(0, load.busySlots - (this.#report?.ours ?? 0));
    return Math.max(1, Math.min(this.#o.slots, load.totalSlots - others));
  }

  #readReport(header: string | string[] | undefined, ours: number): void {
    const parsed = parseLoadReport(Array.isArray(header) ? header[0] : header);
    if (parsed.ok) this.#report = { load: parsed.load, atMs: this.#o.clock.now(), ours };
  }

  async start(): Promise<DescribeResult> {
    const deadline = this.#o.clock.now() + (this.#o.startTimeoutMs ?? 60_000);
    for (;;) {
      if (this.#closed) throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `remote replica ${this.#o.url} was closed`);
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
      this.#outputs.set(model, meta.outputs);
      const first = variants[0];
      if (first !== undefined) this.#inputs.set(model, { variant: first, inputs: meta.inputs });
    }
    try {
      await this.#sync();
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_NODE_REVISION', (err as Error).message);
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
        headersTimeout: PROBE_TIMEOUT_MS,
        bodyTimeout: PROBE_TIMEOUT_MS,
      });
      await r.body.dump();
      this.#readReport(r.headers[LOAD_REPORT_HEADER], this.#outstanding);
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
      let health = await this.#ready();
      // A node coming back may have restarted empty: it gets the active revisions before any batch.
      if (health && this.#state !== 'ready' && !(await this.#syncOnProbe())) health = false;
      const inference = health && probeNeedsInference(this.#state) ? await this.#probeInference() : undefined;
      const wasOut = this.#state !== 'ready';
      this.#apply({ kind: 'probe', health, ...(inference === undefined ? {} : { inference }) });
      if (wasOut && this.#state === 'ready') this.events.emit('restart', 'remote node came back');
    } finally {
      this.#probing = false;
      this.#schedule();
    }
  }

  /** One row of synthetic input to the first model, answered in time and right: the node serves again. */
  async #probeInference(): Promise<boolean> {
    const [model, sig] = [...this.#inputs][0] ?? [];
    if (model === undefined || sig === undefined) return true;
    const task: BatchTask = {
      model,
      variant: sig.variant,
      inputs: syntheticInputs(sig.inputs, 1),
      rows: 1,
      transfer: false,
    };
    const ctl = new AbortController();
    const timer = this.#o.clock.setTimer(() => ctl.abort(), PROBE_TIMEOUT_MS);
    try {
      await this.#send(task, ctl);
      return true;
    } catch (err) {
      // An answer that blames the request (a 4xx) still shows the node runs inference.
      return !(err instanceof ReplicaFault) && !ctl.signal.aborted;
    } finally {
      this.#o.clock.clearTimer(timer);
    }
  }

  /**
   * Brings the node to the gateway's active revisions when it serves others (restarted empty, or missed an
   * activation); false when it could not be, so the node stays out of service.
   */
  async #syncOnProbe(): Promise<boolean> {
    try {
      await this.#sync();
      return true;
    } catch (err) {
      this.#o.onRevisionSync?.(this.id, (err as Error).message, true);
      this.#setState('down', `cannot serve the active revisions: ${(err as Error).message}`);
      return false;
    }
  }

  async #sync(): Promise<void> {
    const desired = this.#o.desired?.();
    if (desired === undefined || this.#syncUnsupported) return;
    let served: Map<string, string>;
    try {
      served = await this.revisions.served();
    } catch (err) {
      // A node that does not offer revisions (or not to this token) serves what it serves; deploys to it fail naming it.
      if (err instanceof NodeRevisionError && [401, 403, 404].includes(err.status ?? 0)) {
        this.#syncUnsupported = true;
        this.#o.onRevisionSync?.(this.id, `revisions not synced: ${err.message}`, true);
        return;
      }
      throw err;
    }
    const switched = await this.revisions.sync(desired, served);
    if (switched.length > 0) this.#o.onRevisionSync?.(this.id, `brought to ${switched.join(', ')}`, false);
  }

  /** Loads, activates or unloads a revision on the node; the load uploads the file first unless the node has it. */
  async revision(task: RevisionTask): Promise<RevisionResult> {
    const res = await this.revisions.task(task);
    if (task.kind === 'activate' && !res.ok) {
      // It serves the previous revision: out of service until a probe's sync switches it.
      if (this.#state === 'ready') this.#setState('suspect', `missed the activation of ${task.revision}`);
    }
    return res;
  }

  #apply(e: RemoteEvent): void {
    const t = nextRemoteState(this.#state, e);
    if (t !== undefined) this.#setState(t.state, t.reason);
  }

  /** A batch passed its timeout: no more batches until a probe passes, and the ones in flight are let go. */
  timedOut(reason: string): void {
    const t = nextRemoteState(this.#state, { kind: 'batch-timeout' });
    if (t !== undefined) this.#setState(t.state, `${t.reason} (${reason})`);
    for (const ctl of this.#inflight) ctl.abort();
  }

  #setState(state: ReplicaState, reason: string): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.events.emit('state', state, reason);
  }

  async run(task: BatchTask): Promise<BatchOutcome> {
    if (this.#state !== 'ready') throw new ReplicaFault(this.id, `remote replica ${this.id} is ${this.#state}`);
    const ctl = new AbortController();
    this.#inflight.add(ctl);
    this.#outstanding++;
    try {
      return await this.#send(task, ctl);
    } finally {
      this.#outstanding--;
      this.#inflight.delete(ctl);
    }
  }

  /** Sends one batch and checks its answer; rejects with ReplicaFault when the node, not the request, failed. */
  async #send(task: BatchTask, ctl: AbortController): Promise<BatchOutcome> {
    const expected = this.#expected(task);
    const limit = answerLimitBytes(expected, this.#o.maxVariableAnswerBytes ?? MAX_VARIABLE_ANSWER_BYTES);
    const { body, jsonLength } = encodeRequest(task, this.#o.clock.now());
    const t0 = this.#o.clock.now();
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let raw: Buffer | undefined;
    try {
      const r = await this.#pool.request({
        method: 'POST',
        path: this.#inferPath(task),
        body,
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(jsonLength),
          ...(task.revision !== undefined && this.#o.adminToken !== undefined
            ? { authorization: `Bearer ${this.#o.adminToken}` }
            : {}),
        },
        signal: ctl.signal,
      });
      status = r.statusCode;
      headers = r.headers;
      raw = await readBounded(r.body, limit);
    } catch (err) {
      // The node stopped answering: take it out now (a probe brings it back) and let the pool retry. A request
      // aborted after a timeout leaves the state to timedOut().
      if (!ctl.signal.aborted) this.#apply({ kind: 'request-failed' });
      throw new ReplicaFault(this.id, `remote replica ${this.id} failed: ${(err as Error).message}`);
    }
    const tripMs = this.#o.clock.now() - t0;
    // Reported as the answer left the node: this batch no longer ran there, our other ones may have.
    this.#readReport(headers[LOAD_REPORT_HEADER], this.#outstanding - 1);
    if (raw === undefined)
      throw new ReplicaFault(this.id, `remote replica ${this.id} answered more than ${limit} bytes (HTTP ${status})`);
    if (status !== 200) {
      const code = headers['x-slogate-error-code'];
      const message = safeError(raw);
      // A node that is going away or overloaded is a replica fault (another replica may answer); a 4xx is the request's.
      if (status >= 500 || status === 429) {
        if (code === 'SLOGATE_ERR_SHUTTING_DOWN') this.#apply({ kind: 'shutting-down' });
        throw new ReplicaFault(this.id, `remote replica ${this.id}: HTTP ${status} ${code ?? ''} ${message}`);
      }
      if (task.revision !== undefined && cannotRunRevision(status, code))
        throw new SlogateError(
          'SLOGATE_ERR_NODE_REVISION',
          `runtime node ${this.id} (${this.#o.url}) cannot run ${task.revision}: HTTP ${status} ${code ?? ''} ${message}`,
        );
      throw new SlogateError(
        typeof code === 'string' && isErrorCode(code) ? code : 'SLOGATE_ERR_INFERENCE_FAILED',
        `remote replica ${this.id}: ${message}`,
      );
    }
    let outputs: WireTensor[];
    try {
      outputs = decodeResponse(raw, headers['inference-header-content-length'], expected);
    } catch (err) {
      // A malformed answer is the node's fault, not the request's: another replica may answer it right.
      throw new ReplicaFault(this.id, `remote replica ${this.id} answered malformed: ${(err as Error).message}`);
    }
    const total = serverTotalMs(headers['server-timing']);
    const busy = Number.isFinite(total) ? Math.min(total, tripMs) : tripMs;
    return { outputs, inferMs: busy, workerMs: busy, replicaId: this.id };
  }

  /** The V2 infer path; a batch naming a revision (a deploy gate's) runs on it through the node's revision endpoint. */
  #inferPath(task: BatchTask): string {
    const mv = `${encodeURIComponent(task.model)}/${encodeURIComponent(task.variant)}`;
    if (task.revision !== undefined) return `${NODE_REVISIONS_PATH}/${task.revision}/infer/${mv}`;
    return `/v2/models/${encodeURIComponent(task.model)}/versions/${encodeURIComponent(task.variant)}/infer`;
  }

  /** What a right answer to this task holds: the requested outputs (all, when none are named) and the rows. */
  #expected(task: BatchTask): ExpectedAnswer {
    const all = this.#outputs.get(task.model) ?? [];
    const outputs = task.outputs === undefined ? all : all.filter((o) => task.outputs?.includes(o.name));
    return { rows: task.rows, outputs };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#state = 'closed';
    for (const ctl of this.#inflight) ctl.abort();
    await this.#pool.close();
  }
}

function safeError(raw: Buffer): string {
  let text: string;
  try {
    text = String((JSON.parse(raw.toString()) as { error?: unknown }).error ?? '');
  } catch {
    text = raw.subarray(0, NODE_ERROR_CHARS).toString();
  }
  return text.length <= NODE_ERROR_CHARS ? text : `${text.slice(0, NODE_ERROR_CHARS)}...`;
}

/** The body, or undefined once it passes `limit` bytes (the rest is not read). */
async function readBounded(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export interface ExpectedAnswer {
  readonly rows: number;
  /** The outputs the answer must hold, each once, in any order. */
  readonly outputs: readonly TensorSpec[];
}

/** Most bytes a right answer can take: its header, plus each output's rows of fixed-size elements. */
export function answerLimitBytes(expected: ExpectedAnswer, maxVariableBytes: number): number {
  let bytes = ANSWER_HEADER_BYTES;
  for (const o of expected.outputs) {
    const dims = o.shape.map((d, i) => (i === 0 && d === -1 ? expected.rows : d));
    if (o.datatype === 'BYTES' || dims.some((d) => d < 0)) return maxVariableBytes;
    bytes += dims.reduce((a, d) => a * d, 1) * ELEMENT_BYTES[o.datatype];
  }
  return bytes;
}

/**
 * A V2 request with every input as binary data and every requested output asked for in binary, and the batch's time
 * left as Triton's `timeout` parameter (microseconds), so the node refuses at once what cannot make it.
 */
export function encodeRequest(task: BatchTask, nowMs: number): { body: Buffer; jsonLength: number } {
  const leftMs = task.deadlineAtMs === undefined ? Number.POSITIVE_INFINITY : task.deadlineAtMs - nowMs;
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
    parameters: {
      binary_data_output: true,
      ...(Number.isFinite(leftMs) ? { timeout: Math.max(1, Math.floor(leftMs * 1000)) } : {}),
    },
  };
  const head = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([head, ...blobs]), jsonLength: head.byteLength };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Decodes a node's V2 answer (outputs binary, or JSON) into wire tensors, checking it against what was asked: every
 * requested output once, in the signature's datatype, with the batch's rows and the signature's fixed dimensions,
 * and sizes that add up to the body. Throws a plain Error on anything else.
 */
export function decodeResponse(
  raw: Buffer,
  headerLength: string | string[] | undefined,
  expected: ExpectedAnswer,
): WireTensor[] {
  const hv = Array.isArray(headerLength) ? headerLength[0] : headerLength;
  let hl: number | undefined;
  if (hv !== undefined) {
    if (!/^\d{1,10}$/.test(hv) || Number(hv) > raw.byteLength)
      throw new Error(
        `Inference-Header-Content-Length '${hv.slice(0, 20)}' does not fit a ${raw.byteLength}-byte body`,
      );
    hl = Number(hv);
  }
  const doc = JSON.parse((hl === undefined ? raw : raw.subarray(0, hl)).toString()) as unknown;
  if (!isObject(doc) || !Array.isArray(doc.outputs)) throw new Error('the answer has no outputs array');
  if (doc.outputs.length !== expected.outputs.length)
    throw new Error(`${doc.outputs.length} outputs for the ${expected.outputs.length} asked for`);
  const seen = new Set<string>();
  const cursor = { off: hl ?? raw.byteLength };
  const out = doc.outputs.map((o: unknown) => {
    const spec = isObject(o) ? expected.outputs.find((s) => s.name === o.name) : undefined;
    if (!isObject(o) || spec === undefined || seen.has(spec.name))
      throw new Error('an output that was not asked for, or one given twice');
    seen.add(spec.name);
    return decodeOutput(o, spec, expected.rows, raw, cursor);
  });
  if (hl !== undefined && cursor.off !== raw.byteLength)
    throw new Error(`${raw.byteLength - cursor.off} bytes of binary data that no output claims`);
  return out;
}

function decodeOutput(
  o: Record<string, unknown>,
  spec: TensorSpec,
  rows: number,
  raw: Buffer,
  cursor: { off: number },
): WireTensor {
  const name = spec.name;
  if (o.datatype !== spec.datatype) throw new Error(`output '${name}' is not ${spec.datatype}`);
  const dt: V2Datatype = spec.datatype;
  const shape = answerShape(o.shape, spec, rows);
  const n = shape.reduce((a, d) => a * d, 1);
  const size = isObject(o.parameters) ? o.parameters.binary_data_size : undefined;
  if (size !== undefined) {
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || cursor.off + size > raw.byteLength)
      throw new Error(`output '${name}': binary_data_size does not fit the body`);
    if (dt !== 'BYTES' && size !== n * ELEMENT_BYTES[dt])
      throw new Error(`output '${name}': ${size} bytes for shape [${shape.join(',')}] of ${dt}`);
    const bytes = raw.subarray(cursor.off, cursor.off + size);
    cursor.off += size;
    if (dt === 'BYTES') return { name, datatype: dt, shape, data: parseBytesElements(name, bytes, n) };
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    const Ctor = (allocate(dt, 0) as Float32Array).constructor as unknown as new (b: ArrayBuffer) => Float32Array;
    return { name, datatype: dt, shape, data: new Ctor(copy.buffer) };
  }
  return { name, datatype: dt, shape, data: jsonOutputData(name, dt, o.data, n) };
}

/** The answer's shape, when it is the spec's with the batch's rows; throws otherwise. */
function answerShape(shape: unknown, spec: TensorSpec, rows: number): number[] {
  const ok =
    Array.isArray(shape) &&
    shape.length === spec.shape.length &&
    shape.every((d: unknown, i) => {
      const want = i === 0 && spec.shape[0] === -1 ? rows : (spec.shape[i] as number);
      return typeof d === 'number' && Number.isInteger(d) && d >= 0 && (want < 0 || d === want);
    });
  if (!ok || (shape as number[]).reduce((a, d) => a * d, 1) > MAX_ELEMENTS)
    throw new Error(`output '${spec.name}' does not have the shape [${spec.shape.join(',')}] for ${rows} rows`);
  return shape as number[];
}

function jsonOutputData(name: string, dt: V2Datatype, data: unknown, n: number): Float32Array {
  if (dt === 'BYTES' || dt === 'BOOL' || dt === 'FP16' || dt === 'BF16')
    throw new Error(`output '${name}': ${dt} data must be binary`);
  if (!Array.isArray(data) || data.length !== n) throw new Error(`output '${name}': data is not ${n} elements`);
  const out = allocate(dt, n) as Float32Array;
  const float = dt === 'FP32' || dt === 'FP64';
  for (let i = 0; i < n; i++) {
    const v = data[i] as unknown;
    // JSON writes non-finite floats as null.
    if (float && v === null) out[i] = Number.NaN;
    else if (typeof v !== 'number' || (!float && !Number.isInteger(v)))
      throw new Error(`output '${name}': element ${i} is not a ${dt}`);
    else out[i] = (dt === 'INT64' || dt === 'UINT64' ? BigInt(v) : v) as number;
  }
  return out;
}
