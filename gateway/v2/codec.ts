// KServe V2 inference request/response bodies: JSON, and the binary tensor data extension both ways
// (Inference-Header-Content-Length, binary_data_size, binary_data_output, per-output binary_data).
import { clipText, describeValue } from '../../core/describe-value.js';
import { SlogateError } from '../../core/errors.js';
import type { ModelSignature, OutputRequest, Tensor, TensorSpec, V2Datatype } from '../../core/types.js';
import {
  binaryData,
  checkShape,
  decodeBinaryTensor,
  decodeJsonTensor,
  ELEMENT_BYTES,
  isV2Datatype,
  jsonDataString,
} from '../../runtime/tensor.js';

export interface ParsedInferRequest {
  readonly id: string | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** In the model's input order, in the model's datatypes. */
  readonly inputs: Tensor[];
  /** Rows along the batch dimension (1 when the model has none). */
  readonly rows: number;
  /** Requested outputs (undefined: all, in model order). */
  readonly outputs: OutputRequest[] | undefined;
  /** Default for outputs without their own binary_data flag. */
  readonly binaryOutput: boolean;
}

const bad = (msg: string) => new SlogateError('SLOGATE_ERR_BAD_REQUEST', msg);
const badJson = (msg: string) => new SlogateError('SLOGATE_ERR_INVALID_JSON', msg);
const badBinary = (msg: string) => new SlogateError('SLOGATE_ERR_BINARY_DATA', msg);
const mismatch = (msg: string) => new SlogateError('SLOGATE_ERR_INPUT_MISMATCH', msg);
const badParam = (msg: string) => new SlogateError('SLOGATE_ERR_BAD_PARAMETER', msg);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the Inference-Header-Content-Length header: undefined when absent. */
export function headerLength(value: string | string[] | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  const v = Array.isArray(value) ? value[0] : value;
  const n = v === undefined ? -1 : decimalValue(v, 10);
  if (n < 0)
    throw badBinary(`Inference-Header-Content-Length must be a non-negative integer, got '${String(v).slice(0, 20)}'`);
  if (n > bodyLength) throw badBinary(`Inference-Header-Content-Length (${n}) exceeds the body length (${bodyLength})`);
  return n;
}

/** The value of 1 to `maxDigits` decimal digits between optional spaces and tabs; -1 for anything else. */
export function decimalValue(s: string, maxDigits: number): number {
  let start = 0;
  let end = s.length;
  while (start < end && isBlank(s.charCodeAt(start))) start++;
  while (end > start && isBlank(s.charCodeAt(end - 1))) end--;
  if (end === start || end - start > maxDigits) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

function parseParameters(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObject(v)) throw badParam(`${where} parameters must be an object`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean')
      throw badParam(`${where} parameter '${clipText(k)}' must be a string, number or boolean`);
  }
  return v;
}

/**
 * Parses a V2 infer request body against a model signature. `jsonLength` is the Inference-Header-Content-Length
 * (undefined for a pure JSON body; 0 for a raw binary body holding the single input's bytes). Throws only
 * SlogateErrors with 4xx codes: whatever a body makes the decoder throw is the client's malformed request.
 */
export function parseInferRequest(
  body: Buffer,
  jsonLength: number | undefined,
  signature: ModelSignature,
  allowNonFinite: boolean,
  plans?: RequestPlans,
): ParsedInferRequest {
  try {
    return parseBody(body, jsonLength, signature, allowNonFinite, plans);
  } catch (err) {
    if (err instanceof SlogateError) throw err;
    // A check a hostile body slipped past (a value nested too deep, say) must still answer 400, never 500: a 500
    // would count as an SLO miss and feed the burn-rate alerts.
    const kind = err instanceof Error ? err.name : typeof err;
    throw new SlogateError('SLOGATE_ERR_BAD_REQUEST', `request body could not be decoded (${kind})`, { cause: err });
  }
}

