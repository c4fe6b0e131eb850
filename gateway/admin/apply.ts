// POST /admin/apply: `slogate apply`'s way in. The body is a whole config (as the CLI read it), with the revisions the
// CLI hashed and the files the plan needs; the server plans against what it runs and carries the plan out through
// the same applier as the config watch (policies/apply-executor.ts).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { formatIssues, parseConfig } from '../../core/config.js';
import { SlogateError } from '../../core/errors.js';
import type { ConfigApplier } from '../../policies/apply-executor.js';
import { describeStep } from '../../policies/apply-plan.js';

export interface ApplyPluginOptions {
  readonly applier: ConfigApplier;
  readonly maxFileBytes: number;
  readonly baseDir: string;
}

const ApplyBodySchema = z.strictObject({
  config: z.record(z.string(), z.unknown()),
  revisions: z.record(z.string(), z.string().regex(/^sha256:[0-9a-f]{64}$/)).optional(),
  files: z.record(z.string(), z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/)).optional(),
  dryRun: z.boolean().default(false),
});

export async function applyPlugin(app: FastifyInstance, opts: ApplyPluginOptions): Promise<void> {
  const bodyLimit = Math.ceil((opts.maxFileBytes * 4) / 3) + 1024 * 1024;
  app.post('/admin/apply', { bodyLimit }, async (req) => {
    const parsed = ApplyBodySchema.safeParse(req.body);
    if (!parsed.success)
      throw new SlogateError(
        'SLOGATE_ERR_BAD_REQUEST',
        `invalid apply: ${formatIssues(parsed.error.issues).join('; ')}`,
      );
    const body = parsed.data;
    let config: ReturnType<typeof parseConfig>;
    try {
      config = parseConfig(body.config, opts.baseDir, 'the applied config');
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_BAD_PARAMETER', (err as Error).message);
    }
    const files = new Map(
      Object.entries(body.files ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
    );
    const report = await opts.applier.apply({
      config,
      files,
      revisions: body.revisions ?? {},
      dryRun: body.dryRun,
      who: `admin API (${req.socket.remoteAddress ?? 'unknown'})`,
      why: String(req.headers['x-slogate-reason'] ?? 'slogate apply').slice(0, 200),
    });
    return { ...report, plan: report.plan, text: report.plan.map(describeStep) };
  });
}
