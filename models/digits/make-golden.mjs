// Golden answers for the digits model: the first 16 eval rows that every bundled variant classifies correctly, with
// their labels as the expected class. Any acceptable revision of any variant must reproduce them. Deterministic:
//   npx tsc -p tsconfig.json && node models/digits/make-golden.mjs && npx biome format --write models/digits/golden.json
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { SystemClock } from '../../dist/core/clock.js';
import { parseConfig } from '../../dist/core/config.js';
import { Metrics } from '../../dist/core/metrics.js';
import { readEvalSet } from '../../dist/runtime/eval-set.js';
import { predictions } from '../../dist/runtime/evaluate.js';
import { Runtime } from '../../dist/runtime/runtime.js';

const here = new URL('.', import.meta.url).pathname;
const VARIANTS = ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large'];
const ROWS = 256;
const KEEP = 16;
const config = parseConfig(
  {
    runtime: { workers: 1, profile: { enabled: false } },
    models: {
      digits: { maxBatch: ROWS, variants: Object.fromEntries(VARIANTS.map((v) => [v, { path: `${v}.onnx` }])) },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 1000 } } },
  },
  here,
);
const runtime = await Runtime.create({
  config,
  clock: new SystemClock(),
  metrics: new Metrics({ defaultMetrics: false }),
  logger: pino({ level: 'silent' }),
});
await runtime.start();
const set = readEvalSet(join(here, 'eval.bin'));
const input = runtime.signature('digits').inputs[0];
const data = set.data.slice(0, ROWS * set.features);
const ok = new Array(ROWS).fill(true);
for (const variant of VARIANTS) {
  const r = await runtime.submit({
    model: 'digits',
    variant,
    inputs: [{ name: input.name, datatype: 'FP32', shape: [ROWS, set.features], data }],
    rows: ROWS,
    arrivalMs: performance.now(),
    deadlineAtMs: performance.now() + 60_000,
    priority: 0,
  });
  const pred = predictions(r.outputs, ROWS);
  for (let i = 0; i < ROWS; i++) if (pred[i] !== set.labels[i]) ok[i] = false;
}
await runtime.close();
const rows = ok.flatMap((good, i) => (good ? [i] : [])).slice(0, KEEP);
const output = runtime.signature('digits').outputs[0].name;
const round = (x) => Math.round(x * 1e6) / 1e6;
const golden = {
  cases: [
    {
      inputs: [
        {
          name: input.name,
          datatype: 'FP32',
          shape: [rows.length, set.features],
          data: rows.flatMap((i) => Array.from(set.data.subarray(i * set.features, (i + 1) * set.features), round)),
        },
      ],
      expect: { output, argmax: rows.map((i) => set.labels[i]) },
    },
  ],
};
writeFileSync(join(here, 'golden.json'), `${JSON.stringify(golden)}\n`);
console.log(`golden.json: ${rows.length} rows (eval rows ${rows.join(', ')}), output ${output}`);