function parseBody(
  body: Buffer,
  jsonLength: number | undefined,
  signature: ModelSignature,
  allowNonFinite: boolean,
  plans: RequestPlans | undefined,
): ParsedInferRequest {
  if (jsonLength === 0) return parseRawBinary(body, signature, allowNonFinite);
  const headerBytes = jsonLength === undefined ? body : body.subarray(0, jsonLength);
  const binaryBytes = jsonLength === undefined ? undefined : body.subarray(jsonLength);
  const known = binaryBytes === undefined ? undefined : plans?.get(signature, headerBytes, binaryBytes.byteLength);
  if (known !== undefined && binaryBytes !== undefined) return fromPlan(known, binaryBytes, allowNonFinite);
  const headerText = headerBytes.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(headerText);
  } catch (err) {
    throw badJson(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw badJson('request body must be a JSON object');
  const binary = binaryBytes;
  let id: string | undefined;
  if (doc.id !== undefined) {
    if (typeof doc.id !== 'string') throw bad("'id' must be a string");
    id = doc.id;
  }
  const parameters = parseParameters(doc.parameters, 'request');
  const binaryOutput = parameters.binary_data_output === true;
  if (parameters.binary_data_output !== undefined && typeof parameters.binary_data_output !== 'boolean')
    throw badParam("parameter 'binary_data_output' must be a boolean");
  if (!Array.isArray(doc.inputs) || doc.inputs.length === 0) throw mismatch("'inputs' must be a non-empty array");
  const byName = new Map<string, Tensor>();
  // What a later request with the same header needs to decode its bytes (undefined once an input carries JSON data).
  let planned: PlannedInput[] | undefined = binary === undefined ? undefined : [];
  let offset = 0;
  for (let i = 0; i < doc.inputs.length; i++) {
    const inp = doc.inputs[i] as unknown;
    if (!isObject(inp)) throw bad(`inputs[${i}] must be an object`);
    const name = inp.name;
    if (typeof name !== 'string') throw bad(`inputs[${i}].name must be a string`);
    const spec = signature.inputs.find((s) => s.name === name);
    if (spec === undefined)
      throw mismatch(
        `unknown input '${clipText(name)}'; the model's inputs are ${signature.inputs.map((s) => `'${s.name}'`).join(', ')}`,
      );
    if (byName.has(name)) throw mismatch(`input '${name}' is given twice`);
    if (!isV2Datatype(inp.datatype))
      throw new SlogateError(
        'SLOGATE_ERR_DATATYPE',
        `input '${name}': unknown datatype ${describeValue(inp.datatype)}`,
      );
    const params = parseParameters(inp.parameters, `input '${name}'`);
    const size = params.binary_data_size;
    let tensor: Tensor;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0)
        throw badBinary(`input '${name}': binary_data_size must be a non-negative integer`);
      if (binary === undefined)
        throw badBinary(
          `input '${name}' has binary_data_size but the request has no Inference-Header-Content-Length header`,
        );
      if (inp.data !== undefined) throw badBinary(`input '${name}' has both data and binary_data_size`);
      if (offset + size > binary.byteLength)
        throw badBinary(
          `input '${name}': binary_data_size ${size} runs past the end of the body (${binary.byteLength - offset} bytes left)`,
        );
      tensor = decodeBinaryTensor(
        name,
        inp.datatype,
        inp.shape as number[],
        binary.subarray(offset, offset + size),
        spec,
        allowNonFinite,
      );
      const index = signature.inputs.indexOf(spec);
      planned?.push({ name, datatype: inp.datatype, shape: [...tensor.shape], size, spec, index });
      offset += size;
    } else {
      planned = undefined;
      if (inp.data === undefined) throw bad(`input '${name}' has no data`);
      tensor = decodeJsonTensor(name, inp.datatype, inp.shape as number[], inp.data, spec, allowNonFinite);
    }
    byName.set(name, tensor);
  }
  if (binary !== undefined && offset !== binary.byteLength)
    throw badBinary(`the body holds ${binary.byteLength - offset} bytes of binary data that no input claims`);
  const inputs = orderInputs(byName, signature);
  const outputs = parseOutputs(doc.outputs, signature, binaryOutput);
  const rows = batchRows(inputs, signature);
  if (planned !== undefined && binary !== undefined)
    plans?.set(signature, headerBytes, binary.byteLength, {
      id,
      parameters,
      binaryOutput,
      rows,
      inputs: planned,
      outputs,
    });
  return { id, parameters, inputs, rows, outputs, binaryOutput };
}

