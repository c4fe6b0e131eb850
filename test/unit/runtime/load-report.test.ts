// Load reports in the ORCA header forms: round trips in TEXT and JSON, and refusals of what a broken or hostile node
// could send.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeLoadReport, MAX_REPORT_CHARS, parseLoadReport } from '../../../runtime/load-report.js';

const load = { busySlots: 3, totalSlots: 4, queuedRows: 17, queueWaitMs: 2.5, serviceCorrection: 1.08 };

describe('load report', () => {
  test('round trips in both forms, with the standard utilisation for other balancers', () => {
    const text = encodeLoadReport(load, 'TEXT');
    assert.match(text, /^TEXT application_utilization=0\.75, named_metrics\.slots_busy=3, /);
    assert.deepEqual(parseLoadReport(text), { ok: true, load });
    const json = encodeLoadReport(load, 'JSON');
    assert.equal(JSON.parse(json.slice(5)).application_utilization, 0.75);
    assert.deepEqual(parseLoadReport(json), { ok: true, load });
  });

  test('reads reports from other writers: extra standard fields, spaces, camelCase JSON keys', () => {
    const text =
      'TEXT cpu_utilization=0.4,named_metrics.slots_busy=1 , named_metrics.slots_total=2, ' +
      'named_metrics.queue_rows=0, named_metrics.queue_wait_ms=0, named_metrics.service_correction=1, rps_fractional=9';
    assert.equal(parseLoadReport(text).ok, true);
    const json =
      'JSON {"cpuUtilization":0.4,"namedMetrics":{"slots_busy":1,"slots_total":2,"queue_rows":0,' +
      '"queue_wait_ms":0,"service_correction":1}}';
    assert.equal(parseLoadReport(json).ok, true);
  });

  test('refuses what it cannot trust, saying why', () => {
    const ok = encodeLoadReport(load, 'TEXT');
    const cases: [string, string | undefined, RegExp][] = [
      ['missing', undefined, /no load report/],
      ['other format', 'BIN CZqZmZmZmbk/', /unsupported load report format/],
      ['too long', `TEXT ${'x'.repeat(MAX_REPORT_CHARS)}`, /over 2048/],
      ['a metric missing', ok.replace(/, named_metrics\.queue_rows=17/, ''), /lacks named_metrics\.queue_rows/],
      ['negative', ok.replace('queue_rows=17', 'queue_rows=-1'), /finite number >= 0/],
      ['not a number', ok.replace('queue_rows=17', 'queue_rows=lots'), /finite number >= 0/],
      ['infinite', ok.replace('queue_rows=17', 'queue_rows=Infinity'), /finite number >= 0/],
      ['repeated', `${ok}, named_metrics.queue_rows=1`, /repeats queue_rows/],
      ['unknown field', `${ok}, hacks=1`, /unknown load report field/],
      ['no equals sign', `${ok}, oops`, /malformed load report item/],
      ['busy over total', ok.replace('slots_busy=3', 'slots_busy=9'), /more busy slots than slots/],
      ['bad JSON', 'JSON {"named_metrics":', /does not parse/],
      ['JSON array', 'JSON [1,2]', /unknown load report field/],
      ['JSON string metric', 'JSON {"named_metrics":{"slots_busy":"3"}}', /finite number >= 0/],
    ];
    for (const [name, value, why] of cases) {
      const r = parseLoadReport(value);
      assert.equal(r.ok, false, name);
      if (!r.ok) assert.match(r.why, why, name);
    }
  });
});
