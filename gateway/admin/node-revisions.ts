// A runtime node's admin endpoints for remote revisions, behind the admin token: a gateway asks whether the node has
// a revision (by its sha256), sends it when not, has the node load it and pass the load gate itself, switch a variant
// to it, drop it, and runs the deploy gates' batches on it by name. The protocol is in docs/lifecycle.md.
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type Config, formatIssues } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import type { NodeRevisions } from '../../policies/node-revisions.js';
import { NODE_REVISIONS_PATH } from '../../runtime/remote-revisions.js';
import { checkRevisionName, RevisionCache } from '../../runtime/revision-cache.js';
import type { WireTensor } from '../../runtime/worker/messages.js';
import { encodeInferResponse, headerLength, parseInferRequest } from '../v2/codec.js';
import { readBounded } from './revisions.js';

export interface NodeRevisionsOptions {
  readonly node: NodeRevisions;
  readonly maxFileBytes: number;
  readonly bodyLimitBytes: number;
}

const TargetSchema = z.strictObject({ model: z.string().min(1).max(128), variant: z.string().min(1).max(128) });

type RevParams = { Params: { rev: string } };
type InferParams = { Params: { rev: string; model: string; variant: string } };

function target(body: unknown): { model: string; variant: string } {
  const parsed = TargetSchema.safeParse(body ?? {});
  if (!parsed.success)
    throw new SlogateError(
      'SLOGATE_ERR_BAD_REQUEST',
      `invalid target: ${formatIssues(parsed.error.issues).join('; ')}`,
    );
  return parsed.data;
}

export async function nodeRevisionsPlugin(app: FastifyInstance, opts: NodeRevisionsOptions): Promise<void> {
  const { node } = opts;
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.get(NODE_REVISIONS_PATH, async () => ({
    active: node.served(),
    stored: node.cache.list().map((f) => f.revision),
    received: node.cache.received,
  }));

  // HEAD comes with it: 200 when the node has the file, 404 when it must be sent.
  app.get<RevParams>(`${NODE_REVISIONS_PATH}/:rev`, async (req) => {
    node.fileOf(req.params.rev);
    return { revision: req.params.rev };
  });

  app.put<RevParams>(`${NODE_REVISIONS_PATH}/:rev`, async (req, reply) => {
    checkRevisionName(req.params.rev);
    if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream'))
      throw new SlogateError('SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the model file as application/octet-stream');
    const bytes = await readBounded(req.body as IncomingMessage, req.headers['content-length'], opts.maxFileBytes);
    const stored = node.receive(req.params.rev, bytes);
    return reply.code(stored ? 201 : 200).send({ revision: req.params.rev, stored });
  });

  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/load`, async (req) => {
    const t = target(req.body);
    return node.load(node.candidate(t.model, t.variant, req.params.rev));
  });

  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/activate`, async (req) => {
    const t = target(req.body);
    const switched = await node.activate(node.candidate(t.model, t.variant, req.params.rev));
    if (switched.previous !== switched.active)
      app.log.info(
        { ...t, revision: switched.active, previous: switched.previous },
        `${t.model}/${t.variant} now serves ${switched.active} (sent by a gateway)`,
      );
    return { ...t, ...switched };
  });

  app.post<RevParams>(`${NODE_REVISIONS_PATH}/:rev/unload`, async (req) => {
    const t = target(req.body);
    await node.unload(node.candidate(t.model, t.variant, req.params.rev));
    return { unloaded: req.params.rev };
  });

  // A deploy gate's batch on a named revision: the V2 binary request and answer of /v2/models/.../infer.
  app.post<InferParams>(`${NODE_REVISIONS_PATH}/:rev/infer/:model/:variant`, async (req, reply) => {
    const c = node.candidate(req.params.model, req.params.variant, req.params.rev);
    const body = Buffer.from(
      await readBounded(req.body as IncomingMessage, req.headers['content-length'], opts.bodyLimitBytes),
    );
    const jsonLength = headerLength(req.headers['inference-header-content-length'], body.byteLength);
    const parsed = parseInferRequest(body, jsonLength, opts.node.signature(c.model), true);
    const outputs = await opts.node.run(c, parsed.inputs as WireTensor[], parsed.rows);
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
