// Runtime nodes found through a real DNS server (dnsmasq on loopback): real `slogate runtime` processes on 127.0.0.2
// and 127.0.0.3 sharing one port, as pods behind a headless Service do. The gateway starts while one listed address
// has no node, serves with the one that is up, and while steady load runs the records change: a node added carries
// traffic, a node removed is drained. Then two gateways share three nodes: the same total load through one gateway
// and then through both attains the same (within 1 point) while the nodes' queues stay bounded, a node added to DNS
// carries both gateways' traffic within 5 s, a node killed mid-load loses no accepted request, a node removed is
// drained by both (its batches finish there). Every accepted request gets an answer.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { Pool, request } from 'undici';
import { type ServerProcess, startSlogateProcess } from '../../bench/server-process.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { LOAD_REPORT_HEADER, type NodeLoad, parseLoadReport } from '../../runtime/load-report.js';
import { digitsConfig, digitsRawConfig, EVAL_PATH, startSlogate, until } from '../helpers.js';
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
  /** From the send to the whole answer read. */
  readonly ms: number;
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

/**
 * Open-loop load at `rate` req/s until stop() is called (idempotent); resolves with every outcome (0: no answer). A
 * late timer sends what is due at once, so the count offered is the rate's; latency counts from the scheduled time.
 */
function load(url: string, rate: number): { stop: () => Promise<Outcome[]> } {
  const pool = new Pool(url, { connections: 16 });
  const out: Promise<Outcome>[] = [];
  const startMs = performance.now();
  let n = 0;
  const send = (): void => {
    const i = n % BODIES.length;
    const atMs = startMs + (n++ * 1000) / rate;
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
          return { i, status: r.statusCode, label: b.outputs?.[0]?.data[0], ms: performance.now() - atMs };
        }),
    );
  };
  const timer = setInterval(
    () => {
      while (n <= ((performance.now() - startMs) * rate) / 1000) send();
    },
    Math.min(20, 1000 / rate),
  );
  let stopped: Promise<Outcome[]> | undefined;
  return {
    stop: () => {
      clearInterval(timer);
      stopped ??= Promise.allSettled(out).then(async (settled) => {
        await pool.close();
        return settled.map((s, i) =>
          s.status === 'fulfilled' ? s.value : { i, status: 0, label: undefined, ms: Number.POSITIVE_INFINITY },
        );
      });
      return stopped;
    },
  };
}

/** Samples each node's load report (its readiness probe's header) every `everyMs` until stop(). */
function sampleNodeLoads(urls: readonly string[], everyMs: number): { stop: () => Promise<NodeLoad[][]> } {
  const samples: NodeLoad[][] = urls.map(() => []);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await Promise.all(
        urls.map(async (url, k) => {
          const r = await request(`${url}/v2/health/ready`).catch(() => undefined);
          await r?.body.dump();
          const parsed = parseLoadReport(r?.headers[LOAD_REPORT_HEADER] as string | undefined);
          if (parsed.ok) samples[k]?.push(parsed.load);
        }),
      );
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/** The route's SLO in the scale-out test: comfortable, so that a loaded host does not decide the comparison. */
const SLO_MS = 2000;
/** Total load of each phase of the comparison, and its length. */
const TOTAL_RPS = 40;
const PHASE_MS = 4000;

/** TOTAL_RPS split over `targets` for `ms` (the runs are kept in `runs` so a failing test stops them); the outcomes. */
async function phase(runs: ReturnType<typeof load>[], targets: readonly string[], ms: number): Promise<Outcome[]> {
  const mine = targets.map((u) => load(u, TOTAL_RPS / targets.length));
  runs.push(...mine);
  await new Promise((r) => setTimeout(r, ms));
  return (await Promise.all(mine.map((r) => r.stop()))).flat();
}

/** Answered right within the SLO. */
function onTime(rs: readonly Outcome[]): number {
  return rs.filter((r) => r.status === 200 && r.label !== undefined && r.ms <= SLO_MS).length;
}

/** Two gateways attain within 1 point of one at the same total load (counts, not percentiles). */
function assertSloAsOne(one: readonly Outcome[], two: readonly Outcome[]): void {
  const expected = (TOTAL_RPS * PHASE_MS) / 1000;
  for (const rs of [one, two]) assert.ok(rs.length >= 0.7 * expected, `${rs.length} of ~${expected} sent`);
  const detail = `one gateway ${onTime(one)}/${one.length} on time, two gateways ${onTime(two)}/${two.length}`;
  assert.ok(onTime(one) / one.length >= 0.9, `a single gateway holds the comfortable SLO: ${detail}`);
  assert.ok(onTime(two) / two.length >= onTime(one) / one.length - 0.01, `within 1 point of one: ${detail}`);
}

/** A node's queue stays bounded: never half a deadline of work, and queued rows do not trend up. */
function assertQueueBounded(node: string, samples: readonly NodeLoad[]): void {
  assert.ok(samples.length >= 20, `${node}: ${samples.length} load reports sampled`);
  const third = Math.floor(samples.length / 3);
  const mean = (xs: readonly NodeLoad[]) => xs.reduce((n, l) => n + l.queuedRows, 0) / Math.max(1, xs.length);
  const [first, last] = [mean(samples.slice(0, third)), mean(samples.slice(-third))];
  const worstWaitMs = Math.max(...samples.map((l) => l.queueWaitMs));
  assert.ok(worstWaitMs < SLO_MS / 2, `${node}: its queue held ${worstWaitMs} ms of work`);
  assert.ok(last <= first + 2, `${node}: queued rows trend up (${first} -> ${last} on average)`);
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
      let retries = 0;
      gw.runtime.pool.on('retry', () => retries++);

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
      assert.equal(retries, 0, 'the drained node finished its batches: none was retried elsewhere');
    } finally {
      await run?.stop();
      await sg?.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await dns.close();
    }
  });

  test('two gateways share nodes found by DNS: the SLO holds as with one, queues stay bounded, a third node carries traffic, a killed one loses nothing, a removed one drains', async () => {
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
    let sampler: ReturnType<typeof sampleNodeLoads> | undefined;
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
            routes: { digits: { ...ROUTE.digits, slo: { p99Ms: SLO_MS } } },
          }),
        );
        gateways.push(g.sg);
        urls.push(g.url);
      }
      const key = (host: string) => `${NAME}/${host}:${port}`;
      const batches = (g: Slogate, host: string) =>
        g.runtime.replicaStats().find((r) => r.id === key(host))?.batches ?? 0;
      const retriedFrom: string[] = [];
      for (const g of gateways) g.runtime.pool.on('retry', (id) => retriedFrom.push(id));
      await until(
        () => gateways.every((g) => g.runtime.replicaStats().filter((r) => r.state === 'ready').length === 2),
        5000,
        'both gateways to use both nodes',
      );

      // The same total load through one gateway, then split over two, while the nodes' reports are sampled.
      sampler = sampleNodeLoads(
        [A, B].map((h) => nodes.get(h)?.url as string),
        100,
      );
      const one = await phase(runs, [urls[0] as string], PHASE_MS);
      const two = await phase(runs, urls, PHASE_MS);
      const loads = await sampler.stop();
      assertSloAsOne(one, two);
      for (const [k, samples] of loads.entries()) assertQueueBounded(`node ${[A, B][k]}`, samples);

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
      assert.ok(!retriedFrom.includes(key(B)), 'the removed node finished its batches: none was retried elsewhere');
    } finally {
      await sampler?.stop();
      await Promise.all(runs.map((r) => r.stop()));
      await Promise.all(gateways.map((g) => g.close()));
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      await dns.close();
    }
  });
});
