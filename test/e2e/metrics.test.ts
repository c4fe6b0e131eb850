// GET /metrics on a live server after real traffic of every SLO outcome: the metric names, types and label sets are
// the contract dashboards and alerts rely on; label values stay bounded; the counters add up. The shipped Grafana
// dashboard and Prometheus alerts are checked against the same scrape: every metric they name exists.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { SystemClock } from '../../core/clock.js';
import { createSlogate, type Slogate } from '../../main.js';
import { digitsConfig, ROOT } from '../helpers.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}
interface Family {
  readonly name: string;
  help?: string;
  type?: string;
  readonly samples: Sample[];
}

/** Parses the Prometheus text exposition format (what prom-client writes). */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      const f = family(meta[2] as string);
      if (meta[1] === 'HELP') f.help = meta[3];
      else f.type = meta[3];
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `unparseable exposition line: ${line}`);
    const name = m[1] as string;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    family(base).samples.push({ name, labels, value: Number(m[3]) });
  }
  return families;
}

const ROUTES = ['digits', 'tight', 'hopeless'] as const;

/** The real clock, plus time the test skips ahead by hand (what a stalled event loop would cost, without the stall). */
class SteppedClock extends SystemClock {
  #skippedMs = 0;
  override now(): number {
    return super.now() + this.#skippedMs;
  }
  skip(ms: number): void {
    this.#skippedMs += ms;
  }
}

/** name, type, label names (without `le`) */
const CONTRACT: readonly [string, string, readonly string[]][] = [
  ['slogate_requests_total', 'counter', ['route', 'variant', 'code', 'revision']],
  ['slogate_request_duration_seconds', 'histogram', ['route', 'variant', 'revision']],
  ['slogate_queue_duration_seconds', 'histogram', ['variant']],
  ['slogate_inference_duration_seconds', 'histogram', ['variant']],
  ['slogate_batch_size', 'histogram', ['variant']],
  ['slogate_slo_requests_total', 'counter', ['route', 'outcome']],
  ['slogate_route_variant_share', 'gauge', ['route', 'variant']],
  ['slogate_decision_changes_total', 'counter', ['route']],
  ['slogate_route_arrival_rate', 'gauge', ['route']],
  ['slogate_route_slo_load_ratio', 'gauge', ['route']],
  ['slogate_route_p99_predicted_seconds', 'gauge', ['route']],
  ['slogate_route_p99_observed_seconds', 'gauge', ['route']],
  ['slogate_route_p99_target_seconds', 'gauge', ['route']],
  ['slogate_queue_depth', 'gauge', ['variant']],
  ['slogate_replicas', 'gauge', ['state']],
  ['slogate_replica_restarts_total', 'counter', []],
  ['slogate_batch_retries_total', 'counter', []],
  ['slogate_cost_total', 'counter', ['route', 'variant']],
  ['slogate_shed_total', 'counter', ['route', 'code']],
  ['slogate_invalid_requests_total', 'counter', ['route']],
  ['slogate_rollout_phase', 'gauge', ['model', 'variant']],
  ['slogate_rollout_share', 'gauge', ['model', 'variant', 'revision']],
  ['slogate_rollout_events_total', 'counter', ['model', 'variant', 'event']],
  ['slogate_shadow_requests_total', 'counter', ['model', 'variant', 'outcome']],
];

const PIXELS = new Array(784).fill(0.5);
const inferBody = (parameters?: Record<string, unknown>) =>
  JSON.stringify({
    inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: PIXELS }],
    ...(parameters === undefined ? {} : { parameters }),
  });

