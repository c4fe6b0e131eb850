// V2 health and metadata endpoints. Health answers both ways the spec texts describe: the status code says it
// (200 true, 503 false) and a JSON body repeats it.
import type { FastifyInstance } from 'fastify';
import { SlogateError } from '../../core/errors.js';
import type { Router, RouteState } from '../../policies/router.js';
import { encodeLoadReport, LOAD_REPORT_HEADER } from '../../runtime/load-report.js';
import type { Runtime } from '../../runtime/runtime.js';

export interface MetadataPluginOptions {
  readonly router: Router;
  readonly runtime: Runtime;
  readonly version: string;
  /** True while the server admits work (false while draining). */
  readonly admitting: () => boolean;
}

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'schedule_policy', 'parameters'] as const;

interface ModelParams {
  route: string;
  version?: string;
}

export async function metadataPlugin(app: FastifyInstance, opts: MetadataPluginOptions): Promise<void> {
  const { router, runtime } = opts;
  const serving = () => runtime.ready && opts.admitting();
  // Ready: started, admitting, and enough ready slots for every model; what inference would answer right now.
  const readiness = (): { ready: boolean; reason?: string } => {
    if (!runtime.ready) return { ready: false, reason: `the runtime is ${runtime.state}` };
    if (!opts.admitting()) return { ready: false, reason: 'draining' };
    const r = runtime.health.readiness();
    return r.ready ? { ready: true } : { ready: false, reason: r.reason as string };
  };

  app.get('/v2', async () => ({ name: 'slogate', version: opts.version, extensions: SERVER_EXTENSIONS }));
  app.get('/v2/health/live', async (_req, reply) => {
    const l = runtime.health.liveness();
    return reply.code(l.live ? 200 : 503).send(l.live ? { live: true } : { live: false, reason: l.reason });
  });
  app.get('/v2/health/ready', async (_req, reply) => {
    const r = readiness();
    // The cheap probe gateways poll carries the load report too.
    if (runtime.ready) reply.header(LOAD_REPORT_HEADER, encodeLoadReport(runtime.loadReport()));
    return reply.code(r.ready ? 200 : 503).send(r);
  });

  const lookup = (p: ModelParams): RouteState => {
    const r = router.route(p.route);
    if (p.version !== undefined && !r.allowed.includes(p.version))
      throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `model '${p.route}' has no version '${p.version}'`);
    return r;
  };

  const modelReady = async (
    req: { params: ModelParams },
    reply: { code(n: number): { send(b: unknown): unknown } },
  ) => {
    const r = lookup(req.params);
    const ok =
      serving() &&
      r.model.signature !== undefined &&
      runtime.health.modelReady(r.model.name) &&
      runtime.lifecycle.unloaded(r.model.name) === undefined;
    return reply.code(ok ? 200 : 503).send({ name: r.name, ready: ok });
  };
  app.get<{ Params: ModelParams }>('/v2/models/:route/ready', modelReady);
  app.get<{ Params: ModelParams }>('/v2/models/:route/versions/:version/ready', modelReady);

  const modelMetadata = async (req: { params: ModelParams }) => {
    const r = lookup(req.params);
    const sig = runtime.signature(r.model.name);
    const spec = (t: { name: string; datatype: string; shape: readonly number[] }) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape,
    });
    return {
      name: r.name,
      versions: req.params.version !== undefined ? [req.params.version] : r.allowed,
      platform: 'onnx_onnxv1',
      inputs: sig.inputs.map(spec),
      outputs: sig.outputs.map(spec),
    };
  };
  app.get<{ Params: ModelParams }>('/v2/models/:route', modelMetadata);
  app.get<{ Params: ModelParams }>('/v2/models/:route/versions/:version', modelMetadata);
}
