// Model revisions end to end with real files and real workers: each bad revision of models/digits/revisions/ is
// stopped by its own gate while the route answers from the active revision; a good one goes live, survives a
// restart, and a rollback restores the old one. Bad input gets its own error code.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { applyCommand, revisionsCommand } from '../../cli-revisions.js';
import { loadConfigFile, parseConfig } from '../../core/config.js';
import { createSlogate, type Slogate } from '../../main.js';
import { revisionOf } from '../../runtime/model-store.js';
import { DIGITS_DIR, digitsConfig, tempDir } from '../helpers.js';

const REV_DIR = join(DIGITS_DIR, 'revisions');
const file = (name: string) => readFileSync(join(REV_DIR, name));
const SMALL = readFileSync(join(DIGITS_DIR, 'small.onnx'));
const TOKEN = 'test-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };

function config(storeDir: string, golden?: string) {
  return digitsConfig({
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 }, adminToken: TOKEN },
    runtime: { workers: 1, profile: { enabled: false, samples: 5, budgetMs: 400, cacheDir: storeDir } },
    store: { dir: storeDir, maxFileBytes: 3_000_000 },
    models: {
      digits: {
        eval: join(DIGITS_DIR, 'eval.bin'),
        metadata: join(DIGITS_DIR, 'model.yaml'),
        maxBatch: 64,
        ...(golden === undefined ? {} : { golden }),
        variants: {
          small: { path: join(DIGITS_DIR, 'small.onnx') },
          tiny: {
            path: join(DIGITS_DIR, 'tiny.onnx'),
            sha256: revisionOf(readFileSync(join(DIGITS_DIR, 'tiny.onnx'))),
          },
        },
      },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 500 }, policy: { static: { variant: 'small' } } } },
  });
}

async function start(storeDir: string, golden?: string): Promise<Slogate> {
  return createSlogate({ config: config(storeDir, golden), logger: pino({ level: 'silent' }), defaultMetrics: false });
}

function deploy(sg: Slogate, variant: string, bytes: Uint8Array, headers: Record<string, string> = auth) {
  return sg.app.inject({
    method: 'POST',
    url: `/admin/models/digits/variants/${variant}/revisions`,
    headers: { 'content-type': 'application/octet-stream', ...headers },
    payload: Buffer.from(bytes),
  });
}

/** One inference on the route: the served revision answers (model_version is the variant). */
async function infer(sg: Slogate): Promise<number> {
  const res = await sg.app.inject({
    method: 'POST',
    url: '/v2/models/digits/infer',
    payload: { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] },
  });
  return res.statusCode;
}

function code(res: { headers: Record<string, unknown>; json(): unknown }): unknown {
  return res.headers['x-slogate-error-code'];
}

