// Runtime nodes found through a real DNS server (dnsmasq on loopback): real `slogate runtime` processes on 127.0.0.2
// and 127.0.0.3 sharing one port, as pods behind a headless Service do. The gateway starts while one listed address
// has no node, serves with the one that is up, and while steady load runs the records change: a node added carries
// traffic, a node removed is drained. Then two gateways share three nodes: a node added to DNS carries both
// gateways' traffic within 5 s, a node killed mid-load loses no accepted request, a node removed is drained by both.
// Every accepted request gets an answer.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { Pool } from 'undici';
import { type ServerProcess, startSlogateProcess } from '../../bench/server-process.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { digitsConfig, digitsRawConfig, EVAL_PATH, startSlogate } from '../helpers.js';
import { DNSMASQ, DnsServer } from '../support/dns-server.js';

const set = readEvalSet(EVAL_PATH);
const BODIES = Array.from({ length: 40 }, (_, i) =>
  JSON.stringify({
    inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: Array.from(evalRow(set, i)) }],
    outputs: [{ name: 'label' }],
  }),
);
const ROUTE = { digits: { model: 'digits', slo: { p99Ms: 30_000 }, policy: { static: { variant: 'small' } } } };
const NAME = 'runtime.test';
const A = '127.0.0.2';
const B = '127.0.0.3';
/** Listed in DNS but no node ever listens there. */
const MISSING = '127.0.0.9';

interface Outcome {
  readonly i: number;
  readonly status: number;
  readonly label: number | undefined;
}

/** A port free on both node addresses. */
async function sharedFreePort(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.listen(0, A, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
      s.once('error', reject);
    });
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, B, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no port free on both node addresses');
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Open-loop load at `rate` req/s until stop() is called (idempotent); resolves with every outcome (0: no answer). */
function load(url: string, rate: number): { stop: () => Promise<Outcome[]> } {
  const pool = new Pool(url, { connections: 16 });
  const out: Promise<Outcome>[] = [];
  let n = 0;
  const timer = setInterval(() => {
    const i = n++ % BODIES.length;
    out.push(
      pool
        .request({
          method: 'POST',
          path: '/v2/models/digits/infer',
          body: BODIES[i] as string,
          headers: { 'content-type': 'application/json' },
        })
        .then(async (r) => {
          const b = (await r.body.json()) as { outputs?: { data: number[] }[] };
          return { i, status: r.statusCode, label: b.outputs?.[0]?.data[0] };
        }),
    );
  }, 1000 / rate);
  let stopped: Promise<Outcome[]> | undefined;
  return {
    stop: () => {
      clearInterval(timer);
      stopped ??= Promise.allSettled(out).then(async (settled) => {
        await pool.close();
        return settled.map((s, i) => (s.status === 'fulfilled' ? s.value : { i, status: 0, label: undefined }));
      });
      return stopped;
    },
  };
}

