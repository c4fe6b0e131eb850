// A runtime node's side of remote revisions, behind the admin token: a gateway asks whether the node has a revision
// (by its sha256), sends it when not, has the node load it and pass the load gate itself, switch a variant to it, drop
// it, and runs the deploy gates' batches on it by name. The protocol is described in docs/lifecycle.md.
import { existsSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type Config, formatIssues } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { judgeLoad } from '../../policies/revision-gates.js';
import { NODE_REVISIONS_PATH } from '../../runtime/remote-revisions.js';
import { checkRevisionName, RevisionCache } from '../../runtime/revision-cache.js';
import type { CandidateFile } from '../../runtime/revisions.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { WireTensor } from '../../runtime/worker/messages.js';
import { encodeInferResponse, headerLength, parseInferRequest } from '../v2/codec.js';
import { readBounded } from './revisions.js';

export interface NodeRevisionsOptions {
  readonly runtime: Runtime;
  readonly cache: RevisionCache;
  readonly maxFileBytes: number;
  readonly bodyLimitBytes: number;
}

const TargetSchema = z.strictObject({ model: z.string().min(1).max(128), variant: z.string().min(1).max(128) });

type RevParams = { Params: { rev: string } };
type InferParams = { Params: { rev: string; model: string; variant: string } };

