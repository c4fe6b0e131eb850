// Developer tool: latency (batch 1 / batch 32, median ms per batch, one
// intra-op thread) and eval.bin accuracy of every digits variant.
//
//   node models/digits/bench-variants.mjs [DIR]   (DIR defaults to this folder)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(process.argv[2] ?? here);
const ORDER = ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large'];
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx'));
const names = [
  ...ORDER.filter((n) => files.includes(`${n}.onnx`)),
  ...files
    .map((f) => f.slice(0, -5))
    .filter((n) => !ORDER.includes(n))
    .sort(),
];

const opts = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

function readEval(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('ascii', 0, 8) !== 'SLGEVAL1') throw new Error('bad magic');
  const n = buf.readUInt32LE(8);
  const f = buf.readUInt32LE(12);
  const scale = buf.readUInt32LE(16);
  const labels = buf.subarray(24, 24 + n);
  const start = Math.ceil((24 + n) / 8) * 8;
  const x = new Float32Array(n * f);
  for (let i = 0; i < n * f; i++) x[i] = buf.readUInt16LE(start + 2 * i) / scale;
  return { n, f, labels, x };
}

const ev = readEval(path.join(here, 'eval.bin'));
const input = (off, b) => new ort.Tensor('float32', ev.x.subarray(off * ev.f, (off + b) * ev.f), [b, ev.f]);
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1];

async function latency(sess, b, warm, runs) {
  const feeds = { pixels: input(0, b) };
  for (let i = 0; i < warm; i++) await sess.run(feeds);
  const t = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(t);
}

console.log('variant       size_KB   b1_ms   b32_ms   accuracy');
for (const name of names) {
  const file = path.join(dir, `${name}.onnx`);
  const sess = await ort.InferenceSession.create(file, opts);
  const sig = `${sess.inputNames.join(',')} -> ${sess.outputNames.join(',')}`;
  if (sig !== 'pixels -> logits,label') throw new Error(`${name}: unexpected signature ${sig}`);
  let correct = 0;
  let agree = 0;
  for (let off = 0; off < ev.n; off += 250) {
    const b = Math.min(250, ev.n - off);
    const out = await sess.run({ pixels: input(off, b) });
    const logits = out.logits.data;
    const label = out.label.data;
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
      if (best === ev.labels[off + i]) correct++;
      if (Number(label[i]) === best) agree++;
    }
  }
  const b1 = await latency(sess, 1, 50, 300);
  const b32 = await latency(sess, 32, 10, 200);
  const kb = fs.statSync(file).size / 1024;
  const note = agree === ev.n ? '' : `  (label output disagrees with argmax on ${ev.n - agree})`;
  console.log(
    `${name.padEnd(12)} ${kb.toFixed(0).padStart(8)} ${b1.toFixed(3).padStart(7)} ${b32.toFixed(3).padStart(8)}   ${((100 * correct) / ev.n).toFixed(2)}%${note}`,
  );
  await sess.release();
}
