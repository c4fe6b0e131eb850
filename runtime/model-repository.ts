// Model files: checked and content-hashed (sha256) at load, their signatures read from the first replica and
// checked to agree across a model's variants, and their measured accuracy read from the model's metadata file
// (written by `slogate eval`, trusted only while the file hash still matches).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Config, ModelConfig } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { ModelSignature, TensorSpec } from '../core/types.js';
import type { SessionDescription } from './worker/messages.js';

export interface VariantInfo {
  readonly model: string;
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly description?: string | undefined;
  /** Accuracy on the model's eval set, from the metadata file; undefined until `slogate eval` has run. */
  accuracy: number | undefined;
}

export interface ModelInfo {
  readonly name: string;
  readonly config: ModelConfig;
  readonly variants: ReadonlyMap<string, VariantInfo>;
  signature: ModelSignature | undefined;
}

/** The metadata file `slogate eval` writes beside the model (models/<model>/model.yaml). */
export interface ModelMetadataFile {
  model: string;
  eval?: { file: string; sha256: string; samples: number };
  evaluatedAt?: string;
  variants: Record<string, { sha256: string; accuracy: number; correct: number; samples: number; provider?: string }>;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function readMetadataFile(path: string): ModelMetadataFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const raw = parseYaml(readFileSync(path, 'utf8')) as ModelMetadataFile | null;
    if (raw === null || typeof raw !== 'object' || typeof raw.variants !== 'object') return undefined;
    return raw;
  } catch {
    return undefined;
  }
}

export class ModelRepository {
  readonly #models = new Map<string, ModelInfo>();
  /** Warnings found at load (stale or missing accuracy), for the start-up log. */
  readonly warnings: string[] = [];

  static async load(config: Readonly<Config>): Promise<ModelRepository> {
    const repo = new ModelRepository();
    for (const [name, mc] of Object.entries(config.models)) {
      const meta = mc.metadata === undefined ? undefined : readMetadataFile(mc.metadata);
      const variants = new Map<string, VariantInfo>();
      for (const [vname, vc] of Object.entries(mc.variants)) {
        let size: number;
        try {
          const st = statSync(vc.path);
          if (!st.isFile()) throw new Error('not a regular file');
          size = st.size;
        } catch (err) {
          throw new SlogateError(
            'SLOGATE_ERR_MODEL_LOAD',
            `model ${name}, variant ${vname}: cannot read ${vc.path}: ${(err as Error).message}`,
          );
        }
        if (size === 0)
          throw new SlogateError(
            'SLOGATE_ERR_MODEL_LOAD',
            `model ${name}, variant ${vname}: ${vc.path} is empty, not an ONNX model`,
          );
        const sha256 = await sha256File(vc.path);
        const recorded = meta?.variants?.[vname];
        let accuracy: number | undefined;
        if (recorded === undefined) repo.warnings.push(`${name}/${vname}: no recorded accuracy; run \`slogate eval\``);
        else if (recorded.sha256 !== sha256)
          repo.warnings.push(
            `${name}/${vname}: recorded accuracy is for another file (hash changed); run \`slogate eval\``,
          );
        else accuracy = recorded.accuracy;
        variants.set(vname, {
          model: name,
          name: vname,
          path: vc.path,
          sha256,
          sizeBytes: size,
          description: vc.description,
          accuracy,
        });
      }
      repo.#models.set(name, { name, config: mc, variants, signature: undefined });
    }
    return repo;
  }

  get models(): ReadonlyMap<string, ModelInfo> {
    return this.#models;
  }

  model(name: string): ModelInfo {
    const m = this.#models.get(name);
    if (m === undefined) throw new SlogateError('SLOGATE_ERR_ROUTE_NOT_FOUND', `unknown model '${name}'`);
    return m;
  }

  variant(model: string, name: string): VariantInfo {
    const v = this.model(model).variants.get(name);
    if (v === undefined)
      throw new SlogateError('SLOGATE_ERR_VARIANT_NOT_FOUND', `model '${model}' has no variant '${name}'`);
    return v;
  }

  /** Installs signatures from a replica's description; every variant of a model must agree exactly. */
  applyDescriptions(sessions: readonly SessionDescription[]): void {
    for (const m of this.#models.values()) {
      let ref: { variant: string; inputs: TensorSpec[]; outputs: TensorSpec[] } | undefined;
      for (const s of sessions.filter((x) => x.model === m.name)) {
        if (ref === undefined) {
          ref = s;
          continue;
        }
        const diff = signatureDiff(ref, s);
        if (diff !== undefined) {
          const path = m.variants.get(s.variant)?.path ?? s.variant;
          throw new SlogateError(
            'SLOGATE_ERR_MODEL_LOAD',
            `model ${m.name}: ${path} (variant ${s.variant}) does not match variant ${ref.variant}: ${diff}`,
          );
        }
      }
      if (ref === undefined) throw new SlogateError('SLOGATE_ERR_MODEL_LOAD', `model ${m.name}: no replica loaded it`);
      const batchable = [...ref.inputs, ...ref.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);
      m.signature = { inputs: ref.inputs, outputs: ref.outputs, batchable };
    }
  }

  signature(model: string): ModelSignature {
    const s = this.model(model).signature;
    if (s === undefined)
      throw new SlogateError('SLOGATE_ERR_NOT_READY', `model '${model}' is still loading`, { retryAfterMs: 1000 });
    return s;
  }
}

function specString(t: TensorSpec): string {
  return `${t.name}:${t.datatype}[${t.shape.join(',')}]`;
}

function signatureDiff(
  a: { inputs: TensorSpec[]; outputs: TensorSpec[] },
  b: { inputs: TensorSpec[]; outputs: TensorSpec[] },
): string | undefined {
  const sa = (l: TensorSpec[]) => l.map(specString).sort().join(' ');
  if (sa(a.inputs) !== sa(b.inputs)) return `inputs ${sa(b.inputs)} vs ${sa(a.inputs)}`;
  if (sa(a.outputs) !== sa(b.outputs)) return `outputs ${sa(b.outputs)} vs ${sa(a.outputs)}`;
  return undefined;
}