describe('runtime nodes discovered through dnsmasq', {
  skip: DNSMASQ === undefined && !process.env.CI ? 'no dnsmasq' : false,
}, () => {
  test('start with the nodes that are up; a node added carries traffic, a node removed is drained', async () => {
    const dns = new DnsServer();
    const port = await sharedFreePort();
    const nodeConfig = digitsRawConfig({
      runtime: { workers: 1, profile: { enabled: false } },
      server: { logLevel: 'warn' },
    });
    const nodes: ServerProcess[] = [];
    let sg: Slogate | undefined;
    let run: ReturnType<typeof load> | undefined;
    try {
      await dns.start({ [NAME]: [A, MISSING] });
      for (const host of [A, B]) nodes.push(await startSlogateProcess(nodeConfig, { command: 'runtime', host, port }));
      assert.deepEqual(
        nodes.map((n) => n.url),
        [`http://${A}:${port}`, `http://${B}:${port}`],
        'both nodes on the same port',
      );
      const started = await startSlogate(
        digitsConfig({
          runtime: {
            workers: 0,
            healthCheckIntervalMs: 200,
            replicas: [{ dns: NAME, port, resolver: dns.address, concurrency: 2, resolveIntervalMs: 200 }],
            profile: { enabled: false },
            health: { minReadySlots: 2 },
          },
          routes: ROUTE,
        }),
      );
      sg = started.sg;
      const gw = sg;
      const key = (host: string) => `${NAME}/${host}:${port}`;
      const stat = (host: string) => gw.runtime.replicaStats().find((r) => r.id === key(host));
      assert.equal(stat(A)?.state, 'ready', 'started and serving with the node that is up');
      assert.equal(stat(MISSING), undefined, 'the address without a node is not in the pool');
      assert.equal(gw.runtime.health.readiness().ready, true, 'two ready slots: ready');
      const members: string[] = [];
      gw.runtime.pool.on('member', (id, change) => members.push(`${id} ${change}`));

      run = load(started.url, 60);
      await new Promise((r) => setTimeout(r, 800));
      await dns.setHosts({ [NAME]: [A, B] });
      await until(() => (stat(B)?.batches ?? 0) > 0, 5000, 'the added node to carry traffic');
      await new Promise((r) => setTimeout(r, 800));
      const aBatches = stat(A)?.batches ?? 0;
      assert.ok(aBatches > 0, 'the first node carried traffic');
      await dns.setHosts({ [NAME]: [B] });
      await until(() => stat(A) === undefined, 5000, 'the removed node to be drained and gone');
      await new Promise((r) => setTimeout(r, 800));
      const results = await run.stop();

      const bad = results.filter((r) => r.status !== 200 || r.label === undefined);
      assert.equal(bad.length, 0, `${bad.length} of ${results.length} failed, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
      assert.ok(results.length > 30, `${results.length} requests sent`);
      assert.deepEqual(
        members.filter((m) => m.startsWith(key(A))),
        [`${key(A)} draining`, `${key(A)} removed`],
      );
      assert.ok(members.includes(`${key(B)} added`));
      assert.deepEqual(
        gw.runtime.replicaStats().map((r) => r.id),
        [key(B)],
      );
      assert.equal(gw.runtime.health.readiness().ready, true);
      assert.equal(nodes[0]?.child.exitCode, null, 'the drained node was left running, only disconnected');
    } finally {
      await run?.stop();
      await sg?.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await dns.close();
    }
  });

  test('two gateways share nodes found by DNS: a third node carries traffic, a killed one loses nothing, a removed one drains', async () => {
    const C = '127.0.0.4';
    const dns = new DnsServer();
    const port = await sharedFreePort();
    const nodeConfig = digitsRawConfig({
      runtime: { workers: 1, profile: { enabled: false } },
      server: { logLevel: 'warn' },
    });
    const nodes = new Map<string, ServerProcess>();
    const gateways: Slogate[] = [];
    const runs: ReturnType<typeof load>[] = [];
    try {
      await dns.start({ [NAME]: [A, B] });
      await Promise.all(
        [A, B, C].map(async (host) =>
          nodes.set(host, await startSlogateProcess(nodeConfig, { command: 'runtime', host, port })),
        ),
      );
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const g = await startSlogate(
          digitsConfig({
            runtime: {
              workers: 0,
              healthCheckIntervalMs: 200,
              replicas: [{ dns: NAME, port, resolver: dns.address, concurrency: 2, resolveIntervalMs: 200 }],
              profile: { enabled: false },
            },
            routes: ROUTE,
          }),
        );
        gateways.push(g.sg);
        urls.push(g.url);
      }
      const key = (host: string) => `${NAME}/${host}:${port}`;
      const batches = (g: Slogate, host: string) =>
        g.runtime.replicaStats().find((r) => r.id === key(host))?.batches ?? 0;
      for (const url of urls) runs.push(load(url, 30));
      await new Promise((r) => setTimeout(r, 800));

      await dns.setHosts({ [NAME]: [A, B, C] });
      const added = Date.now();
      await until(
        () => gateways.every((g) => batches(g, C) > 0),
        5000,
        'the third node to carry traffic of both gateways',
      );
      assert.ok(Date.now() - added < 5000);

      nodes.get(A)?.child.kill('SIGKILL');
      await until(
        () => gateways.every((g) => g.runtime.replicaStats().find((r) => r.id === key(A))?.state === 'down'),
        5000,
        'the killed node marked down',
      );
      await new Promise((r) => setTimeout(r, 600));

      await dns.setHosts({ [NAME]: [A, C] });
      await until(
        () => gateways.every((g) => g.runtime.replicaStats().every((r) => r.id !== key(B))),
        5000,
        'the removed node drained from both gateways',
      );
      await new Promise((r) => setTimeout(r, 600));
      const results = (await Promise.all(runs.map((r) => r.stop()))).flat();
      const bad = results.filter((r) => r.status !== 200 || r.label === undefined);
      assert.equal(bad.length, 0, `${bad.length} of ${results.length} failed, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
      assert.ok(results.length > 30, `${results.length} requests sent`);
      for (const g of gateways) assert.ok(batches(g, C) > 0 && g.runtime.health.readiness().ready);
    } finally {
      await Promise.all(runs.map((r) => r.stop()));
      await Promise.all(gateways.map((g) => g.close()));
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      await dns.close();
    }
  });
});
