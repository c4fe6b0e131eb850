// The declarative path on real servers and real workers: `slogate apply` adds a variant and a route, then removes them
// while requests run (none of them fails; the removed variant's sessions are released afterwards); the config watch
// picks up a ConfigMap-style symlink swap and refuses an invalid file; Triton's unload and load round trip.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { applyCommand } from '../../cli-revisions.js';
import { loadConfigFile } from '../../core/config.js';
import { createSlogate, type Slogate } from '../../main.js';
import { revisionOf } from '../../runtime/model-store.js';
import { DIGITS_DIR, digitsConfig, digitsRawConfig, tempDir } from '../helpers.js';

const TOKEN = 'test-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const path = (v: string) => join(DIGITS_DIR, `${v}.onnx`);
const ROW = { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] };

type Routes = Record<string, unknown>;

function raw(dir: string, variants: string[], routes: Routes, server: Record<string, unknown> = {}) {
  return digitsRawConfig({
    server: {
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      warmup: { requests: 0 },
      adminToken: TOKEN,
      drainTimeoutMs: 5000,
      ...server,
    },
    runtime: { workers: 1, profile: { enabled: false } },
    store: { dir: join(dir, 'store') },
    models: {
      digits: {
        metadata: join(DIGITS_DIR, 'model.yaml'),
        variants: Object.fromEntries(variants.map((v) => [v, { path: path(v) }])),
      },
    },
    routes,
  });
}

const staticRoute = (variant: string) => ({ model: 'digits', slo: { p99Ms: 500 }, policy: { static: { variant } } });

function start(config: ReturnType<typeof digitsConfig>, configFile?: string): Promise<Slogate> {
  return createSlogate({ config, configFile, logger: pino({ level: 'silent' }), defaultMetrics: false });
}

async function infer(sg: Slogate, route: string, version?: string) {
  const url = `/v2/models/${route}${version === undefined ? '' : `/versions/${version}`}/infer`;
  const res = await sg.app.inject({ method: 'POST', url, payload: ROW });
  return {
    status: res.statusCode,
    code: res.headers['x-slogate-error-code'],
    body: res.json() as Record<string, unknown>,
  };
}