interface PlannedInput {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  readonly size: number;
  readonly spec: TensorSpec;
  /** Its place among the signature's inputs (a plan is kept only when the request had them all). */
  readonly index: number;
}

/** A binary-extension header already parsed and checked: everything but the tensor bytes. */
interface RequestPlan {
  readonly id: string | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly binaryOutput: boolean;
  /** The batch rows of every request with this header (its shapes are part of it). */
  readonly rows: number;
  /** In the request's order, each `size` bytes after the previous. */
  readonly inputs: readonly PlannedInput[];
  readonly outputs: OutputRequest[] | undefined;
}

/** Largest header kept (a typical one is a few hundred bytes). */
const MAX_PLAN_HEADER_BYTES = 4096;
/** Headers kept per model signature; the oldest goes first. */
const MAX_PLANS = 64;

interface KeptPlan {
  readonly plan: RequestPlan;
  readonly binaryBytes: number;
  /** The header's bytes (a copy), compared byte for byte before anything is decoded. */
  readonly header: Buffer;
}

interface SignaturePlans {
  /** By the header's bytes as latin1 text (one character per byte: the same bytes, the same key). */
  readonly byHeader: Map<string, KeptPlan>;
  /** The last header found: a client repeats its header, so most lookups end here, with no text made or hashed. */
  last: KeptPlan | undefined;
}

/**
 * Headers of the binary extension already parsed, by model signature: clients send the same header for every request
 * of a shape, so its JSON is parsed and checked once and later requests only decode their bytes. A header is kept
 * with the binary length it was checked against; another length parses afresh (and fails as it should).
 */
export class RequestPlans {
  readonly #bySignature = new WeakMap<ModelSignature, SignaturePlans>();

  get(signature: ModelSignature, header: Buffer, binaryBytes: number): RequestPlan | undefined {
    const plans = this.#bySignature.get(signature);
    if (plans === undefined) return undefined;
    const last = plans.last;
    let hit: KeptPlan | undefined;
    if (last !== undefined && last.header.byteLength === header.byteLength && last.header.equals(header)) hit = last;
    else if (header.byteLength <= MAX_PLAN_HEADER_BYTES) hit = plans.byHeader.get(header.toString('latin1'));
    if (hit === undefined || hit.binaryBytes !== binaryBytes) return undefined;
    plans.last = hit;
    return hit.plan;
  }

  set(signature: ModelSignature, header: Buffer, binaryBytes: number, plan: RequestPlan): void {
    if (header.byteLength > MAX_PLAN_HEADER_BYTES) return;
    let plans = this.#bySignature.get(signature);
    if (plans === undefined) {
      plans = { byHeader: new Map(), last: undefined };
      this.#bySignature.set(signature, plans);
    }
    const key = header.toString('latin1');
    const { byHeader } = plans;
    if (byHeader.size >= MAX_PLANS && !byHeader.has(key)) byHeader.delete(byHeader.keys().next().value as string);
    Object.freeze(plan.parameters);
    if (plan.outputs !== undefined) for (const o of plan.outputs) Object.freeze(o);
    const kept = { plan, binaryBytes, header: Buffer.from(header) };
    byHeader.set(key, kept);
    plans.last = kept;
  }
}

