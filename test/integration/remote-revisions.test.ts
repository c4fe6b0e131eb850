// Revisions reach remote runtime nodes: a gateway whose only replica is a real runtime node (in-process, on loopback)
// sends it a revision by content, the node loads it and passes the load gate itself, every gate's batches run on it,
// and it switches; a file it already has is not sent again; a node that refuses a file fails the deploy naming
// itself while the route answers from the active revision; a rollback reaches it; a node restarted empty is brought
// to the active revision when the gateway reconnects.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createSlogate, type Slogate } from '../../main.js';
import { revisionOf } from '../../runtime/model-store.js';
import type { RemoteReplica } from '../../runtime/remote-replica.js';
import { DIGITS_DIR, digitsConfig, tempDir } from '../helpers.js';

const REV_DIR = join(DIGITS_DIR, 'revisions');
const file = (name: string) => readFileSync(join(REV_DIR, name));
const TOKEN = 'test-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const ORIGINAL = revisionOf(readFileSync(join(DIGITS_DIR, 'small.onnx')));
const REEXPORT = revisionOf(file('small-reexport.onnx'));

function base(storeDir: string, maxFileBytes: number) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 0 }, adminToken: TOKEN },
    store: { dir: storeDir, maxFileBytes },
    models: {
      digits: {
        metadata: join(DIGITS_DIR, 'model.yaml'),
        maxBatch: 16,
        // Where revisions go is tested here, not their speed: the latency gate's few samples on a shared host put the
        // re-exported (identical) model at 3.6x the active one in a full run; the node's file limit refuses small-slow.
        maxSlowdown: 50,
        variants: { small: { path: join(DIGITS_DIR, 'small.onnx') } },
      },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 2000 }, policy: { static: { variant: 'small' } } } },
  };
}

/**
 * A runtime node as `slogate runtime` configures one (a route per model, named after it) that takes files up to
 * 1 MB: the slow revision (about 2.9 MB) is refused by it alone.
 */
async function startNode(port = 0): Promise<{ node: Slogate; url: string }> {
  const config = digitsConfig({
    ...base(tempDir('slogate-node-'), 1_000_000),
    runtime: { workers: 1, profile: { enabled: false }, refuseUnreachable: true },
  });
  const node = await createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false });
  return { node, url: await node.listen(port) };
}

/** A gateway over the node (and `workers` local workers: without any, every gate runs on the node). */
async function startGateway(nodeUrl: string, workers = 0, dir = tempDir('slogate-gw-')): Promise<Slogate> {
  const config = digitsConfig({
    ...base(dir, 3_000_000),
    runtime: {
      workers,
      replicas: [{ url: nodeUrl, concurrency: 1 }],
      healthCheckIntervalMs: 100,
      profile: { enabled: false, samples: 5, budgetMs: 400, cacheDir: dir },
    },
  });
  return createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false });
}

async function nodeView(node: Slogate) {
  const res = await node.app.inject({ url: '/admin/node/revisions', headers: auth });
  assert.equal(res.statusCode, 200, res.body);
  const doc = res.json() as { active: { variant: string; revision: string }[]; received: number; stored: string[] };
  return { active: doc.active.find((a) => a.variant === 'small')?.revision, received: doc.received };
}

function deploy(sg: Slogate, bytes: Uint8Array) {
  return sg.app.inject({
    method: 'POST',
    url: '/admin/models/digits/variants/small/revisions',
    headers: { 'content-type': 'application/octet-stream', ...auth },
    payload: Buffer.from(bytes),
  });
}

function rollback(sg: Slogate, to?: string) {
  return sg.app.inject({
    method: 'POST',
    url: '/admin/models/digits/variants/small/rollback',
    headers: auth,
    payload: to === undefined ? {} : { to },
  });
}

async function infer(sg: Slogate): Promise<number> {
  const res = await sg.app.inject({
    method: 'POST',
    url: '/v2/models/digits/infer',
    payload: { inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Array(784).fill(0.5) }] },
  });
  return res.statusCode;
}

const remoteOf = (sg: Slogate) => sg.runtime.pool.replicas.find((r) => r.kind === 'remote') as RemoteReplica;

