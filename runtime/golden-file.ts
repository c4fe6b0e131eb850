// A model's golden answers (models.<m>.golden): inputs and what every acceptable revision must answer for them,
// either the predicted class per row (argmax of an output) or the output values within an absolute tolerance.
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { formatIssues } from '../core/config.js';
import { SlogateError } from '../core/errors.js';

const TensorSchema = z.strictObject({
  name: z.string().min(1),
  datatype: z.literal('FP32'),
  shape: z.array(z.number().int().min(1)).min(1),
  data: z.array(z.number()),
});

const ExpectSchema = z.union([
  z.strictObject({ output: z.string().min(1), argmax: z.array(z.number().int().min(0)).min(1) }),
  z.strictObject({ output: z.string().min(1), data: z.array(z.number()).min(1), atol: z.number().min(0) }),
]);

export const GoldenFileSchema = z.strictObject({
  cases: z
    .array(z.strictObject({ inputs: z.array(TensorSchema).min(1), expect: ExpectSchema }))
    .min(1)
    .max(1000),
});

export type GoldenFile = z.infer<typeof GoldenFileSchema>;
export type GoldenExpect = z.infer<typeof ExpectSchema>;

export function readGoldenFile(path: string): GoldenFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_CONFIG', `golden file ${path} cannot be read: ${(err as Error).message}`);
  }
  const parsed = GoldenFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new SlogateError(
      'SLOGATE_ERR_CONFIG',
      `golden file ${path}: ${formatIssues(parsed.error.issues).slice(0, 3).join('; ')}`,
    );
  for (const [i, c] of parsed.data.cases.entries())
    for (const t of c.inputs)
      if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length)
        throw new SlogateError(
          'SLOGATE_ERR_CONFIG',
          `golden file ${path}: case ${i} input ${t.name}: shape and data disagree`,
        );
  return parsed.data;
}

/**
 * Golden files parsed once per version of the file (its size and modification time): validating one costs tens of
 * milliseconds of the event loop, which a deploy under load would otherwise spend again each time.
 */
export class GoldenFiles {
  readonly #byPath = new Map<string, { size: number; mtimeMs: number; file: GoldenFile }>();

  read(path: string): GoldenFile {
    let size: number;
    let mtimeMs: number;
    try {
      ({ size, mtimeMs } = statSync(path));
    } catch (err) {
      throw new SlogateError('SLOGATE_ERR_CONFIG', `golden file ${path} cannot be read: ${(err as Error).message}`);
    }
    const held = this.#byPath.get(path);
    if (held !== undefined && held.size === size && held.mtimeMs === mtimeMs) return held.file;
    const file = readGoldenFile(path);
    this.#byPath.set(path, { size, mtimeMs, file });
    return file;
  }
}