describe('model revisions', () => {
  const dir = tempDir('slogate-store-');
  let sg: Slogate;
  const originalSmall = revisionOf(SMALL);
  const reexport = revisionOf(file('small-reexport.onnx'));
  before(async () => {
    sg = await start(dir);
  });
  after(async () => {
    await sg.close();
  });

  for (const [name, gate, errorCode] of [
    ['small-renamed.onnx', 'load', 'SLOGATE_ERR_SIGNATURE_MISMATCH'],
    ['small-degraded.onnx', 'accuracy', 'SLOGATE_ERR_GATE_FAILED'],
    ['small-fails-at-run.onnx', 'accuracy', 'SLOGATE_ERR_GATE_FAILED'],
    ['small-slow.onnx', 'latency', 'SLOGATE_ERR_GATE_FAILED'],
  ] as const) {
    test(`${name} is stopped by the ${gate} gate; the active revision keeps answering`, async () => {
      const during = infer(sg);
      const res = await deploy(sg, 'small', file(name));
      assert.equal(await during, 200);
      assert.equal(code(res), errorCode, res.body);
      assert.match(res.body, new RegExp(`the ${gate} gate`));
      assert.equal(await infer(sg), 200);
      assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, originalSmall.slice(7));
      const view = (await sg.app.inject({ url: '/admin/models/digits', headers: auth })).json() as {
        variants: {
          variant: string;
          active: string;
          revisions: { revision: string; state: string; gates: { gate: string; passed: boolean }[] }[];
        }[];
      };
      const small = view.variants.find((v) => v.variant === 'small');
      assert.equal(small?.active, originalSmall);
      const rec = small?.revisions.find((r) => r.revision === revisionOf(file(name)));
      assert.equal(rec?.state, 'rejected');
      assert.equal(rec?.gates.at(-1)?.gate, gate);
      assert.equal(rec?.gates.at(-1)?.passed, false);
    });
  }

  test('the status page shows the revision served and the latest deploy with its gates', async () => {
    const res = await sg.app.inject({ url: '/status/data' });
    const rows = (res.json() as { revisions: { variant: string; active: string; state: string; gates: string }[] })
      .revisions;
    const small = rows.find((r) => r.variant === 'digits/small');
    assert.equal(small?.active, originalSmall.slice(0, 19));
    assert.equal(small?.state, 'rejected');
    assert.match(small?.gates ?? '', /load passed; accuracy passed; latency FAILED: 64 rows/);
  });

  test('a good revision passes every gate and goes live; deploying it again changes nothing', async () => {
    const res = await deploy(sg, 'small', file('small-reexport.onnx'));
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as {
      result: string;
      revision: string;
      previous: string;
      gates: { gate: string; passed: boolean }[];
    };
    assert.equal(body.result, 'active');
    assert.equal(body.revision, reexport);
    assert.equal(body.previous, originalSmall);
    assert.deepEqual(
      body.gates.map((g) => [g.gate, g.passed]),
      [
        ['load', true],
        ['accuracy', true],
        ['latency', true],
      ],
    );
    assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, reexport.slice(7));
    assert.equal(await infer(sg), 200);
    const again = await deploy(sg, 'small', file('small-reexport.onnx'));
    assert.equal((again.json() as { result: string }).result, 'unchanged');
    const metrics = await sg.app.inject({ url: '/metrics' });
    assert.match(metrics.body, /slogate_deploys_total\{model="digits",variant="small",result="active"\} 1/);
    assert.match(
      metrics.body,
      new RegExp(`slogate_revision_info\\{model="digits",variant="small",revision="${reexport}",state="active"\\} 1`),
    );
  });

  test('a restart serves the active revision from the store', async () => {
    await sg.close();
    sg = await start(dir);
    assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, reexport.slice(7));
    assert.equal(await infer(sg), 200);
  });

  test('a rollback restores the previous revision', async () => {
    const res = await sg.app.inject({
      method: 'POST',
      url: '/admin/models/digits/variants/small/rollback',
      headers: auth,
      payload: {},
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { revision: string }).revision, originalSmall);
    assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, originalSmall.slice(7));
    assert.equal(await infer(sg), 200);
  });

  test('bad input: each its own code, nothing changes', async () => {
    const cases: [
      string,
      Promise<{ statusCode: number; headers: Record<string, unknown>; json(): unknown; body: string }>,
      number,
      string,
    ][] = [
      ['not ONNX', deploy(sg, 'small', Buffer.from('not an onnx model at all')), 400, 'SLOGATE_ERR_NOT_ONNX'],
      ['too big', deploy(sg, 'small', Buffer.alloc(3_000_001)), 413, 'SLOGATE_ERR_REVISION_TOO_LARGE'],
      ['pin mismatch', deploy(sg, 'tiny', file('small-reexport.onnx')), 409, 'SLOGATE_ERR_REVISION_PIN_MISMATCH'],
      ['no token', deploy(sg, 'small', file('small-reexport.onnx'), {}), 401, 'SLOGATE_ERR_UNAUTHORIZED'],
      [
        'escaping name',
        sg.app.inject({
          method: 'POST',
          url: '/admin/models/digits/variants/..%2F..%2Fetc/revisions',
          headers: { 'content-type': 'application/octet-stream', ...auth },
          payload: SMALL,
        }),
        400,
        'SLOGATE_ERR_INVALID_NAME',
      ],
      ['unknown variant', deploy(sg, 'nope', SMALL), 404, 'SLOGATE_ERR_VARIANT_NOT_FOUND'],
      [
        'unknown model',
        sg.app.inject({ url: '/admin/models/nope', headers: auth }),
        404,
        'SLOGATE_ERR_MODEL_NOT_FOUND',
      ],
    ];
    for (const [what, pending, status, errorCode] of cases) {
      const res = await pending;
      assert.equal(res.statusCode, status, `${what}: ${res.body}`);
      assert.equal(code(res), errorCode, what);
    }
    assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, originalSmall.slice(7));
  });

  test('a deploy while draining is refused', async () => {
    await sg.runtime.drain(1000);
    const res = await deploy(sg, 'small', file('small-reexport.onnx'));
    assert.equal(res.statusCode, 503);
    assert.equal(code(res), 'SLOGATE_ERR_SHUTTING_DOWN');
  });
});

