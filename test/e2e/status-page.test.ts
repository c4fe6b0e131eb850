// The status page in a real browser: headless Chromium (Debian's package, driven by playwright-core) opens it on a
// live server under real traffic and checks that routes, numbers and replicas render from live data, that the page
// fetches nothing but its own data and breaks no Content-Security-Policy rule; it saves test-artifacts/status.png.
// Skipped, with a message, where Chromium is not installed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { StatusData } from '../../gateway/status/status-data.js';
import type { Slogate } from '../../main.js';
import { digitsConfig, ROOT, startSlogate, tempDir } from '../helpers.js';

/** The little of the DOM the page.evaluate() callbacks use (they run in the browser; tsc compiles them without DOM types). */
interface DomElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
}
declare const document: DomElement & { readonly body: DomElement };

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium): skipping the browser test of the status page`;
if (skip !== false) console.log(`# ${skip}`);

const PIXELS = new Array(784).fill(0.3);
const BODY = JSON.stringify({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: PIXELS }] });

/** Paced load: `ratePerS` requests a second for `durationMs`, each sent without waiting for the previous. Returns status counts. */
async function load(url: string, route: string, ratePerS: number, durationMs: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < (ratePerS * durationMs) / 1000; i++) {
    const due = start + (i * 1000) / ratePerS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      fetch(`${url}/v2/models/${route}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      }).then(async (r) => {
        await r.arrayBuffer();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }),
    );
  }
  await Promise.all(pending);
  return statuses;
}

describe('status page in headless Chromium', { skip }, () => {
  let sg: Slogate;
  let url: string;
  let context: BrowserContext;
  let page: Page;
  const profile = tempDir('slogate-chromium-');
  const requested: string[] = [];
  const problems: string[] = [];

  before(async () => {
    const config = digitsConfig({
      routes: {
        digits: { model: 'digits', slo: { p99Ms: 50, minAccuracy: 0.9 }, priority: 10 },
        'digits-fast': { model: 'digits', slo: { p99Ms: 4 }, objective: 'min-cost' },
      },
    });
    ({ sg, url } = await startSlogate(config));
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1360, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    await context?.close();
    await sg?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  test('renders every route, its numbers and the replicas from live data, refreshing every second', async () => {
    await page.goto(`${url}/status`);
    await page.waitForSelector('[data-route="digits"]');
    // Real traffic while the page is open: both routes, a few seconds.
    const [a, b] = await Promise.all([load(url, 'digits', 60, 5000), load(url, 'digits-fast', 30, 5000)]);
    assert.ok((a.get(200) ?? 0) > 20 && (b.get(200) ?? 0) > 0, `traffic answered: ${[...a]} ${[...b]}`);
    // The page refreshes by itself: wait until it shows a non-zero rate for both routes.
    await page.waitForFunction(
      () =>
        ['digits', 'digits-fast'].every((r) => {
          const v = document.querySelector(`[data-route="${r}"] [data-stat="rate"] .value`)?.textContent ?? '';
          return Number.parseFloat(v) > 0;
        }),
      undefined,
      { timeout: 10_000 },
    );
    const data = (await (await fetch(`${url}/status/data`)).json()) as StatusData;
    const shown = await page.evaluate(() =>
      [...document.querySelectorAll('[data-route]')].map((card) => ({
        route: card.getAttribute('data-route'),
        title: card.querySelector('h2')?.textContent ?? '',
        stats: Object.fromEntries(
          [...card.querySelectorAll('[data-stat]')].map((s) => [
            s.getAttribute('data-stat'),
            s.querySelector('.value')?.textContent ?? '',
          ]),
        ),
        reason: card.querySelector('[data-reason]')?.textContent ?? '',
        mixParts: card.querySelectorAll('[data-mix] span').length,
        latencyPath: card.querySelector('svg[data-chart="latency"] path')?.getAttribute('d') ?? '',
        trafficBars: card.querySelectorAll('svg[data-chart="traffic"] rect').length,
      })),
    );
    assert.deepEqual(
      shown.map((s) => s.route),
      data.routes.map((r) => r.name),
    );
    for (const s of shown) {
      const r = data.routes.find((x) => x.name === s.route);
      assert.ok(r !== undefined);
      assert.ok(s.title.startsWith(r.name));
      assert.match(s.stats.slo ?? '', new RegExp(`^${r.slo.p99Ms}(\\.0+)? ms`), `${r.name} SLO shown`);
      assert.match(s.stats.observed ?? '', /^\d+(\.\d+)? ms$/, `${r.name} observed p99 is a number`);
      // '–' is the page's sign for a route with no feasible prediction (a 4 ms target on a loaded host can be one).
      assert.match(s.stats.predicted ?? '', /^(\d+(\.\d+)? ms|–)$/, `${r.name} predicted p99 is a number or '–'`);
      assert.match(s.stats.attainment ?? '', /^\d+(\.\d+)?%$/);
      assert.match(s.stats.shed ?? '', /^\d+(\.\d+)?\/s$/);
      assert.ok(r.decision !== null);
      assert.equal(
        s.mixParts,
        r.decision.variants.filter((v) => v.share > 0).length,
        'one bar segment per variant in the mix',
      );
      assert.ok(s.reason.length > 0, 'the reason is shown');
      assert.ok(s.latencyPath.startsWith('M'), `${r.name}: the p99 line is drawn`);
      assert.ok(s.trafficBars > 0, `${r.name}: per-second traffic bars are drawn`);
    }
    const replicas = await page.$$eval('#replicas [data-state]', (els) => els.map((e) => e.getAttribute('data-state')));
    assert.deepEqual(replicas, ['ready']);
    const before = await page.getAttribute('body', 'data-updated');
    await page.waitForFunction((prev) => document.body.getAttribute('data-updated') !== prev, before, {
      timeout: 5000,
    });
  });

  test('the page loads nothing but itself and its data, and breaks no CSP rule', () => {
    const origin = new URL(url).origin;
    const foreign = requested.filter((u) => !u.startsWith(origin));
    assert.deepEqual(foreign, []);
    const paths = new Set(requested.map((u) => new URL(u).pathname));
    assert.deepEqual([...paths].sort(), ['/status', '/status/data'].sort());
    assert.deepEqual(problems, []);
  });

  test('a screenshot is saved to test-artifacts/status.png', async () => {
    const dir = join(ROOT, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'status.png');
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(existsSync(file));
  });
});
