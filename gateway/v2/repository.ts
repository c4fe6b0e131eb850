// Triton's model repository extension, so Triton tooling can list and load models: index (every model and variant
// with its state), load (file overrides `file:<variant>/model.onnx` become new revisions through the deploy pipeline;
// `config`, the model's section, goes through the apply path), unload (drain, then release the sessions).
// Registered inside the admin plugin: the admin token guards it.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { formatIssues } from '../../core/config.js';
import { type ErrorCode, SlogateError } from '../../core/errors.js';
import type { ConfigApplier } from '../../policies/apply-executor.js';
import { describeStep } from '../../policies/apply-plan.js';
import type { Deployer, DeployOutcome } from '../../policies/deploy-pipeline.js';

const FILE_KEY = /^file:([^/]+)\/model\.onnx$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const LoadSchema = z
  .strictObject({ parameters: z.record(z.string(), z.unknown()).optional() })
  .optional()
  .transform((b) => b?.parameters ?? {});

export interface RepositoryPluginOptions {
  readonly deployer: Deployer;
  readonly maxFileBytes: number;
  /** Unload, load again, and a model's config given with a load; absent: unload is refused, configs too. */
  readonly applier?: ConfigApplier | undefined;
}

export async function repositoryPlugin(app: FastifyInstance, opts: RepositoryPluginOptions): Promise<void> {
  const bodyLimit = Math.ceil((opts.maxFileBytes * 4) / 3) + 64 * 1024;
  const who = (req: { socket: { remoteAddress?: string | undefined } }) =>
    `repository API (${req.socket.remoteAddress ?? 'unknown'})`;

  app.post('/v2/repository/index', async () =>
    opts.deployer.index().map((e) => {
      const why = opts.applier?.unloaded(e.name);
      return why === undefined ? e : { ...e, state: 'UNAVAILABLE' as const, reason: why };
    }),
  );

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', { bodyLimit }, async (req) => {
    const parsed = LoadSchema.safeParse(req.body ?? undefined);
    if (!parsed.success)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_REQUEST',
        `invalid load request: ${formatIssues(parsed.error.issues).join('; ')}`,
      );
    const { model } = req.params;
    const { config, files } = parametersOf(parsed.data, opts.maxFileBytes);
    opts.deployer.describe(model);
    const applier = opts.applier;
    if (config !== undefined && applier === undefined)
      throw new SlogateError('SLOGATE_ERR_BAD_PARAMETER', 'parameters.config is not supported by this server');
    await applier?.loadModel(model);
    if (config !== undefined && applier !== undefined) {
      const desired = applier.withModelSection(model, config);
      const report = await applier.apply({
        config: desired,
        files: new Map([...files].map(([v, b]) => [`${model}/${v}`, b])),
        localPaths: true,
        who: who(req),
        why: 'POST /v2/repository/models/{model}/load with parameters.config',
      });
      const failed = report.steps.find((s) => !s.ok);
      if (failed !== undefined)
        throw new SlogateError((failed.code ?? 'SLOGATE_ERR_INTERNAL') as ErrorCode, `${failed.text}: ${failed.error}`);
      return { model, plan: report.plan.map(describeStep), steps: report.steps };
    }
    const results: DeployOutcome[] = [];
    for (const [variant, bytes] of files)
      results.push(
        await opts.deployer.deploy({
          model,
          variant,
          bytes,
          source: 'repository load',
          who: who(req),
          why: 'POST /v2/repository/models/{model}/load',
        }),
      );
    return { model, revisions: results };
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    opts.deployer.describe(req.params.model);
    if (opts.applier === undefined)
      throw new SlogateError('SLOGATE_ERR_APPLY_UNSUPPORTED', 'this server cannot unload models');
    return opts.applier.unloadModel(req.params.model, who(req));
  });
}

/** `config` (a JSON string of the model's section, slogate's shape) and the file overrides by variant. */
function parametersOf(
  parameters: Record<string, unknown>,
  maxFileBytes: number,
): { config: unknown; files: Map<string, Uint8Array> } {
  let config: unknown;
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (key !== 'config') {
      rest[key] = value;
      continue;
    }
    if (typeof value !== 'string')
      throw new SlogateError(
        'SLOGATE_ERR_BAD_PARAMETER',
        "parameters.config must be a JSON string of the model's section",
      );
    try {
      config = JSON.parse(value);
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_BAD_PARAMETER', `parameters.config is not JSON: ${(err as Error).message}`);
    }
  }
  return { config, files: filesOf(rest, maxFileBytes) };
}

/** The file overrides by variant; any other parameter is refused, not ignored. */
function filesOf(parameters: Record<string, unknown>, maxFileBytes: number): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [key, value] of Object.entries(parameters)) {
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
