// `slogate serve` picks V8's GC mode before it starts (core/gc-mode.ts): with a flag it lacks, it runs again as a
// child with it and stands in for that child. The child is the server: it logs its GC mode, and it drains and exits
// when the process that started it dies, even by SIGKILL. Allocation-site pretenuring is off unless a flag on the
// command line turns it on. Linux only (/proc lists a process's children).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { digitsRawConfig, ROOT, tempDir } from '../helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');

function config(): string {
  const file = join(tempDir(), 'slogate.yaml');
  const raw = digitsRawConfig({
    server: { host: '127.0.0.1', port: 0, logLevel: 'info' },
    routes: { digits: { model: 'digits', slo: { p99Ms: 1000 }, policy: { static: { variant: 'tiny' } } } },
  });
  writeFileSync(file, stringify(raw));
  return file;
}

function serve(gc: string, nodeFlags: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeFlags, CLI, 'serve', '--config', config()], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLOGATE_GC: gc },
  });
}

/** The `gc` field of the server's "serving on" log line; `gcPretenuring` too with `field`. */
function servingGc(child: ChildProcess, field = 'gc'): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`not serving within 60 s:\n${buf}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('serving on'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(String((JSON.parse(line) as Record<string, unknown>)[field]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before serving:\n${buf}`));
    });
  });
}

const childrenOf = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; ) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

test('SLOGATE_GC=single: the server runs as a child with single-threaded GC; SIGTERM reaches it, exit 0', async () => {
  const launcher = serve('single');
  try {
    assert.equal(await servingGc(launcher), 'single-threaded');
    const [server] = childrenOf(launcher.pid as number);
    assert.ok(server !== undefined, 'the launcher has no child');
    assert.ok(readFileSync(`/proc/${server}/cmdline`, 'utf8').split('\0').includes('--single-threaded-gc'));
    const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
    launcher.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(await gone(server, 5_000), 'the server outlived its launcher');
  } finally {
    launcher.kill('SIGKILL');
  }
});

test('the server drains and exits when its launcher is killed (SIGKILL)', async () => {
  const launcher = serve('single');
  let server: number | undefined;
  try {
    await servingGc(launcher);
    server = childrenOf(launcher.pid as number)[0];
    assert.ok(server !== undefined, 'the launcher has no child');
    launcher.kill('SIGKILL');
    assert.ok(await gone(server, 20_000), 'the server outlived its launcher');
  } finally {
    launcher.kill('SIGKILL');
    if (server !== undefined && alive(server)) process.kill(server, 'SIGKILL');
  }
});

test('SLOGATE_GC=parallel: no relaunch; the server is the process started, with V8 default GC', async () => {
  const server = serve('parallel');
  try {
    assert.equal(await servingGc(server), 'parallel');
    assert.deepEqual(childrenOf(server.pid as number), []);
  } finally {
    server.kill('SIGTERM');
  }
});

test('allocation-site pretenuring: off in the server, on when given on the node command line', async () => {
  for (const [flags, expected] of [
    [[], 'off'],
    [['--allocation-site-pretenuring'], 'on'],
  ] as const) {
    const server = serve('parallel', flags);
    try {
      assert.equal(await servingGc(server, 'gcPretenuring'), expected, `node ${flags.join(' ')}`);
    } finally {
      server.kill('SIGTERM');
    }
  }
});

test('an unknown SLOGATE_GC is a usage error naming the variable', () => {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--config', config()], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, SLOGATE_GC: 'fastest' },
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /SLOGATE_GC must be auto, single or parallel/);
});
