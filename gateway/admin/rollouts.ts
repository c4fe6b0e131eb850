// The admin API of rollouts: list them with the evidence and the next decision, pause, resume, abort (roll back now).
// Thin: parse, call the runner (policies/rollout/rollout-runner.ts), encode.
import type { FastifyInstance } from 'fastify';
import type { RolloutRunner } from '../../policies/rollout/rollout-runner.js';

export interface RolloutsPluginOptions {
  readonly rollouts: RolloutRunner;
}

type VariantParams = { Params: { model: string; variant: string } };

export async function rolloutsPlugin(app: FastifyInstance, opts: RolloutsPluginOptions): Promise<void> {
  const { rollouts } = opts;
  app.get('/admin/rollouts', async () => rollouts.list());
  const one = (model: string, variant: string) =>
    rollouts.list().running.find((r) => r.model === model && r.variant === variant) ?? null;
  app.post<VariantParams>('/admin/rollouts/:model/:variant/pause', async (req) => {
    rollouts.pause(req.params.model, req.params.variant, true);
    return one(req.params.model, req.params.variant);
  });
  app.post<VariantParams>('/admin/rollouts/:model/:variant/resume', async (req) => {
    rollouts.pause(req.params.model, req.params.variant, false);
    return one(req.params.model, req.params.variant);
  });
  app.post<VariantParams>('/admin/rollouts/:model/:variant/abort', async (req) => {
    const { model, variant } = req.params;
    await rollouts.abort(model, variant, `admin API (${req.socket.remoteAddress ?? 'unknown'})`);
    return rollouts.list().finished.find((r) => r.model === model && r.variant === variant) ?? null;
  });
}