describe('model revisions with golden answers', () => {
  let sg: Slogate;
  before(async () => {
    sg = await start(tempDir('slogate-store-'), join(DIGITS_DIR, 'golden.json'));
  });
  after(async () => {
    await sg.close();
  });

  test('a revision that fails at run time is stopped by the golden gate, before the eval set', async () => {
    const res = await deploy(sg, 'small', file('small-fails-at-run.onnx'));
    assert.equal(code(res), 'SLOGATE_ERR_GATE_FAILED');
    assert.match(res.body, /the golden gate/);
  });

  test('a good revision reproduces the golden answers and goes live', async () => {
    const res = await deploy(sg, 'small', file('small-reexport.onnx'));
    assert.equal(res.statusCode, 201, res.body);
    const gates = (res.json() as { gates: { gate: string; passed: boolean }[] }).gates.map((g) => g.gate);
    assert.deepEqual(gates, ['load', 'golden', 'accuracy', 'latency']);
  });
});

describe('slogate deploy | revisions | rollback over real HTTP', () => {
  let sg: Slogate;
  let url: string;
  before(async () => {
    sg = await start(tempDir('slogate-store-'));
    url = await sg.listen(0);
  });
  after(async () => {
    await sg.close();
  });

  async function cli(cmd: string, args: string[], token: string | undefined = TOKEN) {
    let out = '';
    const status = await revisionsCommand(cmd, ['--url', url, '--model', 'digits', ...args], {
      token,
      out: (t) => {
        out += t;
      },
    });
    return { status, out };
  }

  test('deploy, list, roll back; without the token the server refuses and the command exits 1', async () => {
    const denied = await cli('deploy', ['--variant', 'small', '--file', join(REV_DIR, 'small-reexport.onnx')], '');
    assert.equal(denied.status, 1);
    assert.match(denied.out, /SLOGATE_ERR_UNAUTHORIZED/);
    const deployed = await cli('deploy', ['--variant', 'small', '--file', join(REV_DIR, 'small-reexport.onnx')]);
    assert.equal(deployed.status, 0, deployed.out);
    assert.match(deployed.out, /digits\/small: active sha256:/);
    assert.match(deployed.out, /pass latency/);
    const listed = await cli('revisions', []);
    const view = JSON.parse(listed.out) as { variants: { variant: string; active: string }[] };
    assert.equal(view.variants.find((v) => v.variant === 'small')?.active, revisionOf(file('small-reexport.onnx')));
    const back = await cli('rollback', ['--variant', 'small']);
    assert.equal(back.status, 0, back.out);
    assert.match(back.out, new RegExp(`rolled-back ${revisionOf(SMALL)}`));
    const bad = await cli('deploy', ['--variant', 'small', '--file', join(REV_DIR, 'small-renamed.onnx')]);
    assert.equal(bad.status, 1);
    assert.match(bad.out, /SLOGATE_ERR_SIGNATURE_MISMATCH/);
  });
});