/** Polls (bounded) until `check` holds: a reconnection happens on the gateway's probe timer. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

describe('revisions on a remote runtime node', () => {
  let node: Slogate;
  let nodeUrl: string;
  let gw: Slogate;
  before(async () => {
    ({ node, url: nodeUrl } = await startNode());
    gw = await startGateway(nodeUrl);
  });
  after(async () => {
    await gw?.close();
    await node?.close();
  });

  test('a good revision is sent to the node, passes its gates there and goes live on it', async () => {
    assert.equal((await nodeView(node)).active, ORIGINAL);
    const during = infer(gw);
    const res = await deploy(gw, file('small-reexport.onnx'));
    assert.equal(await during, 200);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((res.json() as { result: string }).result, 'active');
    const view = await nodeView(node);
    assert.equal(view.active, REEXPORT, 'the node serves the new revision');
    assert.equal(view.received, 1);
    assert.equal(remoteOf(gw).revisions.uploads, 1);
    assert.equal(await infer(gw), 200);
  });

  test('a rollback reaches the node, and files the node has are not sent again', async () => {
    const res = await rollback(gw);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await nodeView(node)).active, ORIGINAL, 'its config file, which it never received');
    const again = await rollback(gw, REEXPORT);
    assert.equal(again.statusCode, 200, again.body);
    const view = await nodeView(node);
    assert.equal(view.active, REEXPORT);
    assert.equal(view.received, 1, 'nothing was sent again');
    assert.equal(remoteOf(gw).revisions.uploads, 1);
    assert.ok(remoteOf(gw).revisions.skipped >= 2, `skipped ${remoteOf(gw).revisions.skipped}`);
  });

  test('a node that refuses the file fails the deploy naming it; the route answers from the active revision', async () => {
    const during = infer(gw);
    const res = await deploy(gw, file('small-slow.onnx'));
    assert.equal(await during, 200);
    assert.equal(res.headers['x-slogate-error-code'], 'SLOGATE_ERR_NODE_REVISION', res.body);
    assert.equal(res.statusCode, 502);
    assert.match(res.body, new RegExp(`runtime node remote-0 \\(${nodeUrl.replace(/[.]/g, '\\.')}\\)`));
    assert.match(res.body, /SLOGATE_ERR_REVISION_TOO_LARGE/);
    assert.equal((await nodeView(node)).active, REEXPORT);
    assert.equal(gw.runtime.model('digits').variants.get('small')?.sha256, REEXPORT.slice(7));
    assert.equal(await infer(gw), 200);
  });

  test('a wrong signature is stopped by the load gate the node runs itself', async () => {
    const res = await deploy(gw, file('small-renamed.onnx'));
    assert.equal(res.headers['x-slogate-error-code'], 'SLOGATE_ERR_SIGNATURE_MISMATCH', res.body);
    assert.match(res.body, /runtime node remote-0/);
    assert.equal((await nodeView(node)).active, REEXPORT);
    assert.equal(await infer(gw), 200);
  });

  test("the node's revision endpoints need the admin token and refuse bad names, hashes and sizes", async () => {
    const put = (name: string, bytes: Uint8Array, headers: Record<string, string> = auth) =>
      node.app.inject({
        method: 'PUT',
        url: `/admin/node/revisions/${name}`,
        headers: { 'content-type': 'application/octet-stream', ...headers },
        payload: Buffer.from(bytes),
      });
    const codeOf = (r: { headers: Record<string, unknown> }) => r.headers['x-slogate-error-code'];
    const small = file('small-degraded.onnx');
    assert.equal(codeOf(await put(revisionOf(small), small, {})), 'SLOGATE_ERR_UNAUTHORIZED');
    assert.equal(codeOf(await put(ORIGINAL, small)), 'SLOGATE_ERR_REVISION_HASH_MISMATCH');
    assert.equal(codeOf(await put('sha256:..%2F..%2Fx', small)), 'SLOGATE_ERR_BAD_REQUEST');
    const slow = file('small-slow.onnx');
    assert.equal(codeOf(await put(revisionOf(slow), slow)), 'SLOGATE_ERR_REVISION_TOO_LARGE');
    const head = await node.app.inject({
      method: 'HEAD',
      url: `/admin/node/revisions/${revisionOf(small)}`,
      headers: auth,
    });
    assert.equal(head.statusCode, 404, 'nothing was stored');
    const load = await node.app.inject({
      method: 'POST',
      url: `/admin/node/revisions/${revisionOf(small)}/load`,
      headers: auth,
      payload: { model: 'digits', variant: 'small' },
    });
    assert.equal(codeOf(load), 'SLOGATE_ERR_REVISION_NOT_FOUND');
  });

  test('a node restarted empty is brought to the active revision when the gateway reconnects', async () => {
    const port = Number(new URL(nodeUrl).port);
    await node.close();
    ({ node } = await startNode(port));
    assert.equal((await nodeView(node)).active, ORIGINAL, 'restarted on its config file');
    await eventually(async () => (await nodeView(node)).active === REEXPORT, 'the node serves the active revision');
    await eventually(async () => remoteOf(gw).state === 'ready', 'the node is back in service');
    assert.equal(await infer(gw), 200);
  });
});

describe('revisions on local workers and a remote node together', () => {
  let node: Slogate;
  let nodeUrl: string;
  let gw: Slogate | undefined;
  const dir = tempDir('slogate-gw-');
  before(async () => {
    ({ node, url: nodeUrl } = await startNode());
  });
  after(async () => {
    await gw?.close();
    await node?.close();
  });

  test('a deploy switches both; a gateway restarted over a node restarted empty brings the node to it', async () => {
    gw = await startGateway(nodeUrl, 1, dir);
    const res = await deploy(gw, file('small-reexport.onnx'));
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((await nodeView(node)).active, REEXPORT);
    assert.equal(gw.runtime.model('digits').variants.get('small')?.sha256, REEXPORT.slice(7));
    const refused = await deploy(gw, file('small-slow.onnx'));
    assert.equal(refused.headers['x-slogate-error-code'], 'SLOGATE_ERR_NODE_REVISION', refused.body);
    assert.equal(gw.runtime.model('digits').variants.get('small')?.sha256, REEXPORT.slice(7), 'the local side too');
    await gw.close();
    gw = undefined;
    const port = Number(new URL(nodeUrl).port);
    await node.close();
    ({ node } = await startNode(port));
    assert.equal((await nodeView(node)).active, ORIGINAL);
    gw = await startGateway(nodeUrl, 1, dir);
    assert.equal((await nodeView(node)).active, REEXPORT, 'synced when the gateway connected');
    assert.equal(gw.runtime.model('digits').variants.get('small')?.sha256, REEXPORT.slice(7), 'from the store');
    assert.equal(await infer(gw), 200);
  });
});
