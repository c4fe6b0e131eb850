// Model files: checked and content-hashed (sha256) at load, their signatures read from the first replica and
// checked to agree across a model's variants, and their measured accuracy read from the model's metadata file
// (written by `slogate eval`, trusted only while the file hash still matches). A variant whose model store has an
// active revision serves that file instead of the config's.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Config, ModelConfig } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { ModelSignature, TensorSpec } from '../core/types.js';
import type { ModelStore } from './model-store.js';
import type { SessionDescription } from './worker/messages.js';

/** A variant and the revision it serves now (changed in place when another revision becomes active). */
export interface VariantInfo {
  readonly model: string;
  readonly name: string;
  path: string;
  /** Hex sha256 of the served file: its revision is `sha256:<this>`. */
  sha256: string;
  sizeBytes: number;
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

  /** Reads the config's model files, or the store's active revision of a variant where it has one. */
  static async load(config: Readonly<Config>, store?: ModelStore): Promise<ModelRepository> {
    const repo = new ModelRepository();
    for (const [name, mc] of Object.entries(config.models)) {
      const meta = mc.metadata === undefined ? undefined : readMetadataFile(mc.metadata);
      const variants = new Map<string, VariantInfo>();
      for (const [vname, vc] of Object.entries(mc.variants)) {
        const stored = store?.activeRevision(name, vname);
        const fromStore = stored !== undefined && (vc.sha256 === undefined || vc.sha256 === stored);
        const path = fromStore ? (store as ModelStore).fileOf(stored) : vc.path;
        const size = fileSize(name, vname, path);
        const sha256 = await sha256File(path);
        if (vc.sha256 !== undefined && vc.sha256 !== `sha256:${sha256}`)
          throw new SlogateError(
            'SLOGATE_ERR_MODEL_LOAD',
            `model ${name}, variant ${vname}: ${path} is sha256:${sha256}, not the pinned ${vc.sha256}`,
          );
        const recorded = meta?.variants?.[vname];
        const gated = fromStore ? store?.gateValue(name, vname, stored, 'accuracy') : undefined;
        let accuracy: number | undefined;
        if (gated !== undefined) accuracy = gated;
        else if (recorded === undefined)
          repo.warnings.push(`${name}/${vname}: no recorded accuracy; run \`slogate eval\``);
        else if (recorded.sha256 !== sha256)
          repo.warnings.push(
            `${name}/${vname}: recorded accuracy is for another file (hash changed); run \`slogate eval\``,
          );
        else accuracy = recorded.accuracy;
        variants.set(vname, {
          model: name,
          name: vname,
          path,
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

  /** A variant that joined while serving (runtime/variant-lifecycle.ts). */
  addVariant(info: VariantInfo): void {
    (this.model(info.model).variants as Map<string, VariantInfo>).set(info.name, info);
  }

  /** Forgets a variant: the engine and the router stop choosing it. */
  removeVariant(model: string, variant: string): void {
    (this.model(model).variants as Map<string, VariantInfo>).delete(variant);
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

function fileSize(model: string, variant: string, path: string): number {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new SlogateError(
      'SLOGATE_ERR_MODEL_LOAD',
      `model ${model}, variant ${variant}: cannot read ${path}: ${(err as Error).message}`,
    );
  }
  if (size === 0)
    throw new SlogateError(
      'SLOGATE_ERR_MODEL_LOAD',
      `model ${model}, variant ${variant}: ${path} is empty, not an ONNX model`,
    );
  return size;
}

function specString(t: TensorSpec): string {
  return `${t.name}:${t.datatype}[${t.shape.join(',')}]`;
}

/** What differs between two signatures (inputs first), or undefined when they match exactly. */
export function signatureDiff(
  a: { inputs: TensorSpec[]; outputs: TensorSpec[] },
  b: { inputs: TensorSpec[]; outputs: TensorSpec[] },
): string | undefined {
  const sa = (l: TensorSpec[]) => l.map(specString).sort().join(' ');
  if (sa(a.inputs) !== sa(b.inputs)) return `inputs ${sa(b.inputs)} vs ${sa(a.inputs)}`;
  if (sa(a.outputs) !== sa(b.outputs)) return `outputs ${sa(b.outputs)} vs ${sa(a.outputs)}`;
  return undefined;
}