describe('a deploy and a rollback under steady traffic', () => {
  let sg: Slogate;
  before(async () => {
    sg = await start(tempDir('slogate-store-'));
  });
  after(async () => {
    await sg.close();
  });

  test('no request fails while a revision is gated, switched to and rolled back; a second deploy is refused', async () => {
    let stop = false;
    const statuses: number[] = [];
    const client = async () => {
      while (!stop) statuses.push(await infer(sg));
    };
    const clients = Array.from({ length: 4 }, client);
    const first = deploy(sg, 'small', file('small-reexport.onnx'));
    const gating = () =>
      sg.deployer.describe('digits').variants.some((v) => v.revisions.some((r) => r.state === 'gating'));
    while (!gating()) await new Promise((r) => setImmediate(r));
    const second = await deploy(sg, 'small', file('small-degraded.onnx'));
    assert.equal(code(second), 'SLOGATE_ERR_DEPLOY_IN_PROGRESS');
    assert.match(second.body, new RegExp(revisionOf(file('small-reexport.onnx'))));
    assert.equal((await first).statusCode, 201);
    const back = await sg.app.inject({
      method: 'POST',
      url: '/admin/models/digits/variants/small/rollback',
      headers: auth,
      payload: {},
    });
    assert.equal(back.statusCode, 200, back.body);
    stop = true;
    await Promise.all(clients);
    await sg.deployer.describe('digits');
    assert.ok(statuses.length > 20, `only ${statuses.length} requests ran`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
  });
});

describe("Triton's repository extension", () => {
  let sg: Slogate;
  before(async () => {
    sg = await start(tempDir('slogate-store-'));
  });
  after(async () => {
    await sg.close();
  });
  const post = (url: string, payload?: object, headers: Record<string, string> = auth) =>
    sg.app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload }) });

  test('index lists every model and variant with its state; it needs the admin token', async () => {
    assert.equal((await post('/v2/repository/index', undefined, {})).statusCode, 401);
    const res = await post('/v2/repository/index');
    assert.equal(res.statusCode, 200, res.body);
    const small = (res.json() as { name: string; version: string; state: string; reason: string }[]).find(
      (e) => e.version === 'small',
    );
    assert.equal(small?.name, 'digits');
    assert.equal(small?.state, 'READY');
    assert.equal(small?.reason, `serving ${revisionOf(SMALL)}`);
  });

  test('load with a file override deploys a revision through the gates; a bad one is rejected', async () => {
    const bad = await post('/v2/repository/models/digits/load', {
      parameters: { 'file:small/model.onnx': file('small-renamed.onnx').toString('base64') },
    });
    assert.equal(code(bad), 'SLOGATE_ERR_SIGNATURE_MISMATCH');
    const res = await post('/v2/repository/models/digits/load', {
      parameters: { 'file:small/model.onnx': file('small-reexport.onnx').toString('base64') },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { revisions: { result: string }[] }).revisions[0]?.result, 'active');
    assert.equal(
      sg.runtime.model('digits').variants.get('small')?.sha256,
      revisionOf(file('small-reexport.onnx')).slice(7),
    );
    assert.equal(await infer(sg), 200);
  });

  test('invalid configs and unknown parameters are refused with their codes', async () => {
    for (const [payload, want] of [
      [{ parameters: { config: '{}' } }, 'SLOGATE_ERR_BAD_PARAMETER'],
      [{ parameters: { config: 'not json' } }, 'SLOGATE_ERR_BAD_PARAMETER'],
      [{ parameters: { config: 7 } }, 'SLOGATE_ERR_BAD_PARAMETER'],
      [{ parameters: { 'file:small/weights.bin': 'AAAA' } }, 'SLOGATE_ERR_BAD_PARAMETER'],
      [{ parameters: { 'file:small/model.onnx': 'not base64!' } }, 'SLOGATE_ERR_BAD_PARAMETER'],
    ] as const)
      assert.equal(code(await post('/v2/repository/models/digits/load', payload)), want);
    assert.equal(code(await post('/v2/repository/models/nope/load', {})), 'SLOGATE_ERR_MODEL_NOT_FOUND');
    assert.equal(code(await post('/v2/repository/models/nope/unload')), 'SLOGATE_ERR_MODEL_NOT_FOUND');
  });
});

