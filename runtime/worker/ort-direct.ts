// A session whose run is one synchronous native call. onnxruntime-node's InferenceSession.run makes that same native
// call, but from a setImmediate: the batch answers one event-loop turn after it was sent, and on the main thread
// (inline batches) that extra turn lies on the path of every request in the batch. The native session is
// onnxruntime-node's own binding (dist/binding.js, which the package does not hide behind an exports map); where it
// has another shape (another onnxruntime-node), openDirectSession answers undefined and callers keep the public API.
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';

export type Outputs = Record<string, Ort.OnnxValue>;

interface NativeSession {
  loadModel(path: string, options: Ort.InferenceSession.SessionOptions): void;
  run(feeds: Record<string, Ort.Tensor>, fetches: Record<string, null>, options: object): Outputs;
  dispose(): void;
  readonly outputMetadata: readonly { readonly name: string }[];
}

interface Binding {
  initOrt(): void;
  binding: { InferenceSession: new () => NativeSession };
}

export interface DirectSession {
  readonly outputNames: readonly string[];
  /** Runs on the calling thread and returns once done; throws what onnxruntime throws. */
  run(feeds: Record<string, Ort.Tensor>, outputs?: readonly string[]): Outputs;
  release(): void;
}

const RUN_OPTIONS = {};
let binding: Binding | undefined | null = null;

/** onnxruntime-node's binding when it has the methods used here, else undefined (looked up once). */
function nativeBinding(): Binding | undefined {
  if (binding !== null) return binding;
  binding = undefined;
  try {
    const b = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<Binding>;
    const proto = (b.binding?.InferenceSession as { prototype?: Partial<NativeSession> } | undefined)?.prototype;
    const methods = [proto?.loadModel, proto?.run, proto?.dispose];
    if (typeof b.initOrt === 'function' && methods.every((m) => typeof m === 'function')) binding = b as Binding;
  } catch {
    // another package layout: the public API serves
  }
  return binding;
}

/** Loads `path` synchronously on the calling thread; undefined when the binding is not the expected one. */
export function openDirectSession(
  path: string,
  options: Ort.InferenceSession.SessionOptions,
): DirectSession | undefined {
  const b = nativeBinding();
  if (b === undefined) return undefined;
  b.initOrt();
  const native = new b.binding.InferenceSession();
  native.loadModel(path, options);
  const metadata: unknown = native.outputMetadata;
  if (!Array.isArray(metadata)) {
    native.dispose();
    return undefined;
  }
  const outputNames = metadata.map((m: { name: string }) => m.name);
  return {
    outputNames,
    run(feeds, outputs = outputNames) {
      const fetches: Record<string, null> = {};
      for (const name of outputs) fetches[name] = null;
      return native.run(feeds, fetches, RUN_OPTIONS);
    },
    release() {
      try {
        native.dispose();
      } catch {
        // already gone: nothing is left to free
      }
    },
  };
}
