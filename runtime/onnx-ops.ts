// The operator types an ONNX model's graph uses, read straight from its protobuf encoding: enough to tell a graph whose
// run time its input values can set (Loop, Scan) from a straight-line one, without a protobuf library. Nodes are
// found in the main graph, in subgraphs (If, Loop and Scan bodies) and in the model's local functions.

/** Operators whose iteration count comes from the request (a trip count, a condition, a sequence's length). */
export const DATA_DEPENDENT_OPS: ReadonlySet<string> = new Set(['Loop', 'Scan']);

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

// Field numbers in onnx.proto.
const MODEL_GRAPH = 7;
const MODEL_FUNCTIONS = 25;
const GRAPH_NODE = 1;
const FUNCTION_NODE = 7;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE_GRAPH = 6;
const ATTRIBUTE_GRAPHS = 11;

type Visit = (field: number, start: number, end: number) => void;

/** Calls `visit` for each length-delimited field of the message in bytes[start, end); skips the rest. */
function eachField(bytes: Uint8Array, start: number, end: number, visit: Visit): void {
  let at = start;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      if (at >= end) throw new Error('truncated varint');
      const b = bytes[at++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      if (scale > 2 ** 56) throw new Error('varint too long');
    }
  };
  while (at < end) {
    const key = varint();
    const wire = key % 8;
    const field = Math.floor(key / 8);
    if (wire === WIRE_VARINT) varint();
    else if (wire === WIRE_I64) at += 8;
    else if (wire === WIRE_I32) at += 4;
    else if (wire === WIRE_LEN) {
      const length = varint();
      if (at + length > end) throw new Error('field past the end of its message');
      visit(field, at, at + length);
      at += length;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  if (at !== end) throw new Error('field past the end of its message');
}

/** The op types in an ONNX model's bytes (a ModelProto); throws when they are not one. */
export function onnxOpTypes(bytes: Uint8Array): Set<string> {
  const ops = new Set<string>();
  const decoder = new TextDecoder();
  const node = (s: number, e: number): void =>
    eachField(bytes, s, e, (field, fs, fe) => {
      if (field === NODE_OP_TYPE) ops.add(decoder.decode(bytes.subarray(fs, fe)));
      else if (field === NODE_ATTRIBUTE) eachField(bytes, fs, fe, attribute);
    });
  const attribute: Visit = (field, s, e) => {
    if (field === ATTRIBUTE_GRAPH || field === ATTRIBUTE_GRAPHS) graph(s, e);
  };
  const graph = (s: number, e: number): void =>
    eachField(bytes, s, e, (field, fs, fe) => {
      if (field === GRAPH_NODE) node(fs, fe);
    });
  eachField(bytes, 0, bytes.length, (field, s, e) => {
    if (field === MODEL_GRAPH) graph(s, e);
    else if (field === MODEL_FUNCTIONS)
      eachField(bytes, s, e, (f, fs, fe) => {
        if (f === FUNCTION_NODE) node(fs, fe);
      });
  });
  return ops;
}

/** Whether the model's run time can depend on its input values: it iterates, or its bytes cannot be read. */
export function hasDataDependentCost(bytes: Uint8Array): boolean {
  try {
    for (const op of onnxOpTypes(bytes)) if (DATA_DEPENDENT_OPS.has(op)) return true;
    return false;
  } catch {
    return true;
  }
}