describe('GET /metrics after real traffic', () => {
  let sg: Slogate;
  let url: string;
  let families: Map<string, Family>;
  const sent = { met: 30, tight: 6, shed: 5, dropped: 5, invalid: 3 };
  let probes = 0;

  const post = async (path: string, body: string, want: number) => {
    const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.arrayBuffer();
    assert.equal(r.status, want, `${path}: ${r.headers.get('x-slogate-error-code')}`);
  };

  before(async () => {
    const config = digitsConfig({
      routes: {
        digits: { model: 'digits', slo: { p99Ms: 200 } },
        // Answered late: the test's clock skips 150 ms as each of its batches completes (below), as if the gateway
        // stalled. A target this loose keeps a loaded host's pauses from dropping a request before dispatch.
        tight: { model: 'digits', slo: { p99Ms: 100 }, policy: { static: { variant: 'tiny', maxBatch: 1 } } },
        // Adaptive with a target no variant can meet: once decided, admission refuses every request (shed).
        hopeless: { model: 'digits', slo: { p99Ms: 0.001 } },
      },
    });
    const clock = new SteppedClock();
    sg = await createSlogate({ config, clock, logger: pino({ level: 'silent' }), defaultMetrics: true, env: {} });
    url = await sg.listen(0);
    // The `tight` route's answers arrive 150 ms after its batches finish, by the gateway's clock: past its target
    // every time, with no CPU burnt in a busy-wait. (Profiles learn before this listener runs: they are unaffected.)
    sg.runtime.onBatch((o) => {
      if (o.variant === 'tiny') clock.skip(150);
    });
    for (let i = 0; i < sent.met; i += 3)
      await Promise.all([0, 1, 2].map(() => post('/v2/models/digits/infer', inferBody(), 200)));
    for (let i = 0; i < sent.tight; i++) await post('/v2/models/tight/infer', inferBody(), 200);
    for (let i = 0; i < 100 && sg.controller.current('hopeless') === undefined; i++)
      await new Promise((r) => setTimeout(r, 20));
    // Shed (429), except a probe the engine lets through once it has seen arrivals (a tick can land between two of
    // these requests): admitted, then dropped by its queue (503), as nothing can meet 1 us.
    for (let shed = 0, i = 0; shed < sent.shed && i < 50; i++) {
      const r = await fetch(`${url}/v2/models/hopeless/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: inferBody(),
      });
      await r.arrayBuffer();
      if (r.status === 429) shed++;
      else {
        assert.equal(`${r.status} ${r.headers.get('x-slogate-error-code')}`, '503 SLOGATE_ERR_DEADLINE_UNREACHABLE');
        probes++;
      }
    }
    // A 1 us timeout (known only once the body is parsed, after admission): queued, then expired (dropped).
    for (let i = 0; i < sent.dropped; i++)
      await post(`/v2/models/digits${i % 2 === 0 ? '/versions/large' : ''}/infer`, inferBody({ timeout: 1 }), 503);
    for (let i = 0; i < sent.invalid; i++)
      await post(
        '/v2/models/digits/infer',
        JSON.stringify({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }),
        400,
      );
    await new Promise((r) => setTimeout(r, 2 * sg.config.engine.tickMs));
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^text\/plain; version=0\.0\.4/);
    families = parseExposition(await res.text());
  });

  after(async () => {
    await sg?.close();
  });

  test('every contract metric is exported with its type, HELP and label names, and has samples', () => {
    for (const [name, type, labels] of CONTRACT) {
      const f = families.get(name);
      assert.ok(f !== undefined, `${name} missing`);
      assert.equal(f.type, type, `${name} type`);
      assert.ok((f.help ?? '').length > 10, `${name} HELP`);
      assert.ok(f.samples.length > 0, `${name} has no samples after traffic`);
      for (const s of f.samples) {
        const names = Object.keys(s.labels)
          .filter((l) => l !== 'le')
          .sort();
        assert.deepEqual(names, [...labels].sort(), `${s.name} labels`);
      }
    }
  });

  test('slogate_inline_batches_total is declared, by variant, and counts no more batches than ran', () => {
    const f = families.get('slogate_inline_batches_total');
    assert.equal(f?.type, 'counter');
    assert.ok((f?.help ?? '').length > 10);
    for (const s of f?.samples ?? []) {
      assert.deepEqual(Object.keys(s.labels), ['variant']);
      const ran = families
        .get('slogate_batch_size')
        ?.samples.find((b) => b.name === 'slogate_batch_size_count' && b.labels.variant === s.labels.variant);
      assert.ok(s.value <= (ran?.value ?? 0), `${s.labels.variant}: ${s.value} inline of ${ran?.value} batches`);
    }
  });

  test('slogate_cache_requests_total is declared (HELP and TYPE) for the response cache', () => {
    const f = families.get('slogate_cache_requests_total');
    assert.equal(f?.type, 'counter');
    assert.ok((f?.help ?? '').length > 0);
    for (const s of f?.samples ?? []) assert.deepEqual(Object.keys(s.labels).sort(), ['result', 'route']);
  });

  test('label values are bounded: configured routes, model/variant names, status classes, outcomes', () => {
    const variants = new Set(['none', ...sg.runtime.queueStats().map((q) => `${q.model}/${q.variant}`)]);
    for (const f of families.values()) {
      if (!f.name.startsWith('slogate_')) continue;
      for (const s of f.samples) {
        if (s.labels.route !== undefined)
          assert.ok((ROUTES as readonly string[]).includes(s.labels.route), `${s.name} route=${s.labels.route}`);
        // With a model label (the lifecycle metrics), the variant label is the bare variant name.
        const variant = s.labels.model === undefined ? s.labels.variant : `${s.labels.model}/${s.labels.variant}`;
        if (s.labels.variant !== undefined) assert.ok(variants.has(variant as string), `${s.name} variant=${variant}`);
        if (s.labels.code !== undefined && f.name === 'slogate_requests_total')
          assert.match(s.labels.code, /^[1-5]xx$/);
        if (s.labels.code !== undefined && f.name === 'slogate_shed_total')
          assert.match(s.labels.code, /^SLOGATE_ERR_[A-Z_]+$/);
        const outcomes =
          f.name === 'slogate_shadow_requests_total'
            ? ['compared', 'agreed', 'dropped']
            : ['met', 'missed', 'shed', 'dropped'];
        if (s.labels.outcome !== undefined)
          assert.ok(outcomes.includes(s.labels.outcome), `${s.name} ${s.labels.outcome}`);
        if (s.labels.revision !== undefined && f.name.startsWith('slogate_request'))
          assert.ok(['active', 'candidate'].includes(s.labels.revision), `${s.name} revision=${s.labels.revision}`);
        if (s.labels.state !== undefined) assert.ok(['pending', 'ready', 'suspect', 'down'].includes(s.labels.state));
      }
    }
  });

  test('per route, requests_total over variant and code equals met + missed + shed + dropped', () => {
    const sum = (name: string, route: string) =>
      (families.get(name)?.samples ?? []).filter((s) => s.labels.route === route).reduce((a, s) => a + s.value, 0);
    for (const route of ROUTES)
      assert.equal(sum('slogate_requests_total', route), sum('slogate_slo_requests_total', route), route);
    const outcome = (route: string, o: string) =>
      families
        .get('slogate_slo_requests_total')
        ?.samples.find((s) => s.labels.route === route && s.labels.outcome === o)?.value;
    assert.equal(outcome('digits', 'met'), sent.met);
    assert.equal(outcome('digits', 'missed'), 0);
    assert.equal(outcome('digits', 'shed'), 0);
    assert.equal(outcome('digits', 'dropped'), sent.dropped);
    assert.equal(outcome('hopeless', 'shed'), sent.shed);
    assert.equal(outcome('hopeless', 'dropped'), probes, "the engine's probes, admitted and dropped");
    assert.equal(outcome('tight', 'missed'), sent.tight);
    assert.equal(outcome('tight', 'met'), 0, 'outcomes start at zero, so ratios exist before the first miss');
    assert.equal(outcome('tight', 'shed'), 0);
    const req = (route: string, variant: string, code: string) =>
      families
        .get('slogate_requests_total')
        ?.samples.find((s) => s.labels.route === route && s.labels.variant === variant && s.labels.code === code)
        ?.value;
    assert.equal(req('hopeless', 'none', '4xx'), sent.shed, 'shed: 429, no variant ran');
    const failed = (families.get('slogate_requests_total')?.samples ?? []).filter(
      (s) => s.labels.route === 'digits' && s.labels.code === '5xx',
    );
    assert.equal(
      failed.reduce((n, s) => n + s.value, 0),
      sent.dropped,
      'dropped: 503 (labelled with the variant whose queue dropped it)',
    );
    assert.equal(req('tight', 'digits/tiny', '2xx'), sent.tight, 'late answers are still 200');
    const shedTotal = (route: string, code: string) =>
      families.get('slogate_shed_total')?.samples.find((s) => s.labels.route === route && s.labels.code === code)
        ?.value;
    assert.equal(shedTotal('hopeless', 'SLOGATE_ERR_SHED'), sent.shed);
    assert.equal(shedTotal('digits', 'SLOGATE_ERR_DEADLINE_UNREACHABLE'), sent.dropped);
    assert.equal(
      families.get('slogate_invalid_requests_total')?.samples.find((s) => s.labels.route === 'digits')?.value,
      sent.invalid,
      'malformed requests are no SLO event',
    );
  });

  test('histograms have millisecond buckets, and count what ran', () => {
    const buckets = (families.get('slogate_inference_duration_seconds')?.samples ?? []).filter((s) =>
      s.name.endsWith('_bucket'),
    );
    const edges = [...new Set(buckets.map((s) => Number(s.labels.le)))].sort((a, b) => a - b);
    assert.ok(edges.filter((e) => e <= 0.01).length >= 8, `sub-10 ms buckets: ${edges.join(', ')}`);
    assert.ok(edges[0] !== undefined && edges[0] <= 0.0001);
    const count = (name: string) =>
      (families.get(name)?.samples ?? []).filter((s) => s.name === `${name}_count`).reduce((a, s) => a + s.value, 0);
    const sumOf = (name: string) =>
      (families.get(name)?.samples ?? []).filter((s) => s.name === `${name}_sum`).reduce((a, s) => a + s.value, 0);
    const served = sent.met + sent.tight;
    assert.equal(count('slogate_request_duration_seconds'), served, 'one observation per answered request');
    assert.equal(count('slogate_queue_duration_seconds'), served, 'one per dispatched request');
    assert.equal(sumOf('slogate_batch_size'), served, 'every answered row ran in one batch');
    assert.equal(
      count('slogate_inference_duration_seconds'),
      count('slogate_batch_size'),
      'one per batch, measured in the worker',
    );
  });

  test('gauges reflect live state: decisions, rates, p99s, targets, replicas, queues, cost', () => {
    const g = (name: string, labels: Record<string, string>) =>
      families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const shares = (families.get('slogate_route_variant_share')?.samples ?? []).filter(
      (s) => s.labels.route === 'digits',
    );
    assert.ok(Math.abs(shares.reduce((a, s) => a + s.value, 0) - 1) < 1e-6, 'the shares of a decision sum to 1');
    assert.equal(g('slogate_route_variant_share', { route: 'tight', variant: 'digits/tiny' }), 1);
    assert.ok((g('slogate_route_arrival_rate', { route: 'digits' }) ?? 0) > 0);
    assert.ok((g('slogate_route_p99_predicted_seconds', { route: 'digits' }) ?? 0) > 0);
    assert.ok((g('slogate_route_p99_observed_seconds', { route: 'digits' }) ?? 0) > 0);
    assert.equal(g('slogate_route_p99_target_seconds', { route: 'digits' }), 0.2);
    assert.equal(g('slogate_route_p99_target_seconds', { route: 'tight' }), 0.1);
    assert.equal(g('slogate_replicas', { state: 'ready' }), 1);
    assert.equal(g('slogate_queue_depth', { variant: 'digits/large' }), 0);
    assert.equal(families.get('slogate_replica_restarts_total')?.samples[0]?.value, 0);
    assert.ok((g('slogate_cost_total', { route: 'tight', variant: 'digits/tiny' }) ?? 0) > 0);
    assert.ok(families.get('slogate_decision_changes_total')?.samples.some((s) => s.labels.route === 'tight'));
  });

  test('Node process defaults are exported: event loop lag, heap, GC, CPU', () => {
    for (const name of [
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      assert.ok((families.get(name)?.samples.length ?? 0) > 0, name);
    }
    assert.equal(families.get('nodejs_gc_duration_seconds')?.type, 'histogram');
  });

  /** Metric names an expression refers to (recording-rule names contain ':' and are not metrics). */
  const referenced = (expr: string) =>
    [...expr.matchAll(/\b((?:slogate|nodejs|process)_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
  const exported = () => new Set([...families.values()].flatMap((f) => f.samples.map((s) => s.name)));

  test('the Grafana dashboard parses and every metric it charts exists', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'slogate-dashboard.json'), 'utf8')) as {
      title: string;
      panels: { type: string; title: string; targets?: { expr: string }[] }[];
    };
    assert.equal(dash.title, 'slogate');
    const names = exported();
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    assert.ok(exprs.length >= 15);
    const used = new Set(exprs.flatMap(referenced));
    for (const name of used) assert.ok(names.has(name), `dashboard uses ${name}, which /metrics does not export`);
    for (const want of [
      'slogate_slo_requests_total',
      'slogate_route_p99_target_seconds',
      'slogate_route_variant_share',
      'slogate_batch_size_bucket',
      'slogate_replicas',
    ]) {
      assert.ok(used.has(want), `dashboard charts ${want}`);
    }
  });

  test('the Prometheus alerts parse, burn-rate alerts use slogate_slo_requests_total, and every metric exists', () => {
    const doc = parseYaml(readFileSync(join(ROOT, 'deploy', 'prometheus', 'alerts.yaml'), 'utf8')) as {
      groups: {
        name: string;
        rules: {
          record?: string;
          alert?: string;
          expr: string;
          labels?: Record<string, string>;
          annotations?: Record<string, string>;
        }[];
      }[];
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    const records = new Set(rules.flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const names = exported();
    for (const r of rules) {
      assert.equal(typeof r.expr, 'string');
      assert.ok((r.record === undefined) !== (r.alert === undefined), 'a rule records or alerts');
      for (const name of referenced(r.expr))
        assert.ok(names.has(name), `${r.record ?? r.alert} uses ${name}, which /metrics does not export`);
      for (const rec of r.expr.match(/slogate:[a-z0-9_:]+/g) ?? []) assert.ok(records.has(rec), `${rec} is recorded`);
      if (r.alert !== undefined) {
        assert.ok(['page', 'ticket'].includes(r.labels?.severity ?? ''), `${r.alert} severity`);
        assert.ok((r.annotations?.summary ?? '').length > 0, `${r.alert} summary`);
      }
    }
    for (const r of rules.filter((x) => x.record !== undefined)) assert.match(r.expr, /slogate_slo_requests_total/);
    const burn = rules.filter((r) => r.alert?.includes('Burn'));
    assert.equal(burn.length, 2);
    for (const b of burn)
      assert.equal((b.expr.match(/slogate:slo_errors:ratio_rate\w+/g) ?? []).length, 4, `${b.alert}: two window pairs`);
  });
});
