// Shutdown is bounded, whatever clients and signals do: a connection that never finishes its upload is cut after
// the drain instead of holding the exit, a second SIGTERM does not cut the drain short, and a SIGTERM during
// start-up (profiling) ends the process at once.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { shutdownBoundMs } from '../../gateway/shutdown.js';
import { tempDir } from '../helpers.js';
import { spawnServe, startServe, writeTinyConfig } from './serve-process.js';

const SERVER = { drainTimeoutMs: 300, shutdownGraceMs: 200 };

/** Headers and the first byte of a 100 kB body, and then nothing: an upload that would never end. */
async function slowUpload(url: string): Promise<{ socket: Socket; closedAtMs: Promise<number> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const closedAtMs = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  socket.on('error', () => {});
  socket.write(
    'POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
  );
  return { socket, closedAtMs };
}

test('a never-ending upload cannot hold the shutdown: it is cut after the drain and the process exits 0 in its bound', async () => {
  const child = await startServe(writeTinyConfig({ server: SERVER }));
  try {
    const upload = await slowUpload(child.url);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    child.proc.kill('SIGTERM');
    const exit = await Promise.race([
      child.exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), shutdownBoundMs(SERVER) + 3000)),
    ]);
    assert.ok(exit !== undefined, 'the process exited');
    assert.equal(exit.code, 0, 'a clean exit');
    assert.ok(exit.atMs - t0 < shutdownBoundMs(SERVER) + 1000, `exited after ${Math.round(exit.atMs - t0)} ms`);
    const cutMs = (await upload.closedAtMs) - t0;
    assert.ok(cutMs >= SERVER.shutdownGraceMs, `the upload was not cut before the grace (${Math.round(cutMs)} ms)`);
  } finally {
    child.kill();
  }
});

test('a second SIGTERM during the drain is ignored: the shutdown completes and exits 0', async () => {
  const child = await startServe(writeTinyConfig({ server: SERVER }));
  try {
    // The upload keeps the shutdown going for a while (until it is cut), so the second signal lands mid-shutdown.
    const upload = await slowUpload(child.url);
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    child.proc.kill('SIGTERM');
    const exit = await child.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'not killed by the signal');
    await upload.closedAtMs;
  } finally {
    child.kill();
  }
});

test('SIGTERM during start-up (the profile sweep) ends the process at once, by the signal', async () => {
  const child = spawnServe(
    writeTinyConfig({
      server: { logLevel: 'info' },
      runtime: { profile: { enabled: true, cacheDir: tempDir(), budgetMs: 60_000, samples: 10_000 } },
      variants: ['tiny', 'small', 'medium', 'large'],
    }),
  );
  try {
    await child.waitFor(/replica local-0 is ready/, 30_000);
    const t0 = performance.now();
    child.proc.kill('SIGTERM');
    const exit = await Promise.race([
      child.exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000)),
    ]);
    assert.ok(exit !== undefined, 'the process exited within 5 s');
    // Killed by the signal itself: nothing was served yet, and no exit handler races a model run in progress.
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: null, signal: 'SIGTERM' }, child.output());
    assert.match(child.output(), /SIGTERM during start-up: exiting/);
    assert.ok(exit.atMs - t0 < 2000, `exited ${Math.round(exit.atMs - t0)} ms after the signal`);
  } finally {
    child.kill();
  }
});
