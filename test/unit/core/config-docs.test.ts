// The configuration reference and the deployment manifests stay true to the schema: every key path of ConfigSchema
// is documented in docs/configuration.md, its complete example parses, and the Kubernetes manifests parse, agree with
// each other, and embed slogate configs that load.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { ConfigSchema, loadConfigFile } from '../../../core/config.js';
import { ROOT, tempDir } from '../../helpers.js';

type AnySchema = z.core.$ZodType;

/**
 * Every key path a config may contain: object keys joined with '.', map entries as `<name>`, list elements as `[]`
 * (e.g. `models.<name>.variants.<name>.path`, `runtime.replicas[].url`). Wrappers (optional, default, prefault,
 * nullable, pipe, ...) are looked through; a union contributes the keys of each of its object options.
 */
function keyPaths(schema: AnySchema, prefix = ''): string[] {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  const join = (k: string) => (prefix === '' ? k : `${prefix}.${k}`);
  switch (def.type) {
    case 'object': {
      const out: string[] = [];
      for (const [k, v] of Object.entries(def.shape as Record<string, AnySchema>))
        out.push(join(k), ...keyPaths(v, join(k)));
      return out;
    }
    case 'record':
      return [join('<name>'), ...keyPaths(def.valueType as AnySchema, join('<name>'))];
    case 'array':
      return keyPaths(def.element as AnySchema, `${prefix}[]`);
    case 'union':
      return [...new Set((def.options as AnySchema[]).flatMap((o) => keyPaths(o, prefix)))];
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return keyPaths(def.innerType as AnySchema, prefix);
    case 'pipe':
      return [...new Set([...keyPaths(def.in as AnySchema, prefix), ...keyPaths(def.out as AnySchema, prefix)])];
    case 'lazy':
      return keyPaths((def.getter as () => AnySchema)(), prefix);
    default:
      return [];
  }
}

const DOC = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');

describe('docs/configuration.md', () => {
  test('the schema walk finds nested, mapped, listed and union keys (a new key cannot hide)', () => {
    const s = z.strictObject({
      a: z
        .strictObject({ b: z.number().default(1), c: z.array(z.strictObject({ url: z.string() })).default([]) })
        .prefault({}),
      m: z.record(z.string(), z.strictObject({ p: z.string().optional() })),
      u: z.union([z.literal('x'), z.strictObject({ s: z.strictObject({ v: z.string() }) })]).default('x'),
    });
    assert.deepEqual(
      keyPaths(s).sort(),
      ['a', 'a.b', 'a.c', 'a.c[].url', 'm', 'm.<name>', 'm.<name>.p', 'u', 'u.s', 'u.s.v'].sort(),
    );
  });

  test('every key path of ConfigSchema is documented (in backticks)', () => {
    const paths = keyPaths(ConfigSchema);
    assert.ok(paths.length >= 60, `the walk found only ${paths.length} keys: it no longer understands the schema`);
    for (const p of [
      'runtime.replicas[].url',
      'models.<name>.variants.<name>.path',
      'routes.<name>.policy.static.variant',
      'routes.<name>.cache.ttlMs',
    ])
      assert.ok(paths.includes(p), `the walk finds ${p}`);
    const missing = paths.filter((p) => !DOC.includes(`\`${p}\``));
    assert.deepEqual(missing, [], `keys missing from docs/configuration.md:\n  ${missing.join('\n  ')}`);
  });

  test('the complete example parses and validates', () => {
    const at = DOC.indexOf('## A complete example');
    assert.ok(at >= 0, 'the page has a complete example');
    const block = /```yaml\n([\s\S]*?)```/.exec(DOC.slice(at));
    assert.ok(block?.[1] !== undefined, 'the example is a yaml block');
    const file = join(tempDir(), 'example.yaml');
    writeFileSync(file, block[1]);
    const c = loadConfigFile(file, { SLOGATE_ADMIN_TOKEN: 'change-me-please' });
    for (const section of ['server', 'runtime', 'pricing', 'engine', 'models', 'routes'] as const)
      assert.ok(c[section] !== undefined);
    assert.equal(c.server.adminToken, 'change-me-please');
  });
});

interface K8sDoc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const K8S = join(ROOT, 'deploy', 'k8s');

