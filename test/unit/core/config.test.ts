import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { interpolateEnv, loadConfigFile, parseConfig } from '../../../core/config.js';
import { SlogateError } from '../../../core/errors.js';
import { digitsRawConfig, ROOT, tempDir } from '../../helpers.js';

function configError(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SlogateError);
    assert.equal(err.code, 'SLOGATE_ERR_CONFIG');
    return err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  assert.fail('expected a config error');
}

test('defaults fill every section and the result is deeply frozen', () => {
  const c = parseConfig(digitsRawConfig(), ROOT);
  assert.equal(c.server.bodyLimitBytes, 8 * 1024 * 1024);
  assert.equal(c.runtime.device, 'cpu');
  assert.equal(c.routes.digits?.objective, 'max-accuracy');
  assert.deepEqual(c.routes.digits?.policy, { kind: 'adaptive' });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.routes.digits?.slo));
});

test('an invalid config lists every problem as path: message', () => {
  const raw = digitsRawConfig({
    server: { port: 70000 },
    runtime: { device: 'tpu' },
    routes: {
      a: { model: 'nope', slo: { p99Ms: -1 } },
      b: { model: 'digits', slo: { p99Ms: 10 }, policy: { static: { variant: 'huge' } }, extra: 1 },
    },
  });
  const lines = configError(() => parseConfig(raw, ROOT));
  const paths = lines.map((l) => l.split(':')[0]);
  for (const p of ['server.port', 'runtime.device', 'routes.a.slo.p99Ms', 'routes.b'])
    assert.ok(paths.includes(p), `missing ${p} in ${lines.join(' | ')}`);
});

test('cross-references are checked: unknown model, unknown static variant', () => {
  const raw = digitsRawConfig({
    routes: {
      a: { model: 'nope', slo: { p99Ms: 5 } },
      b: { model: 'digits', slo: { p99Ms: 5 }, policy: { static: { variant: 'huge' } } },
    },
  });
  const lines = configError(() => parseConfig(raw, ROOT));
  assert.ok(lines.some((l) => l.startsWith('routes.a.model:')));
  assert.ok(lines.some((l) => l.startsWith('routes.b.policy.static.variant:')));
});

test('every policy form normalises to one object with a kind (YAML forms and the normalised one alike)', () => {
  const cases: { policy: unknown; want: unknown }[] = [
    { policy: undefined, want: { kind: 'adaptive' } },
    { policy: 'adaptive', want: { kind: 'adaptive' } },
    { policy: { kind: 'adaptive' }, want: { kind: 'adaptive' } },
    {
      policy: { static: { variant: 'tiny' } },
      want: { kind: 'static', variant: 'tiny', maxBatch: 1, maxQueueDelayMs: 0 },
    },
    {
      policy: { static: { variant: 'tiny', maxBatch: 8, maxQueueDelayMs: 2 } },
      want: { kind: 'static', variant: 'tiny', maxBatch: 8, maxQueueDelayMs: 2 },
    },
    {
      policy: { kind: 'static', variant: 'tiny' },
      want: { kind: 'static', variant: 'tiny', maxBatch: 1, maxQueueDelayMs: 0 },
    },
    { policy: { aimd: { variant: 'small' } }, want: { kind: 'aimd', variant: 'small', maxBatch: 64 } },
    { policy: { kind: 'aimd', variant: 'small', maxBatch: 8 }, want: { kind: 'aimd', variant: 'small', maxBatch: 8 } },
  ];
  for (const { policy, want } of cases) {
    const route = { model: 'digits', slo: { p99Ms: 5 }, ...(policy === undefined ? {} : { policy }) };
    const c = parseConfig(digitsRawConfig({ routes: { r: route } }), ROOT);
    assert.deepEqual(c.routes.r?.policy, want, JSON.stringify(policy));
  }
  for (const policy of [
    'static',
    { kind: 'static' },
    { kind: 'aimd', variant: 'tiny', maxQueueDelayMs: 1 },
    { static: {}, aimd: {} },
  ])
    configError(() =>
      parseConfig(digitsRawConfig({ routes: { r: { model: 'digits', slo: { p99Ms: 5 }, policy } } }), ROOT),
    );
});

test('${VAR} and ${VAR:-default} are replaced in values (typed when a whole value), never in comments; unset without default fails', () => {
  const out = interpolateEnv(
    { port: '${PORT:-8000}', host: 'h-${HOST}', flag: '${ON}' },
    { HOST: 'x', ON: 'true' },
  ) as Record<string, unknown>;
  assert.deepEqual(out, { port: 8000, host: 'h-x', flag: true });
  const lines = configError(() => interpolateEnv({ a: { b: '${MISSING}' } }, {}));
  assert.ok(lines[0]?.startsWith('a.b:'));
  const dir = tempDir();
  const file = join(dir, 'c.yaml');
  writeFileSync(file, `# a comment with \${NOT_SET}\nmodels: {}\nroutes: {}\nserver:\n  port: \${P:-1234}\n`);
  const lines2 = configError(() => loadConfigFile(file, {}));
  assert.ok(
    lines2.some((l) => l.startsWith('routes:')),
    'fails on the empty routes, not on the comment',
  );
});

