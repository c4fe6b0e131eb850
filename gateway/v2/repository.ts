// Triton's model repository extension, so Triton tooling can list and load models: index (every model and variant
// with its state), load (file overrides `file:<variant>/model.onnx` become new revisions through the deploy
// pipeline), unload. Registered inside the admin plugin: the admin token guards it.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { formatIssues } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import type { Deployer, DeployOutcome } from '../../policies/deploy-pipeline.js';

export interface RepositoryPluginOptions {
  readonly deployer: Deployer;
  readonly maxFileBytes: number;
}

const FILE_KEY = /^file:([^/]+)\/model\.onnx$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const LoadSchema = z
  .strictObject({ parameters: z.record(z.string(), z.unknown()).optional() })
  .optional()
  .transform((b) => b?.parameters ?? {});

export async function repositoryPlugin(app: FastifyInstance, opts: RepositoryPluginOptions): Promise<void> {
  const bodyLimit = Math.ceil((opts.maxFileBytes * 4) / 3) + 64 * 1024;

  app.post('/v2/repository/index', async () => opts.deployer.index());

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', { bodyLimit }, async (req) => {
    const parsed = LoadSchema.safeParse(req.body ?? undefined);
    if (!parsed.success)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_REQUEST',
        `invalid load request: ${formatIssues(parsed.error.issues).join('; ')}`,
      );
    const files = filesOf(parsed.data, opts.maxFileBytes);
    opts.deployer.describe(req.params.model);
    const results: DeployOutcome[] = [];
    for (const [variant, bytes] of files)
      results.push(
        await opts.deployer.deploy({
          model: req.params.model,
          variant,
          bytes,
          source: 'repository load',
          who: `repository API (${req.socket.remoteAddress ?? 'unknown'})`,
          why: 'POST /v2/repository/models/{model}/load',
        }),
      );
    return { model: req.params.model, revisions: results };
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    opts.deployer.describe(req.params.model);
    throw new SlogateError(
      'SLOGATE_ERR_UNLOAD_UNSUPPORTED',
      `model '${req.params.model}' stays loaded: slogate serves the models of its config; remove it there and restart`,
    );
  });
}

/** The file overrides by variant; `config` and any other parameter are refused, not ignored. */
function filesOf(parameters: Record<string, unknown>, maxFileBytes: number): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [key, value] of Object.entries(parameters)) {
    if (key === 'config')
      throw new SlogateError(
        'SLOGATE_ERR_BAD_PARAMETER',
        'parameters.config is not supported: a model is configured in the slogate config, not through the repository API',
      );
    const m = FILE_KEY.exec(key);
    if (m === null)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_PARAMETER',
        `unknown load parameter ${JSON.stringify(key.slice(0, 64))}: expected "file:<variant>/model.onnx"`,
      );
    if (typeof value !== 'string' || !BASE64.test(value))
      throw new SlogateError('SLOGATE_ERR_BAD_PARAMETER', `${key} must be the file's bytes in base64`);
    if ((value.length * 3) / 4 > maxFileBytes + 3)
      throw new SlogateError('SLOGATE_ERR_REVISION_TOO_LARGE', `${key} is over store.maxFileBytes (${maxFileBytes})`);
    files.set(m[1] as string, new Uint8Array(Buffer.from(value, 'base64')));
  }
  return files;
}