function manifests(): { file: string; doc: K8sDoc }[] {
  const out: { file: string; doc: K8sDoc }[] = [];
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        `${file} parses`,
      );
      const doc = d.toJS() as K8sDoc | null;
      if (doc !== null) out.push({ file, doc });
    }
  }
  return out;
}

describe('deploy/k8s', () => {
  const all = existsSync(K8S) ? manifests() : [];
  const find = (kind: string) => all.filter((m) => m.doc.kind === kind).map((m) => m.doc);

  test('every manifest parses, names its kind and stays namespace-agnostic', () => {
    assert.ok(all.length >= 6, `found ${all.length} manifests`);
    for (const { file, doc } of all) {
      assert.ok(
        typeof doc.apiVersion === 'string' && typeof doc.kind === 'string' && typeof doc.metadata?.name === 'string',
        `${file}: apiVersion, kind, metadata.name`,
      );
      assert.equal(
        (doc.metadata as Record<string, unknown>).namespace,
        undefined,
        `${file}: ${doc.kind} ${doc.metadata?.name} sets no namespace`,
      );
    }
  });

  test('the slogate configs in the ConfigMaps load, with model files the image ships', () => {
    const maps = find('ConfigMap').filter((m) => m.data?.['slogate.yaml'] !== undefined);
    assert.ok(maps.length >= 2, 'a gateway and a runtime ConfigMap');
    for (const m of maps) {
      const file = join(tempDir(), 'slogate.yaml');
      writeFileSync(file, m.data?.['slogate.yaml'] as string);
      const c = loadConfigFile(file, ENV);
      for (const model of Object.values(c.models)) {
        for (const v of Object.values(model.variants)) {
          assert.match(v.path, /^\/app\//, `${m.metadata?.name}: ${v.path} is an absolute path in the image`);
          assert.ok(
            existsSync(join(ROOT, v.path.slice('/app/'.length))),
            `${v.path} is a file the image copies from the repository`,
          );
        }
      }
    }
  });

  const ENV = { SLOGATE_ADMIN_TOKEN: 'a-token-of-16-chars', SLOGATE_NAMESPACE: 'ns' };
  const component = (d: K8sDoc) =>
    (d.metadata as { labels?: Record<string, string> }).labels?.['app.kubernetes.io/component'];

  /** The workload's container and the slogate.yaml of the ConfigMap it mounts. */
  const workload = (kind: string, of: 'gateway' | 'runtime') => {
    const w = find(kind).find((d) => component(d) === of);
    assert.ok(w !== undefined, `a ${kind} of the ${of}`);
    type Container = {
      command: string[];
      readinessProbe?: { httpGet?: { path: string } };
      livenessProbe?: { httpGet?: { path: string } };
    };
    const pod = (
      w.spec?.template as { spec: { containers: Container[]; volumes: { configMap?: { name: string } }[] } } | undefined
    )?.spec;
    assert.ok(pod !== undefined, `${kind} has a pod template`);
    const mapName = pod.volumes.find((v) => v.configMap !== undefined)?.configMap?.name;
    const text = find('ConfigMap').find((m) => m.metadata?.name === mapName)?.data?.['slogate.yaml'];
    assert.ok(text !== undefined, `${kind} mounts a ConfigMap with a slogate.yaml`);
    const file = join(tempDir(), 'slogate.yaml');
    writeFileSync(file, text);
    return {
      w,
      container: pod.containers[0],
      config: loadConfigFile(file, ENV),
    };
  };

  test('the gateway serves its config; the runtime nodes run `slogate runtime`; both report V2 health', () => {
    const gw = workload('Deployment', 'gateway');
    const rt = workload('Deployment', 'runtime');
    assert.deepEqual(gw.container?.command, ['node', 'dist/cli.js', 'serve', '--config', '/etc/slogate/slogate.yaml']);
    assert.deepEqual(rt.container?.command, [
      'node',
      'dist/cli.js',
      'runtime',
      '--config',
      '/etc/slogate/slogate.yaml',
    ]);
    for (const c of [gw.container, rt.container]) {
      assert.equal(c?.readinessProbe?.httpGet?.path, '/v2/health/ready');
      assert.equal(c?.livenessProbe?.httpGet?.path, '/v2/health/live');
    }
    assert.deepEqual(
      Object.keys(gw.config.models),
      Object.keys(rt.config.models),
      'the gateway and the nodes serve the same models',
    );
    for (const [name, m] of Object.entries(gw.config.models))
      assert.deepEqual(
        Object.keys(m.variants),
        Object.keys(rt.config.models[name]?.variants ?? {}),
        `the same variants of ${name}`,
      );
  });

  test('the gateway discovers the runtime Deployment through its headless Service, and the HPA scales the gateway', () => {
    const gw = workload('Deployment', 'gateway');
    const rt = workload('Deployment', 'runtime');
    assert.equal(find('StatefulSet').length, 0, 'no StatefulSet for stable names');
    const podLabels =
      (rt.w.spec?.template as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels ?? {};
    const headless = find('Service').find((svc) => {
      const sel = (svc.spec?.selector ?? {}) as Record<string, string>;
      return Object.entries(sel).every(([k, v]) => podLabels[k] === v) && Object.keys(sel).length > 0;
    });
    assert.ok(headless !== undefined, 'a Service selects the runtime pods');
    assert.equal(headless.spec?.clusterIP, 'None', 'it is headless: one record per pod');
    assert.notEqual(headless.spec?.publishNotReadyAddresses, true, 'only ready pods are listed');
    const entries = gw.config.runtime.replicas;
    assert.equal(entries.length, 1, 'one DNS entry, no per-pod URLs');
    const entry = entries[0] as { dns?: string; port?: number };
    assert.equal(
      entry.dns,
      `${headless.metadata?.name}.ns.svc.cluster.local`,
      'the gateway names the Service in its namespace',
    );
    const ports = headless.spec?.ports as { port: number }[];
    assert.ok(
      ports.some((p) => p.port === entry.port),
      'on the port the Service exposes',
    );
    assert.equal(gw.config.runtime.workers, 0);
    const targetOf = (h: K8sDoc) => h.spec?.scaleTargetRef as { kind: string; name: string } | undefined;
    const hpas = find('HorizontalPodAutoscaler');
    const gwHpa = hpas.find((h) => targetOf(h)?.name === gw.w.metadata?.name);
    assert.equal(targetOf(gwHpa ?? {})?.kind, 'Deployment', 'an HPA scales the gateway');
    const rtHpa = hpas.find((h) => targetOf(h)?.name === rt.w.metadata?.name);
    assert.equal(targetOf(rtHpa ?? {})?.kind, 'Deployment', 'an HPA scales the runtime nodes');
    const metrics = rtHpa?.spec?.metrics as { type: string; external?: { metric: { name: string } } }[];
    assert.deepEqual(
      metrics.map((m) => m.external?.metric.name),
      ['slogate_slo_load_ratio'],
      'on SLO headroom, not CPU',
    );
  });
  test('a NetworkPolicy admits only gateway pods (and a labelled scrape namespace) to the runtime nodes', () => {
    const gw = workload('Deployment', 'gateway');
    const rt = workload('Deployment', 'runtime');
    type Peer = { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: unknown };
    type Rule = { from: Peer[]; ports: { port: string | number }[] };
    const policy = find('NetworkPolicy')[0];
    const spec = policy?.spec as
      | { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Rule[] }
      | undefined;
    assert.ok(spec !== undefined, 'a NetworkPolicy');
    const podLabels = (w: K8sDoc) =>
      (w.spec?.template as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels;
    assert.deepEqual(spec.podSelector.matchLabels, podLabels(rt.w), 'it selects the runtime pods');
    assert.deepEqual(spec.policyTypes, ['Ingress']);
    const podPeers = spec.ingress.flatMap((r) => r.from).filter((p) => p.podSelector !== undefined);
    assert.deepEqual(
      podPeers.map((p) => p.podSelector?.matchLabels),
      [podLabels(gw.w)],
      'the only pods admitted are the gateways',
    );
    for (const r of spec.ingress) {
      assert.ok(r.from.length > 0, 'no rule admits everyone');
      assert.deepEqual(
        r.ports.map((p) => p.port),
        ['http'],
        "only the runtime's V2 port",
      );
    }
  });
});
