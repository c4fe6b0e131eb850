// The gateway's side of remote revisions for one runtime node: a revision travels by content (the node is asked
// whether it has the sha256 first, and sent the file only when it does not), then the node loads it and judges the
// load gate itself. Every failure names the node; one the node did not blame on the file is SLOGATE_ERR_NODE_REVISION.
import { readFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import { type ErrorCode, isErrorCode } from '../core/errors.js';
import type { RevisionResult, RevisionTask, WorkerVariant } from './worker/messages.js';

/** The node path of remote revisions (gateway/admin/node-revisions.ts). */
export const NODE_REVISIONS_PATH = '/admin/node/revisions';
/** Codes a node answers for the file itself: the same meaning as on a local replica. */
const FILE_CODES = new Set<string>(['SLOGATE_ERR_NOT_ONNX', 'SLOGATE_ERR_SIGNATURE_MISMATCH']);
const NODE_ERROR_CHARS = 300;
/** How long a node may take to list its revisions. */
const LIST_TIMEOUT_MS = 5000;

export interface RemoteRevisionsOptions {
  readonly id: string;
  readonly url: string;
  readonly dispatcher: Pick<Dispatcher, 'request'>;
  /** Sent as the bearer token: the node's endpoints are admin endpoints. */
  readonly adminToken?: string | undefined;
  readonly timeoutMs: number;
}

interface NodeAnswer {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: string;
}

/** A node's failure as a revision result: its own code for a bad file, else NODE_REVISION; always naming the node. */
export class NodeRevisionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The node's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export class RemoteRevisions {
  readonly #o: RemoteRevisionsOptions;
  /** Files sent to the node, and files it already had. */
  #uploads = 0;
  #skipped = 0;

  constructor(o: RemoteRevisionsOptions) {
    this.#o = o;
  }

  get uploads(): number {
    return this.#uploads;
  }
  get skipped(): number {
    return this.#skipped;
  }

  get #name(): string {
    return `runtime node ${this.#o.id} (${this.#o.url})`;
  }

  async #call(
    method: 'GET' | 'HEAD' | 'PUT' | 'POST',
    path: string,
    body?: Buffer | object,
    timeoutMs = this.#o.timeoutMs,
  ): Promise<NodeAnswer> {
    const headers: Record<string, string> = {};
    if (this.#o.adminToken !== undefined) headers.authorization = `Bearer ${this.#o.adminToken}`;
    let payload: Buffer | string | undefined;
    if (Buffer.isBuffer(body)) {
      headers['content-type'] = 'application/octet-stream';
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    try {
      const r = await this.#o.dispatcher.request({
        method,
        path,
        headers,
        body: payload,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await r.body.text();
      const code = r.headers['x-slogate-error-code'];
      return { status: r.statusCode, code: typeof code === 'string' ? code : undefined, body: text };
    } catch (err) {
      throw new NodeRevisionError(
        'SLOGATE_ERR_NODE_REVISION',
        `${this.#name} did not answer: ${(err as Error).message}`,
      );
    }
  }

  #fail(what: string, a: NodeAnswer): NodeRevisionError {
    let message = a.body;
    try {
      message = String((JSON.parse(a.body) as { error?: unknown }).error ?? a.body);
    } catch {}
    if (message.length > NODE_ERROR_CHARS) message = `${message.slice(0, NODE_ERROR_CHARS)}...`;
    const code: ErrorCode =
      a.code !== undefined && FILE_CODES.has(a.code) && isErrorCode(a.code) ? a.code : 'SLOGATE_ERR_NODE_REVISION';
    return new NodeRevisionError(
      code,
      `${this.#name} ${what}: HTTP ${a.status} ${a.code ?? ''} ${message}`.trim(),
      a.status,
    );
  }

  /** Makes sure the node has the file of `revision`: asked first, sent only when it does not. */
  async ensure(revision: string, path: string): Promise<'present' | 'sent'> {
    const at = `${NODE_REVISIONS_PATH}/${revision}`;
    const head = await this.#call('HEAD', at);
    if (head.status === 200) {
      this.#skipped++;
      return 'present';
    }
    if (head.status !== 404) throw this.#fail(`could not say whether it has ${revision}`, head);
    const put = await this.#call('PUT', at, readFileSync(path));
    if (put.status !== 200 && put.status !== 201) throw this.#fail(`refused the file of ${revision}`, put);
    this.#uploads++;
    return 'sent';
  }

  /** A revision task on the node; failures come back as results naming the node, never as throws. */
  async task(t: RevisionTask): Promise<RevisionResult> {
    // A node keeps a removed variant's session until it restarts: the gateway only stops sending it batches.
    if (t.kind === 'remove') return { ok: true, kind: 'remove', sessions: [] };
    try {
      if (t.kind === 'load') await this.ensure(t.revision, t.path);
      const a = await this.#call('POST', `${NODE_REVISIONS_PATH}/${t.revision}/${t.kind}`, {
        model: t.model,
        variant: t.variant,
      });
      if (a.status !== 200) throw this.#fail(`could not ${t.kind} ${t.model}/${t.variant} ${t.revision}`, a);
      if (t.kind !== 'load') return { ok: true, kind: t.kind, sessions: [] };
      const { signature } = JSON.parse(a.body) as { signature?: { inputs: []; outputs: [] } };
      if (signature === undefined) throw this.#fail('answered a load without a signature', a);
      return { ok: true, kind: 'load', session: { model: t.model, variant: t.variant, ...signature } };
    } catch (err) {
      const e =
        err instanceof NodeRevisionError ? err : new NodeRevisionError('SLOGATE_ERR_NODE_REVISION', String(err));
      return { ok: false, error: { code: e.code, message: e.message } };
    }
  }

  /** The revision the node serves for each variant (`model\0variant` -> revision). */
  async served(): Promise<Map<string, string>> {
    // Asked on every reconnection: a node that answers health but not this is out of service, not waited for.
    const a = await this.#call('GET', NODE_REVISIONS_PATH, undefined, LIST_TIMEOUT_MS);
    if (a.status !== 200) throw this.#fail('could not list its revisions', a);
    try {
      const doc = JSON.parse(a.body) as { active: { model: string; variant: string; revision: string }[] };
      return new Map(doc.active.map((x) => [`${x.model}\u0000${x.variant}`, x.revision]));
    } catch {
      throw this.#fail('answered an unreadable list of its revisions', a);
    }
  }

  /** Brings the node to the gateway's active revisions; returns the variants it switched; throws naming the node. */
  async sync(desired: readonly WorkerVariant[], served: ReadonlyMap<string, string>): Promise<string[]> {
    const switched: string[] = [];
    for (const d of desired) {
      if (served.get(`${d.model}\u0000${d.variant}`) === d.revision) continue;
      await this.ensure(d.revision, d.path);
      const r = await this.task({ kind: 'activate', model: d.model, variant: d.variant, revision: d.revision });
      if (!r.ok) throw new NodeRevisionError(r.error.code, r.error.message);
      switched.push(`${d.model}/${d.variant}@${d.revision}`);
    }
    return switched;
  }
}