function fromPlan(plan: RequestPlan, binary: Buffer, allowNonFinite: boolean): ParsedInferRequest {
  const inputs = new Array<Tensor>(plan.inputs.length);
  let offset = 0;
  for (const p of plan.inputs) {
    const bytes = binary.subarray(offset, offset + p.size);
    inputs[p.index] = decodeBinaryTensor(p.name, p.datatype, p.shape as number[], bytes, p.spec, allowNonFinite);
    offset += p.size;
  }
  return {
    id: plan.id,
    parameters: plan.parameters,
    inputs,
    rows: plan.rows,
    outputs: plan.outputs,
    binaryOutput: plan.binaryOutput,
  };
}

function orderInputs(byName: Map<string, Tensor>, signature: ModelSignature): Tensor[] {
  return signature.inputs.map((spec) => {
    const t = byName.get(spec.name);
    if (t === undefined) throw mismatch(`missing input '${spec.name}'`);
    return t;
  });
}

function batchRows(inputs: readonly Tensor[], signature: ModelSignature): number {
  if (!signature.batchable) return 1;
  const rows = (inputs[0] as Tensor).shape[0] as number;
  for (const t of inputs)
    if (t.shape[0] !== rows)
      throw new SlogateError(
        'SLOGATE_ERR_INVALID_TENSOR',
        `all inputs must have the same batch size; '${t.name}' has ${t.shape[0]}, expected ${rows}`,
      );
  return rows;
}

function parseOutputs(v: unknown, signature: ModelSignature, binaryDefault: boolean): OutputRequest[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw mismatch("'outputs' must be an array");
  const seen = new Set<string>();
  return v.map((o: unknown, i) => {
    if (!isObject(o) || typeof o.name !== 'string')
      throw mismatch(`outputs[${i}] must be an object with a string name`);
    if (!signature.outputs.some((s) => s.name === o.name))
      throw mismatch(
        `unknown output '${clipText(o.name)}'; the model's outputs are ${signature.outputs.map((s) => `'${s.name}'`).join(', ')}`,
      );
    if (seen.has(o.name)) throw mismatch(`output '${o.name}' is requested twice`);
    seen.add(o.name);
    const p = parseParameters(o.parameters, `output '${o.name}'`);
    if (p.binary_data !== undefined && typeof p.binary_data !== 'boolean')
      throw badParam(`output '${o.name}': binary_data must be a boolean`);
    return { name: o.name, binary: p.binary_data === undefined ? binaryDefault : p.binary_data === true };
  });
}

/** Inference-Header-Content-Length: 0 — the body is the single input's raw bytes, batch 1, all outputs binary. */
function parseRawBinary(body: Buffer, signature: ModelSignature, allowNonFinite: boolean): ParsedInferRequest {
  if (signature.inputs.length !== 1)
    throw badBinary('a raw binary body (Inference-Header-Content-Length: 0) needs a model with exactly one input');
  const spec = signature.inputs[0] as TensorSpec;
  if (spec.datatype === 'BYTES') throw badBinary('a raw binary body cannot carry a BYTES input');
  const shape = spec.shape.map((d, i) => (i === 0 && d === -1 ? 1 : d));
  const variable = shape.filter((d) => d < 0).length;
  if (variable > 1)
    throw badBinary('a raw binary body needs an input with at most one variable dimension besides the batch');
  const fixed = shape.reduce((a, d) => (d < 0 ? a : a * d), 1);
  const elems = body.byteLength / ELEMENT_BYTES[spec.datatype];
  if (!Number.isInteger(elems))
    throw badBinary(`raw binary body of ${body.byteLength} bytes is not a whole number of ${spec.datatype} elements`);
  const full = variable === 1 ? shape.map((d) => (d < 0 ? elems / fixed : d)) : shape;
  if (full.some((d) => !Number.isInteger(d)))
    throw badBinary(`raw binary body of ${body.byteLength} bytes does not fit shape [${spec.shape.join(',')}]`);
  checkShape(spec.name, full, spec);
  const tensor = decodeBinaryTensor(spec.name, spec.datatype, full, body, spec, allowNonFinite);
  return {
    id: undefined,
    parameters: {},
    inputs: [tensor],
    rows: signature.batchable ? (full[0] as number) : 1,
    outputs: signature.outputs.map((o) => ({ name: o.name, binary: true })),
    binaryOutput: true,
  };
}

