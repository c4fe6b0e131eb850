// One rollout under steady open-loop load (BENCHMARKS.md, "Rollouts"): deploys FILE with the server's rollout policy
// (or --rollout JSON) after 2 s of load, follows GET /admin/rollouts until it ends, and prints what it cost:
// seconds from deploy to the end (rollback or promotion), the share of requests answered by the candidate, failures,
// and SLO attainment during the rollout. Bounded: stops at --duration seconds whatever happens.
// --no-deploy is the baseline for the same sitting: the same load, deploying nothing, for --duration seconds, with
// "during the rollout" the window a rollout would have had (from 2 s to the end); the same report lines.
//   SLOGATE_ADMIN_TOKEN=... node dist/bench/rollout.js --url URL --route R --model M --variant V --file F.onnx \
//     --rate RPS [--duration 120] [--p99-ms 25] [--negative 0.05] [--rollout JSON] [--no-deploy]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { evalRow, readEvalSet } from '../runtime/eval-set.js';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' },
    route: { type: 'string' },
    model: { type: 'string' },
    variant: { type: 'string' },
    file: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '120' },
    'p99-ms': { type: 'string', default: '25' },
    negative: { type: 'string', default: '0' },
    rollout: { type: 'string' },
    eval: { type: 'string', default: 'models/digits/eval.bin' },
    'no-deploy': { type: 'boolean', default: false },
  },
});
const noDeploy = o['no-deploy'] === true;
for (const k of ['url', 'route', 'rate', ...(noDeploy ? [] : (['model', 'variant', 'file'] as const))] as const)
  if (o[k] === undefined) throw new Error(`--${k} is required`);
const url = (o.url as string).replace(/\/+$/, '');
const rate = Number(o.rate);
const durationMs = Number(o.duration) * 1000;
const sloMs = Number(o['p99-ms']);
const negative = Number(o.negative);
const auth = { authorization: `Bearer ${process.env.SLOGATE_ADMIN_TOKEN ?? ''}` };
const set = readEvalSet(o.eval as string);

/** Request bodies: eval rows, every 1/negative-th with a -1 pixel (inputs only live traffic has). */
const bodies = Array.from({ length: 512 }, (_, i) => {
  const data = Array.from(evalRow(set, i % set.count));
  if (negative > 0 && i % Math.round(1 / negative) === 0) data[0] = -1;
  return JSON.stringify({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data }] });
});

const tally = { sent: 0, ok: 0, failed: 0, shed: 0, met: 0, inRollout: 0, metInRollout: 0 };
let rolling = false;

async function one(i: number): Promise<void> {
  const t0 = performance.now();
  const during = rolling;
  const res = await fetch(`${url}/v2/models/${o.route}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: bodies[i % bodies.length],
  }).catch(() => undefined);
  await res?.arrayBuffer();
  const ms = performance.now() - t0;
  if (res === undefined || (res.status >= 500 && res.status !== 503)) tally.failed++;
  else if (res.status === 429 || res.status === 503) tally.shed++;
  else if (res.status === 200) tally.ok++;
  const met = res?.status === 200 && ms <= sloMs;
  if (met) tally.met++;
  if (during) {
    tally.inRollout++;
    if (met) tally.metInRollout++;
  }
}

async function candidateAnswers(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (
      line.startsWith('slogate_requests_total{') &&
      line.includes(`route="${o.route}"`) &&
      line.includes('revision="candidate"')
    )
      n += Number(line.split(' ').at(-1));
  return n;
}

async function main(): Promise<void> {
  const start = performance.now();
  const pending: Promise<void>[] = [];
  // Open loop: request i is sent at i / rate seconds, whatever the answers do.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (tally.sent < due && performance.now() - start < durationMs) pending.push(one(tally.sent++));
  }, 5);
  await new Promise((r) => setTimeout(r, 2000));
  const before = await candidateAnswers();
  const t0 = performance.now();
  rolling = true;
  const end = noDeploy ? await baseline(start) : await rollout(start, t0);
  const seconds = (performance.now() - t0) / 1000;
  rolling = false;
  clearInterval(timer);
  await Promise.all(pending);
  const candidate = (await candidateAnswers()) - before;
  console.log(`rollout: ${end?.state ?? 'not finished'} after ${seconds.toFixed(1)} s: ${end?.reason ?? ''}`);
  console.log(
    `requests: sent ${tally.sent}, answered ${tally.ok}, failed ${tally.failed}, shed ${tally.shed}; ` +
      `answered by the candidate ${candidate} (${((100 * candidate) / Math.max(1, tally.sent)).toFixed(2)}% of all)`,
  );
  console.log(
    `attainment (<= ${sloMs} ms): overall ${((100 * tally.met) / Math.max(1, tally.sent)).toFixed(2)}%, ` +
      `during the rollout ${((100 * tally.metInRollout) / Math.max(1, tally.inRollout)).toFixed(2)}%`,
  );
}

/** No deploy: the load runs to --duration; the "rollout" is the window after the lead-in. */
async function baseline(start: number): Promise<{ state: string; reason: string }> {
  console.log('deploy: none (--no-deploy baseline)');
  await new Promise((r) => setTimeout(r, Math.max(0, durationMs - (performance.now() - start))));
  return { state: 'none', reason: 'baseline without a rollout, same load' };
}

/** Deploys the file and follows its rollout until it ends or --duration runs out. */
async function rollout(start: number, t0: number): Promise<{ state: string; reason: string } | undefined> {
  const deploy = await fetch(`${url}/admin/models/${o.model}/variants/${o.variant}/revisions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      ...auth,
      ...(o.rollout === undefined ? {} : { 'x-slogate-rollout': o.rollout }),
    },
    body: readFileSync(o.file as string),
  });
  const outcome = (await deploy.json()) as { revision?: string; result?: string; error?: string };
  console.log(
    `deploy: HTTP ${deploy.status} ${outcome.result ?? outcome.error} after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  let end: { state: string; reason: string } | undefined;
  while (outcome.result === 'rollout' && end === undefined && performance.now() - start < durationMs) {
    await new Promise((r) => setTimeout(r, 200));
    const list = (await (await fetch(`${url}/admin/rollouts`, { headers: auth })).json()) as {
      finished: { revision: string; state: string; reason: string }[];
    };
    end = list.finished.find((r) => r.revision === outcome.revision);
  }
  return end;
}

await main();