test('relative model paths resolve against the config file directory', () => {
  const c = parseConfig(
    { models: { m: { variants: { a: { path: 'x/a.onnx' } } } }, routes: { r: { model: 'm', slo: { p99Ms: 1 } } } },
    '/base/dir',
  );
  assert.equal(c.models.m?.variants.a?.path, '/base/dir/x/a.onnx');
  assert.equal(c.models.m?.metadata, '/base/dir/x/model.yaml');
});

test('in a config file, a quoted reference stays a string, a plain one is typed, and ${X:-} is empty', () => {
  const dir = tempDir();
  const file = join(dir, 'c.yaml');
  writeFileSync(
    file,
    [
      'server:',
      '  port: ${P:-8123}',
      '  adminToken: "${TOKEN}"',
      '  host: ${HOST:-}127.0.0.1',
      'models: { m: { variants: { a: { path: a.onnx } } } }',
      'routes: { r: { model: m, slo: { p99Ms: 5 } } }',
      '',
    ].join('\n'),
  );
  const c = loadConfigFile(file, { TOKEN: '1234567890' });
  assert.equal(c.server.port, 8123);
  assert.equal(c.server.adminToken, '1234567890', 'a quoted all-digit value stays a string');
  assert.equal(c.server.host, '127.0.0.1');
  const lines = configError(() => loadConfigFile(file, {}));
  assert.ok(
    lines.some((l) => l.startsWith('server.adminToken:')),
    lines.join('|'),
  );
});

test('a route cache is bounded in bytes: 64 MiB by default, at most 1 GiB, whatever maxEntries says', () => {
  const withCache = (cache: Record<string, unknown>) =>
    digitsRawConfig({ routes: { digits: { model: 'digits', slo: { p99Ms: 10 }, cache } } });
  assert.equal(
    parseConfig(withCache({ maxEntries: 10_000_000 }), ROOT).routes.digits?.cache?.maxBytes,
    64 * 1024 * 1024,
  );
  assert.equal(
    parseConfig(withCache({ maxEntries: 10, maxBytes: 1 << 20 }), ROOT).routes.digits?.cache?.maxBytes,
    1 << 20,
  );
  for (const maxBytes of [2 ** 30 + 1, 1024, 1_500_000.5, '64MiB'])
    assert.ok(
      configError(() => parseConfig(withCache({ maxEntries: 10, maxBytes }), ROOT)).some((l) =>
        l.startsWith('routes.digits.cache.maxBytes'),
      ),
      String(maxBytes),
    );
});

test('runtime.health: defaults, a backoff cap below its start, and a minimum the replicas can never reach', () => {
  const h = parseConfig(digitsRawConfig(), ROOT).runtime.health;
  assert.deepEqual(h, { minReadySlots: 1, livenessTimeoutMs: 60_000, respawnInitialMs: 500, respawnMaxMs: 30_000 });
  const lines = configError(() =>
    parseConfig(
      digitsRawConfig({
        runtime: {
          workers: 1,
          replicas: [{ url: 'http://127.0.0.1:9', concurrency: 2 }],
          health: { minReadySlots: 4, respawnInitialMs: 1000, respawnMaxMs: 100 },
        },
      }),
      ROOT,
    ),
  );
  assert.ok(
    lines.some((l) => l.startsWith('runtime.health.respawnMaxMs:')),
    lines.join(' | '),
  );
  assert.ok(
    lines.some((l) => /^runtime\.health\.minReadySlots: 4 ready slots can never be met: the replicas have 3/.test(l)),
    lines.join(' | '),
  );
  // With workers: auto the slot count is known only at start-up: not checked here.
  assert.equal(
    parseConfig(digitsRawConfig({ runtime: { workers: 'auto', health: { minReadySlots: 8 } } }), ROOT).runtime.health
      .minReadySlots,
    8,
  );
});

test('runtime.replicas: a DNS entry takes a port or a port name, never both, and its node count is open', () => {
  const dns = parseConfig(
    digitsRawConfig({
      runtime: {
        workers: 0,
        replicas: [{ dns: 'slogate-runtime.ns.svc.cluster.local', port: 8000, resolver: '127.0.0.1:5353' }],
        health: { minReadySlots: 8 },
      },
    }),
    ROOT,
  ).runtime.replicas[0];
  assert.deepEqual(dns, {
    dns: 'slogate-runtime.ns.svc.cluster.local',
    port: 8000,
    resolver: '127.0.0.1:5353',
    concurrency: 2,
    resolveIntervalMs: 5000,
  });
  for (const [entry, path] of [
    [{ dns: 'rt.test' }, 'runtime.replicas.0'],
    [{ dns: 'rt.test', port: 8000, portName: 'http' }, 'runtime.replicas.0'],
    [{ dns: 'not a name', port: 8000 }, 'runtime.replicas.0'],
    [{ dns: 'rt.test', portName: 'HTTP_PORT' }, 'runtime.replicas.0'],
  ] as const) {
    const lines = configError(() => parseConfig(digitsRawConfig({ runtime: { replicas: [entry] } }), ROOT));
    assert.ok(
      lines.some((l) => l.startsWith(path)),
      `${JSON.stringify(entry)}: ${lines.join(' | ')}`,
    );
  }
});
