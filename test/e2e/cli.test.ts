// The `slogate` command as a user runs it: config errors fail fast with every problem listed, bad model files are
// refused naming the file, and `serve` answers, then drains and exits 0 on SIGTERM.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client, request } from 'undici';
import { stringify } from 'yaml';
import { DIGITS_DIR, digitsRawConfig, EVAL_PATH, ROOT, tempDir } from '../helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');

function run(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
}

function writeConfig(raw: unknown): string {
  const file = join(tempDir(), 'slogate.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

test('check-config: an invalid config exits 1 and lists every problem as path: message', () => {
  const file = writeConfig({
    server: { port: 'x' },
    models: { m: { variants: {} } },
    routes: { r: { model: 'q', slo: { p99Ms: 0 } } },
  });
  const r = run(['check-config', file]);
  assert.equal(r.status, 1);
  for (const p of ['server.port:', 'models.m.variants:', 'routes.r.slo.p99Ms:'])
    assert.ok(r.stderr.includes(p), `stderr lacks ${p}:\n${r.stderr}`);
});

test('check-config: the bundled slogate.yaml is valid and every variant has a recorded accuracy', () => {
  const r = run(['check-config', join(ROOT, 'slogate.yaml')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid/);
  assert.doesNotMatch(r.stdout, /not measured|warning/);
});

test('a missing model file is refused at load, naming the file', () => {
  const raw = digitsRawConfig({ models: { digits: { variants: { a: { path: '/nonexistent/a.onnx' } } } } });
  const r = run(['check-config', writeConfig(raw)]);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes('/nonexistent/a.onnx'), r.stderr);
});

test('a file that is not ONNX is refused at load, naming the file', () => {
  const dir = tempDir();
  const bogus = join(dir, 'bogus.onnx');
  writeFileSync(bogus, 'this is not a protobuf model');
  const raw = digitsRawConfig({ models: { digits: { variants: { a: { path: bogus } } } } });
  const r = run(['check-config', writeConfig(raw)]);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(bogus), r.stderr);
});

test('variants whose signatures disagree are refused, naming the odd file', () => {
  // A copy of a digits variant under a model whose other variant has a different input: the eval set's format is
  // not a model, so build the mismatch from two real files with different signatures instead.
  const dir = tempDir();
  const a = join(dir, 'a.onnx');
  copyFileSync(join(DIGITS_DIR, 'tiny.onnx'), a);
  const other = join(ROOT, 'test', 'fixtures', 'add-two.onnx');
  const raw = digitsRawConfig({ models: { digits: { variants: { a: { path: a }, b: { path: other } } } } });
  const r = run(['check-config', writeConfig(raw)]);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(other), r.stderr);
  assert.match(r.stderr, /does not match/);
});

test('eval without an eval set is a clear error', () => {
  const raw = digitsRawConfig({ models: { digits: { variants: { tiny: { path: join(DIGITS_DIR, 'tiny.onnx') } } } } });
  const r = run(['eval', '--config', writeConfig(raw)]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /eval set/);
  assert.ok(EVAL_PATH.length > 0);
});

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${buf}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(pattern);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready:\n${buf}`));
    });
  });
}

test('serve answers inference, then on SIGTERM finishes in-flight work, refuses new work, and exits 0', async () => {
  const raw = digitsRawConfig({
    server: { host: '127.0.0.1', port: 0, logLevel: 'warn' },
    routes: { digits: { model: 'digits', slo: { p99Ms: 30_000 }, policy: { static: { variant: 'large' } } } },
  });
  const child = spawn(process.execPath, [CLI, 'serve', '--config', writeConfig(raw)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const line = await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/, 60_000);
    const url = line;
    const body = JSON.stringify({
      inputs: [{ name: 'pixels', shape: [64, 784], datatype: 'FP32', data: new Array(64 * 784).fill(0.5) }],
    });
    const ok = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    // Queue enough large batches to still be running when SIGTERM arrives (64 rows of `large` take tens of ms each).
    const inflight = Array.from({ length: 8 }, () =>
      request(`${url}/v2/models/digits/infer`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      }).then(async (r) => [r.statusCode, await r.body.text()] as const),
    );
    // Wait until all 8 are accepted: one running, seven queued.
    const deadline = Date.now() + 10_000;
    for (;;) {
      // The admin API's queues, not /metrics: that serves one render for up to a second, longer than the queue lasts.
      const q = (await (await request(`${url}/admin/queues`)).body.json()) as {
        queues: { model: string; variant: string; queued: number }[];
      };
      const depth = q.queues.find((x) => x.model === 'digits' && x.variant === 'large')?.queued ?? 0;
      if (depth >= 7) break;
      assert.ok(Date.now() < deadline, 'requests were not all queued in time');
      await new Promise((r) => setTimeout(r, 2));
    }
    // The listener closes at SIGTERM: what is asked during the drain goes over connections opened before it.
    const [lateClient, readyClient] = [new Client(url), new Client(url)];
    for (const c of [lateClient, readyClient])
      await (await c.request({ path: '/v2/health/live', method: 'GET' })).body.dump();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    const late = await lateClient.request({
      path: '/v2/models/digits/infer',
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(late.statusCode, 503, 'new work is refused while draining');
    assert.equal(late.headers['x-slogate-error-code'], 'SLOGATE_ERR_SHUTTING_DOWN');
    await late.body.dump();
    const ready = await readyClient.request({ path: '/v2/health/ready', method: 'GET' });
    assert.equal(ready.statusCode, 503, 'readiness is false while draining');
    await ready.body.dump();
    const results = await Promise.all(inflight);
    for (const [status] of results) assert.equal(status, 200, 'accepted work is finished, not dropped');
    assert.equal(await exited, 0);
    await assert.rejects(request(`${url}/v2/health/live`), 'the server is gone after exit');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
