// Load reports end to end: a slogate process puts its ORCA load report on every inference answer (refusals too) and
// on its readiness probe; a gateway's remote replica reads them and offers only the slots other gateways leave.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { SystemClock } from '../../core/clock.js';
import type { Slogate } from '../../main.js';
import { evalRow, readEvalSet } from '../../runtime/eval-set.js';
import { encodeLoadReport, LOAD_REPORT_HEADER, parseLoadReport } from '../../runtime/load-report.js';
import { RemoteReplica } from '../../runtime/remote-replica.js';
import { ReplicaFault } from '../../runtime/replica.js';
import { digitsConfig, EVAL_PATH, startSlogate } from '../helpers.js';

const row = Array.from(evalRow(readEvalSet(EVAL_PATH), 0));
const body = JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: row }] });

describe('load reports from a slogate process', () => {
  let sg: Slogate;
  let url: string;
  before(async () => {
    ({ sg, url } = await startSlogate(
      digitsConfig({ runtime: { workers: 1, refuseUnreachable: true, profile: { enabled: false } } }),
    ));
  });
  after(async () => {
    await sg.close();
  });

  test('every inference answer and the readiness probe carry a report of the process’s slots', async () => {
    const ok = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    await ok.body.dump();
    assert.equal(ok.statusCode, 200);
    const parsed = parseLoadReport(ok.headers[LOAD_REPORT_HEADER] as string);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.equal(parsed.load.totalSlots, 1);
    assert.ok(parsed.load.busySlots <= 1);
    const refused = await request(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      body: '{"inputs": []}',
      headers: { 'content-type': 'application/json' },
    });
    await refused.body.dump();
    assert.equal(refused.statusCode, 400);
    assert.ok(parseLoadReport(refused.headers[LOAD_REPORT_HEADER] as string).ok, 'a refusal carries it too');
    const probe = await request(`${url}/v2/health/ready`);
    await probe.body.dump();
    assert.ok(parseLoadReport(probe.headers[LOAD_REPORT_HEADER] as string).ok, 'the probe carries it');
  });

  test('a batch sent with a deadline it cannot make is refused at once, with the report; one it can is served', async () => {
    const clock = new SystemClock();
    const node = new RemoteReplica({
      id: 'node',
      url,
      slots: 1,
      models: new Map([['digits', ['small']]]),
      clock,
      healthCheckIntervalMs: 60_000,
    });
    const task = (leftMs: number) => ({
      model: 'digits',
      variant: 'small',
      inputs: [{ name: 'pixels', datatype: 'FP32' as const, shape: [1, 784], data: new Float32Array(row) }],
      rows: 1,
      transfer: false,
      deadlineAtMs: clock.now() + leftMs,
    });
    try {
      await node.start();
      const served = await node.run(task(30_000));
      assert.equal(served.outputs.length > 0, true);
      const before = sg.runtime.queueStats().reduce((n, q) => n + q.batches, 0);
      await assert.rejects(node.run(task(0.0005)), (e: Error) => {
        assert.ok(e instanceof ReplicaFault, 'a refusal is the replica’s: the pool retries elsewhere');
        assert.match(e.message, /SLOGATE_ERR_DEADLINE_UNREACHABLE/);
        return true;
      });
      assert.equal(
        sg.runtime.queueStats().reduce((n, q) => n + q.batches, 0),
        before,
        'refused before queueing: no batch ran',
      );
      assert.ok(node.load !== undefined, 'the refusal carried the node’s load');
    } finally {
      await node.close();
    }
  });
});

describe('a remote replica reading its node’s reports', () => {
  let server: Server;
  let report = encodeLoadReport({ busySlots: 3, totalSlots: 4, queuedRows: 0, queueWaitMs: 0, serviceCorrection: 1 });
  before(async () => {
    server = createServer((req, res) => {
      res.setHeader(LOAD_REPORT_HEADER, report);
      if (req.url === '/v2/models/m') return void res.end(JSON.stringify({ name: 'm', inputs: [], outputs: [] }));
      res.end('{"ready":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  test('slots held by others are not offered; a report it cannot read is ignored', async () => {
    const replica = new RemoteReplica({
      id: 'n',
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      slots: 4,
      models: new Map([['m', []]]),
      clock: new SystemClock(),
      healthCheckIntervalMs: 60_000,
    });
    try {
      assert.equal(replica.availableSlots, 4, 'no report yet: the configured slots');
      await replica.start();
      assert.equal(replica.load?.busySlots, 3);
      assert.equal(replica.availableSlots, 1, 'three of four busy with others’ work');
      report = encodeLoadReport({ busySlots: 4, totalSlots: 4, queuedRows: 9, queueWaitMs: 50, serviceCorrection: 1 });
      await replica.start();
      assert.equal(replica.availableSlots, 1, 'never shut out: at least one');
      report = 'TEXT named_metrics.slots_busy=-1';
      await replica.start();
      assert.equal(replica.load?.busySlots, 4, 'a malformed report leaves the last good one');
    } finally {
      await replica.close();
    }
  });

  test('blind (runtime.loadReports: false): the report is read but the configured slots are offered', async () => {
    report = encodeLoadReport({ busySlots: 3, totalSlots: 4, queuedRows: 0, queueWaitMs: 0, serviceCorrection: 1 });
    const replica = new RemoteReplica({
      id: 'n',
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      slots: 4,
      models: new Map([['m', []]]),
      clock: new SystemClock(),
      healthCheckIntervalMs: 60_000,
      useLoadReports: false,
    });
    try {
      await replica.start();
      assert.equal(replica.load?.busySlots, 3, 'the report is still read (admin, metrics)');
      assert.equal(replica.availableSlots, 4, 'planned as if every slot were this gateway’s');
    } finally {
      await replica.close();
    }
  });
});