/** The sessions a worker holds, as model/variant@revision (asking it to drop a variant it never had). */
async function sessions(sg: Slogate): Promise<string[]> {
  const r = sg.runtime.pool.replicas[0];
  const res = await r?.revision?.({ kind: 'remove', model: 'digits', variant: 'never-existed' });
  assert.ok(res?.ok === true && res.kind === 'remove');
  return res.sessions;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('slogate apply adds and removes variants and routes while serving', () => {
  const dir = tempDir('slogate-apply-');
  let sg: Slogate;
  let url: string;
  before(async () => {
    sg = await start(digitsConfig(raw(dir, ['small', 'tiny'], { digits: staticRoute('small') })));
    url = await sg.listen(0);
  });
  after(async () => {
    await sg.close();
  });

  async function apply(variants: string[], routes: Routes, args: string[] = []) {
    const file = join(dir, 'desired.json');
    writeFileSync(file, JSON.stringify(raw(dir, variants, routes)));
    let out = '';
    const status = await applyCommand(
      ['--config', file, '--url', url, ...args],
      { token: TOKEN, out: (t) => (out += t) },
      (f) => ({ config: loadConfigFile(f, {}), revisionOfFile: async (p) => revisionOf(readFileSync(p)) }),
    );
    return { status, out };
  }

  test('a new variant and a route naming it are added; --dry-run changes nothing', async () => {
    const routes = { digits: staticRoute('medium'), 'digits-tiny': staticRoute('tiny') };
    const dry = await apply(['small', 'tiny', 'medium'], routes, ['--dry-run']);
    assert.equal(dry.status, 0, dry.out);
    assert.match(dry.out, /variant +digits\/medium: add sha256:\w+/);
    assert.match(dry.out, /route +digits-tiny: add/);
    assert.equal(sg.runtime.model('digits').variants.has('medium'), false);
    const done = await apply(['small', 'tiny', 'medium'], routes);
    assert.equal(done.status, 0, done.out);
    assert.match(done.out, /done +variant +digits\/medium: add/);
    const medium = await infer(sg, 'digits');
    assert.equal(medium.status, 200, JSON.stringify(medium.body));
    assert.equal(medium.body.model_version, 'medium');
    assert.equal((await infer(sg, 'digits-tiny')).body.model_version, 'tiny');
    assert.ok((await sessions(sg)).some((s) => s.startsWith('digits/medium@')));
    const index = (await sg.app.inject({ method: 'POST', url: '/v2/repository/index', headers: auth })).json() as {
      version: string;
      state: string;
    }[];
    assert.equal(index.find((e) => e.version === 'medium')?.state, 'READY');
  });

  test('removing the variant and the route while requests run: none fails, then the sessions are released', async () => {
    let stop = false;
    const statuses: number[] = [];
    const removedRoute: unknown[] = [];
    const load = (async () => {
      while (!stop) {
        const batch = await Promise.all([
          ...Array.from({ length: 6 }, () => infer(sg, 'digits')),
          infer(sg, 'digits-tiny'),
        ]);
        for (const r of batch.slice(0, 6)) statuses.push(r.status);
        const last = batch[6];
        if (last !== undefined && last.status !== 200) removedRoute.push(last.code);
      }
    })();
    await until('requests on medium', () => statuses.length >= 12);
    const done = await apply(['small', 'tiny'], { digits: staticRoute('small') });
    const during = statuses.length;
    await until('requests after the apply', () => statuses.length >= during + 12);
    stop = true;
    await load;
    assert.equal(done.status, 0, done.out);
    assert.match(done.out, /done +route +digits-tiny: remove/);
    assert.match(done.out, /done +variant +digits\/medium: remove/);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every request to the route answered',
    );
    for (const c of removedRoute) assert.equal(c, 'SLOGATE_ERR_ROUTE_NOT_FOUND');
    assert.equal((await infer(sg, 'digits')).body.model_version, 'small');
    assert.equal(sg.runtime.model('digits').variants.has('medium'), false);
    assert.deepEqual(
      (await sessions(sg)).filter((s) => s.startsWith('digits/medium@')),
      [],
    );
    const pinned = await infer(sg, 'digits', 'medium');
    assert.equal(pinned.code, 'SLOGATE_ERR_VARIANT_NOT_FOUND');
  });

  test('what needs a restart is reported as a failed step (exit 1); the rest of the plan is carried out', async () => {
    const file = join(dir, 'desired.json');
    const doc = raw(dir, ['small', 'tiny'], { digits: { ...staticRoute('small'), slo: { p99Ms: 450 } } }) as {
      models: Record<string, unknown>;
    };
    doc.models.other = { variants: { a: { path: path('tiny') } } };
    writeFileSync(file, JSON.stringify(doc));
    let out = '';
    const status = await applyCommand(
      ['--config', file, '--url', url],
      { token: TOKEN, out: (t) => (out += t) },
      (f) => ({ config: loadConfigFile(f, {}), revisionOfFile: async (p) => revisionOf(readFileSync(p)) }),
    );
    assert.equal(status, 1, out);
    assert.match(out, /FAILED +restart +model other is new.*SLOGATE_ERR_APPLY_UNSUPPORTED/);
    assert.equal(sg.router.route('digits').config.slo.p99Ms, 450);
  });
});