describe('slogate apply', () => {
  const dir = tempDir('slogate-store-');
  let sg: Slogate;
  let url: string;
  before(async () => {
    sg = await start(dir);
    url = await sg.listen(0);
  });
  after(async () => {
    await sg.close();
  });

  async function apply(args: string[]) {
    const raw = {
      server: { adminToken: TOKEN },
      models: {
        digits: {
          eval: join(DIGITS_DIR, 'eval.bin'),
          variants: {
            small: { path: join(REV_DIR, 'small-reexport.onnx') },
            tiny: { path: join(DIGITS_DIR, 'tiny.onnx') },
          },
        },
      },
      routes: { digits: { model: 'digits', slo: { p99Ms: 400 }, policy: { static: { variant: 'small' } } } },
    };
    const file = join(dir, 'desired.json');
    writeFileSync(file, JSON.stringify(raw));
    let out = '';
    const status = await applyCommand(
      ['--config', file, '--url', url, ...args],
      { token: TOKEN, out: (t) => (out += t) },
      (f) => ({
        config: loadConfigFile(f, {}),
        revisionOfFile: async (p) => revisionOf(readFileSync(p)),
      }),
    );
    return { status, out };
  }

  test('--dry-run prints the plan and changes nothing; apply carries it out; a second apply has nothing to do', async () => {
    const dry = await apply(['--dry-run']);
    assert.equal(dry.status, 0, dry.out);
    assert.match(dry.out, /deploy +digits\/small: sha256:\w+ -> sha256:\w+ \(gated\)/);
    assert.match(dry.out, /route +digits: update/);
    assert.equal(sg.runtime.model('digits').variants.get('small')?.sha256, revisionOf(SMALL).slice(7));
    const done = await apply([]);
    assert.equal(done.status, 0, done.out);
    assert.equal(
      sg.runtime.model('digits').variants.get('small')?.sha256,
      revisionOf(file('small-reexport.onnx')).slice(7),
    );
    assert.equal(sg.router.route('digits').config.slo.p99Ms, 400);
    const again = await apply([]);
    assert.equal(again.out, 'nothing to do: the server runs this config\n');
  });
});

describe('start-up with a model store', () => {
  test('an unreadable store is a start-up error, never a fallback to the config files', async () => {
    const dir = tempDir('slogate-store-');
    writeFileSync(join(dir, 'state.json'), '{"version": 1, "variants": ');
    await assert.rejects(start(dir), { code: 'SLOGATE_ERR_STORE' });
  });

  test('a config file that does not match its pin is a start-up error', async () => {
    const dir = tempDir('slogate-store-');
    const raw = {
      server: { logLevel: 'silent', warmup: { requests: 0 } },
      runtime: { workers: 1, profile: { enabled: false } },
      store: { dir },
      models: {
        digits: {
          variants: {
            small: { path: join(DIGITS_DIR, 'small.onnx'), sha256: revisionOf(file('small-reexport.onnx')) },
          },
        },
      },
      routes: { digits: { model: 'digits', slo: { p99Ms: 100 } } },
    };
    const config = parseConfig(raw, dir);
    await assert.rejects(createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false }), {
      code: 'SLOGATE_ERR_MODEL_LOAD',
      message: /not the pinned sha256:/,
    });
  });
});