export async function nodeRevisionsPlugin(app: FastifyInstance, opts: NodeRevisionsOptions): Promise<void> {
  const { runtime, cache } = opts;
  /** Revisions loaded beside the active ones (not yet activated or unloaded): kept in the cache. */
  const loaded = new Set<string>();
  const inUse = () => {
    const s = new Set(loaded);
    for (const m of runtime.repository.models.values())
      for (const v of m.variants.values()) s.add(`sha256:${v.sha256}`);
    return s;
  };
  /** Files this node has served (its config's, earlier active ones), by revision: never sent to it again. */
  const known = new Map<string, string>();
  const remember = () => {
    for (const m of runtime.repository.models.values())
      for (const v of m.variants.values()) known.set(`sha256:${v.sha256}`, v.path);
  };
  remember();
  const fileOf = (revision: string): string => {
    checkRevisionName(revision);
    const k = known.get(revision);
    return k !== undefined && existsSync(k) ? k : cache.path(revision);
  };
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  /** The candidate file of `revision` for a variant: the active one's own file, else the node's received copy. */
  const candidate = (model: string, variant: string, revision: string): CandidateFile => {
    checkRevisionName(revision);
    const m = runtime.repository.models.get(model);
    if (m === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_NOT_FOUND', `no model '${model.slice(0, 64)}'`);
    const v = m.variants.get(variant);
    if (v === undefined)
      throw new SlogateError(
        'SLOGATE_ERR_VARIANT_NOT_FOUND',
        `model '${model}' has no variant '${variant.slice(0, 64)}'`,
      );
    if (`sha256:${v.sha256}` === revision) return { model, variant, revision, path: v.path, sizeBytes: v.sizeBytes };
    const path = fileOf(revision);
    return { model, variant, revision, path, sizeBytes: statSync(path).size };
  };
  const target = (body: unknown) => {
    const parsed = TargetSchema.safeParse(body ?? {});
    if (!parsed.success)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_REQUEST',
        `invalid target: ${formatIssues(parsed.error.issues).join('; ')}`,
      );
    return parsed.data;
  };
  /** The load gate on this node's replicas: every one loads it and its signature is the model's. */
  const load = async (c: CandidateFile) => {
    const loads = await runtime.revisions.load(c);
    const verdict = judgeLoad(loads, runtime.signature(c.model));
    if (!verdict.passed) {
      if (!inUse().has(c.revision) || loaded.has(c.revision)) await runtime.revisions.unload(c);
      loaded.delete(c.revision);
      throw new SlogateError(verdict.code ?? 'SLOGATE_ERR_MODEL_LOAD', verdict.detail);
    }
    loaded.add(c.revision);
    return { revision: c.revision, detail: verdict.detail, signature: loads[0]?.signature };
  };

  app.get(NODE_REVISIONS_PATH, async () => ({
    active: [...runtime.repository.models.values()].flatMap((m) =>
      [...m.variants.values()].map((v) => ({ model: m.name, variant: v.name, revision: `sha256:${v.sha256}` })),
    ),
    stored: cache.list().map((f) => f.revision),
    received: cache.received,
  }));

  // HEAD comes with it: 200 when the node has the file, 404 when it must be sent.
  app.get<RevParams>(`${NODE_REVISIONS_PATH}/:rev`, async (req) => {
    fileOf(req.params.rev);
    return { revision: req.params.rev };
  });

  app.put<RevParams>(`${NODE_REVISIONS_PATH}/:rev`, async (req, reply) => {
    checkRevisionName(req.params.rev);
    if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream'))
      throw new SlogateError('SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the model file as application/octet-stream');
    const bytes = await readBounded(req.body as IncomingMessage, req.headers['content-length'], opts.maxFileBytes);
    const stored = cache.put(req.params.rev, bytes, inUse());
    return reply.code(stored ? 201 : 200).send({ revision: req.params.rev, stored });
  });

  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/load`, async (req) => {
    const t = target(req.body);
    return load(candidate(t.model, t.variant, req.params.rev));
  });

  // Loads first (a no-op when loaded), so a variant never names a revision its workers do not hold.
  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/activate`, async (req) => {
    const t = target(req.body);
    const c = candidate(t.model, t.variant, req.params.rev);
    const before = `sha256:${runtime.repository.variant(c.model, c.variant).sha256}`;
    if (before !== c.revision) {
      await load(c);
      remember();
      await runtime.revisions.activate(c, undefined, undefined);
      remember();
    }
    loaded.delete(c.revision);
    app.log.info(
      { model: c.model, variant: c.variant, revision: c.revision, previous: before },
      `${c.model}/${c.variant} now serves ${c.revision} (sent by a gateway)`,
    );
    return { model: c.model, variant: c.variant, active: c.revision, previous: before };
  });

  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/unload`, async (req) => {
    const t = target(req.body);
    const c = candidate(t.model, t.variant, req.params.rev);
    if (`sha256:${runtime.repository.variant(c.model, c.variant).sha256}` === c.revision)
      throw new SlogateError('SLOGATE_ERR_REVISION_REJECTED', `${c.revision} is active on this node: not unloaded`);
    await runtime.revisions.unload(c);
    loaded.delete(c.revision);
    return { unloaded: c.revision };
  });

  // A deploy gate's batch on a named revision: the V2 binary request and answer of /v2/models/.../infer.
  app.post<InferParams>(`${NODE_REVISIONS_PATH}/:rev/infer/:model/:variant`, async (req, reply) => {
    const c = candidate(req.params.model, req.params.variant, req.params.rev);
    const body = Buffer.from(
      await readBounded(req.body as IncomingMessage, req.headers['content-length'], opts.bodyLimitBytes),
    );
    const parsed = parseInferRequest(
      body,
      headerLength(req.headers['inference-header-content-length'], body.byteLength),
      runtime.signature(c.model),
      true,
    );
    const outputs = await runtime.revisions.run(c, parsed.inputs as WireTensor[], parsed.rows);
    const wanted =
      parsed.outputs === undefined ? outputs : outputs.filter((o) => parsed.outputs?.some((w) => w.name === o.name));
    const enc = encodeInferResponse(
      c.model,
      c.variant,
      parsed.id,
      wanted as Tensor[],
      wanted.map(() => true),
    );
    if (enc.jsonLength !== undefined) reply.header('inference-header-content-length', String(enc.jsonLength));
    return reply.header('content-type', 'application/octet-stream').send(enc.body);
  });
}

/** The node's received revisions: beside the store (`store.dir`/node-revisions), as many files as the store keeps. */
export function nodeRevisionCache(config: Readonly<Config>): RevisionCache {
  const variants = Object.values(config.models).reduce((n, m) => n + Object.keys(m.variants).length, 0);
  return new RevisionCache({
    dir: join(config.store.dir, 'node-revisions'),
    maxFileBytes: config.store.maxFileBytes,
    maxFiles: (config.store.keepRevisions + 1) * Math.max(1, variants),
  });
}