describe('server.watchConfig', () => {
  const dir = tempDir('slogate-watch-');
  let sg: Slogate;
  let generation = 0;
  const link = join(dir, 'slogate.json');

  /** Writes a new version the way the kubelet updates a ConfigMap: a new directory, then a swap of `..data`. */
  function publish(doc: unknown): void {
    generation++;
    const version = join(dir, `..v${generation}`);
    mkdirSync(version);
    writeFileSync(join(version, 'slogate.json'), typeof doc === 'string' ? doc : JSON.stringify(doc));
    symlinkSync(`..v${generation}`, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  }

  const reloads = async (result: string) =>
    (await sg.metrics.configReloads.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  before(async () => {
    publish(raw(dir, ['small', 'tiny'], { digits: staticRoute('small') }, { watchConfig: true }));
    symlinkSync('..data/slogate.json', link);
    sg = await start(loadConfigFile(link, {}), link);
  });
  after(async () => {
    await sg.close();
  });

  test('a ConfigMap update is applied: a changed SLO at once, a new route', async () => {
    assert.ok(sg.configWatch !== undefined);
    publish(
      raw(
        dir,
        ['small', 'tiny'],
        { digits: { ...staticRoute('small'), slo: { p99Ms: 321 } }, fast: staticRoute('tiny') },
        { watchConfig: true },
      ),
    );
    await until('the change to apply', () => sg.router.routes.has('fast'), 5000);
    assert.equal(sg.router.route('digits').config.slo.p99Ms, 321);
    assert.equal((await infer(sg, 'fast')).body.model_version, 'tiny');
    assert.equal(await reloads('applied'), 1);
  });

  test('an invalid file is counted and refused as a whole; the running config keeps serving', async () => {
    publish(
      raw(
        dir,
        ['small', 'tiny'],
        { digits: { ...staticRoute('small'), slo: { p99Ms: 111 } }, broken: staticRoute('nope') },
        { watchConfig: true },
      ),
    );
    await until('the invalid file to be seen', async () => (await reloads('invalid')) === 1, 5000);
    publish('{ not: [valid');
    await until('the unparsable file to be seen', async () => (await reloads('invalid')) === 2, 5000);
    assert.equal(sg.router.route('digits').config.slo.p99Ms, 321, 'nothing of the invalid file applied');
    assert.equal(sg.router.routes.has('broken'), false);
    assert.equal((await infer(sg, 'digits')).status, 200);
    assert.equal(await reloads('applied'), 1);
  });
});

describe("Triton's repository unload and load", () => {
  const dir = tempDir('slogate-unload-');
  let sg: Slogate;
  const post = (url: string, payload?: object) =>
    sg.app.inject({ method: 'POST', url, headers: auth, ...(payload === undefined ? {} : { payload }) });
  const index = async () =>
    (await post('/v2/repository/index')).json() as { version: string; state: string; reason: string }[];

  before(async () => {
    sg = await start(digitsConfig(raw(dir, ['small', 'tiny'], { digits: { model: 'digits', slo: { p99Ms: 500 } } })));
  });
  after(async () => {
    await sg.close();
  });

  test('apply, unload and load need the admin token', async () => {
    for (const url of ['/admin/apply', '/v2/repository/models/digits/unload', '/v2/repository/models/digits/load'])
      assert.equal((await sg.app.inject({ method: 'POST', url, payload: {} })).statusCode, 401, url);
    assert.equal(
      (await index()).every((e) => e.state === 'READY'),
      true,
      'nothing changed',
    );
  });

  test('unload drains and releases the sessions; infer gets a clear code; load brings the model back', async () => {
    const racing = Array.from({ length: 8 }, () => infer(sg, 'digits'));
    const res = await post('/v2/repository/models/digits/unload');
    assert.equal(res.statusCode, 200, res.body);
    for (const r of await Promise.all(racing))
      assert.ok(r.status === 200 || r.code === 'SLOGATE_ERR_MODEL_UNLOADED', `answered or refused: ${r.status}`);
    for (const e of await index()) {
      assert.equal(e.state, 'UNAVAILABLE');
      assert.match(e.reason, /unloaded by repository API/);
    }
    assert.equal((await sg.app.inject({ url: '/v2/models/digits/ready' })).statusCode, 503);
    const refused = await infer(sg, 'digits');
    assert.equal(refused.status, 503);
    assert.equal(refused.code, 'SLOGATE_ERR_MODEL_UNLOADED');
    assert.deepEqual(
      (await sessions(sg)).filter((s) => s.startsWith('digits/')),
      [],
    );
    const load = await post('/v2/repository/models/digits/load', {});
    assert.equal(load.statusCode, 200, load.body);
    for (const e of await index()) assert.equal(e.state, 'READY');
    assert.equal((await sg.app.inject({ url: '/v2/models/digits/ready' })).statusCode, 200);
    assert.equal((await infer(sg, 'digits')).status, 200);
  });

  test("load with parameters.config applies the model's section: a variant is added, validated by the schema", async () => {
    const section = {
      metadata: join(DIGITS_DIR, 'model.yaml'),
      variants: { small: { path: path('small') }, tiny: { path: path('tiny') }, medium: { path: 'medium.onnx' } },
    };
    const bad = await post('/v2/repository/models/digits/load', {
      parameters: { config: JSON.stringify({ ...section, maxBatch: -1 }) },
    });
    assert.equal(bad.headers['x-slogate-error-code'], 'SLOGATE_ERR_BAD_PARAMETER');
    const res = await post('/v2/repository/models/digits/load', {
      parameters: {
        config: JSON.stringify(section),
        'file:medium/model.onnx': readFileSync(path('medium')).toString('base64'),
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await index()).find((e) => e.version === 'medium')?.state, 'READY');
    const pinned = await infer(sg, 'digits', 'medium');
    assert.equal(pinned.status, 200, JSON.stringify(pinned.body));
    assert.equal(pinned.body.model_version, 'medium');
  });
});