export interface EncodedResponse {
  readonly body: string | Buffer;
  /** Set when the body carries binary outputs (the value of Inference-Header-Content-Length). */
  readonly jsonLength: number | undefined;
}

/** JSON text kept between answers, and whether it is all ASCII (then its length is its size in bytes). */
interface KeptText {
  readonly json: string;
  readonly ascii: boolean;
}

const ASCII = /^[\x20-\x7e]*$/;
/** Output heads kept at most; past this the map starts again (any number of models stays correct). */
const MAX_OUTPUT_HEADS = 256;
/** The answer's opening for the last model and version answered: most answers repeat them. */
let lastHead: { model: string; version: string; text: KeptText } | undefined;
/** Each output's `{"name":..,"datatype":..,"shape":[`, by name (the datatype is checked on use). */
const outputHeads = new Map<string, { datatype: string; text: KeptText }>();

function kept(json: string): KeptText {
  return { json, ascii: ASCII.test(json) };
}

function answerHead(model: string, version: string): KeptText {
  if (lastHead === undefined || lastHead.model !== model || lastHead.version !== version)
    lastHead = {
      model,
      version,
      text: kept(`{"model_name":${JSON.stringify(model)},"model_version":${JSON.stringify(version)}`),
    };
  return lastHead.text;
}

function outputHead(o: Tensor): KeptText {
  const found = outputHeads.get(o.name);
  if (found !== undefined && found.datatype === o.datatype) return found.text;
  if (outputHeads.size >= MAX_OUTPUT_HEADS) outputHeads.clear();
  const text = kept(`{"name":${JSON.stringify(o.name)},"datatype":"${o.datatype}","shape":[`);
  outputHeads.set(o.name, { datatype: o.datatype, text });
  return text;
}

/** Encodes a V2 infer response; outputs flagged binary travel after the JSON header. */
export function encodeInferResponse(
  modelName: string,
  modelVersion: string,
  id: string | undefined,
  outputs: readonly Tensor[],
  binaryFlags: readonly boolean[],
  parameters?: Readonly<Record<string, string | number | boolean>>,
): EncodedResponse {
  const head = answerHead(modelName, modelVersion);
  let json = head.json;
  let ascii = head.ascii;
  if (id !== undefined) json += `,"id":${JSON.stringify(id)}`;
  if (parameters !== undefined) json += `,"parameters":${JSON.stringify(parameters)}`;
  if (id !== undefined || parameters !== undefined) ascii = ASCII.test(json);
  json += ',"outputs":[';
  const blobs: Uint8Array[] = [];
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i] as Tensor;
    const oh = outputHead(o);
    ascii &&= oh.ascii;
    json += `${i > 0 ? ',' : ''}${oh.json}${o.shape.join(',')}]`;
    if (binaryFlags[i] === true) {
      const bytes = binaryData(o.datatype, o.data);
      blobs.push(bytes);
      json += `,"parameters":{"binary_data_size":${bytes.byteLength}}}`;
    } else {
      json += `,"data":${jsonDataString(o.datatype, o.data)}}`;
    }
  }
  json += ']}';
  if (blobs.length === 0) return { body: json, jsonLength: undefined };
  return withBlobs(json, ascii, blobs);
}

/** The JSON header and the binary outputs in one buffer, written in place. */
function withBlobs(json: string, ascii: boolean, blobs: readonly Uint8Array[]): EncodedResponse {
  const headBytes = ascii ? json.length : Buffer.byteLength(json, 'utf8');
  let total = headBytes;
  for (const b of blobs) total += b.byteLength;
  const body = Buffer.allocUnsafe(total);
  body.write(json, 0, ascii ? 'latin1' : 'utf8');
  let at = headBytes;
  for (const b of blobs) {
    body.set(b, at);
    at += b.byteLength;
  }
  return { body, jsonLength: headBytes };
}
