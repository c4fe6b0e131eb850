#!/usr/bin/python3
"""Dynamic int8 quantization of an fp32 ONNX model, onnxruntime quantize_dynamic style.

    /usr/bin/python3 models/digits/quantize.py [IN.onnx [OUT.onnx]]
    (defaults: models/digits/medium.onnx -> models/digits/medium-int8.onnx)

Every Gemm (alpha=1, beta=1, transA=0) or MatMul whose weight is a constant
initializer is rewritten as

    DynamicQuantizeLinear(X)            -> Xq (uint8), Xscale, Xzp   (per call)
    MatMulInteger(Xq, Wq, Xzp, Wzp)     -> int32   Wq: int8 [K, N], Wzp = 0
    Cast(to=float)                      -> float
    Mul(.., Mul(Xscale, Wscale))        -> float
    Add(.., bias)                       -> original output name

with the weight quantized symmetrically per tensor: Wscale = max|W| / 127,
Wq = clip(round(W / Wscale), -127, 127). onnxruntime fuses the pattern into
DynamicQuantizeMatMul / MatMulIntegerToFloat when graph optimization is on.
Only python3-onnx and numpy are needed (no onnxruntime python package).
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def quantize(model):
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes = []
    new_inits = []
    replaced = 0
    for node in graph.node:
        w_name = node.input[1] if len(node.input) > 1 else None
        if node.op_type == 'Gemm':
            ok = (w_name in inits and attr(node, 'alpha', 1.0) == 1.0 and attr(node, 'beta', 1.0) == 1.0
                  and attr(node, 'transA', 0) == 0)
            trans_b = attr(node, 'transB', 0)
            bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        elif node.op_type == 'MatMul':
            ok = w_name in inits and len(inits[w_name].dims) == 2
            trans_b = 0
            bias = None
        else:
            ok = False
        if not ok:
            new_nodes.append(node)
            continue

        w = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        if trans_b:
            w = w.T  # MatMulInteger wants [K, N]
        w_scale = np.float32(max(float(np.abs(w).max()), 1e-12) / 127.0)
        w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        p = w_name
        new_inits += [
            numpy_helper.from_array(np.ascontiguousarray(w_q), p + '_quantized'),
            numpy_helper.from_array(np.array(w_scale, dtype=np.float32), p + '_scale'),
            numpy_helper.from_array(np.array(0, dtype=np.int8), p + '_zero_point'),
        ]
        x = node.input[0]
        base = (node.name or node.output[0]).strip('/').replace('/', '_')
        xq, xs, xzp = f'{base}_x_quantized', f'{base}_x_scale', f'{base}_x_zero_point'
        mmi, cast, scales, scaled = f'{base}_mmi', f'{base}_mmi_float', f'{base}_scales', f'{base}_scaled'
        out = node.output[0]
        new_nodes += [
            helper.make_node('DynamicQuantizeLinear', [x], [xq, xs, xzp], name=f'{base}_QuantizeLinear'),
            helper.make_node('MatMulInteger', [xq, p + '_quantized', xzp, p + '_zero_point'], [mmi],
                             name=f'{base}_MatMulInteger'),
            helper.make_node('Cast', [mmi], [cast], to=TensorProto.FLOAT, name=f'{base}_Cast'),
            helper.make_node('Mul', [xs, p + '_scale'], [scales], name=f'{base}_ScalesMul'),
            helper.make_node('Mul', [cast, scales], [scaled if bias else out], name=f'{base}_OutputScale'),
        ]
        if bias:
            new_nodes.append(helper.make_node('Add', [scaled, bias], [out], name=f'{base}_AddBias'))
        replaced += 1

    used = {i for n in new_nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    model.producer_name = 'slogate models/digits/quantize.py'
    return replaced


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'medium.onnx')
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, 'medium-int8.onnx')
    model = onnx.load(src)
    n = quantize(model)
    if n == 0:
        sys.exit(f'{src}: nothing to quantize')
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f'quantized {n} Gemm/MatMul -> {dst} ({os.path.getsize(dst)} bytes)')


if __name__ == '__main__':
    main()
