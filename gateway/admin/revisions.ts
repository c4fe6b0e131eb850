// The admin API of model revisions: show a model's revisions, upload a new one (raw bytes, bounded before they are
// buffered), roll back. Every call goes through the one deploy pipeline (policies/deploy-pipeline.ts).
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { formatIssues } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import { parseRolloutOverride } from '../../core/rollout-config.js';
import type { ConfigApplier } from '../../policies/apply-executor.js';
import type { Deployer } from '../../policies/deploy-pipeline.js';
import { repositoryPlugin } from '../v2/repository.js';

export interface RevisionsPluginOptions {
  readonly deployer: Deployer;
  readonly maxFileBytes: number;
  readonly applier?: ConfigApplier | undefined;
}

const RollbackSchema = z.strictObject({
  to: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .optional(),
});

type VariantParams = { Params: { model: string; variant: string } };

export async function revisionsPlugin(app: FastifyInstance, opts: RevisionsPluginOptions): Promise<void> {
  // The body stays a stream here: the handler bounds it by store.maxFileBytes while reading.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  await app.register(repositoryPlugin, {
    deployer: opts.deployer,
    maxFileBytes: opts.maxFileBytes,
    applier: opts.applier,
  });

  app.get<{ Params: { model: string } }>('/admin/models/:model', async (req) =>
    opts.deployer.describe(req.params.model),
  );

  app.post<VariantParams>('/admin/models/:model/variants/:variant/revisions', async (req, reply) => {
    const { model, variant } = req.params;
    if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream'))
      throw new SlogateError('SLOGATE_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the model file as application/octet-stream');
    const bytes = await readBounded(req.body as IncomingMessage, req.headers['content-length'], opts.maxFileBytes);
    const outcome = await opts.deployer.deploy({
      model,
      variant,
      bytes,
      source: 'admin upload',
      who: `admin API (${req.socket.remoteAddress ?? 'unknown'})`,
      why: String(req.headers['x-slogate-reason'] ?? 'deploy').slice(0, 200),
      rollout: parseRolloutOverride(header(req.headers['x-slogate-rollout'])),
    });
    return reply.code(outcome.result === 'active' ? 201 : outcome.result === 'rollout' ? 202 : 200).send(outcome);
  });

  app.post<VariantParams>('/admin/models/:model/variants/:variant/rollback', async (req) => {
    const parsed = RollbackSchema.safeParse(req.body ?? {});
    if (!parsed.success)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_REQUEST',
        `invalid rollback: ${formatIssues(parsed.error.issues).join('; ')}`,
      );
    return opts.deployer.rollback(
      req.params.model,
      req.params.variant,
      parsed.data.to,
      `admin API (${req.socket.remoteAddress ?? 'unknown'})`,
    );
  });
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a request body of at most `max` bytes; a declared or actual larger one is refused without buffering it. */
export async function readBounded(stream: IncomingMessage, declared: string | undefined, max: number) {
  const tooLarge = (n: string) =>
    new SlogateError('SLOGATE_ERR_REVISION_TOO_LARGE', `the file is ${n} bytes, over store.maxFileBytes (${max})`);
  if (declared !== undefined && Number(declared) > max) {
    stream.resume();
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).byteLength;
    if (size > max) {
      stream.resume();
      throw tooLarge(`over ${max}`);
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) throw new SlogateError('SLOGATE_ERR_NOT_ONNX', 'the body is empty: send the model file');
  return new Uint8Array(Buffer.concat(chunks, size));
}
