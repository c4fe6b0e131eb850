# Revisions of `small` for testing the model lifecycle: one good and four that a gate must stop. Deterministic
# (fixed seeds, no timestamps): rerunning gives byte-identical files. python3-onnx + numpy only:
#   /usr/bin/python3 models/digits/make-revisions.py      -> models/digits/revisions/*.onnx
#
#   small-reexport.onnx    same weights and outputs, re-exported (new hash): a good revision
#   small-degraded.onnx    same signature, weights perturbed with seeded noise (about 8 points less accurate):
#                          fails the accuracy gate
#   small-slow.onnx        same outputs, over 10x the time (a chain of 512x512 MatMuls added as 0 * sum):
#                          passes accuracy, fails a latency check
#   small-renamed.onnx     input `image` instead of `pixels`: fails the signature gate
#   small-fails-at-run.onnx  loads, then every batch of 1..996 rows fails in a Reshape: fails golden/accuracy gates
#   small-fails-on-negative.onnx  same outputs, but a batch holding a negative pixel fails in a Reshape (unless its
#                          rows are a multiple of 997): passes the gates (their inputs are in 0..1), fails live
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(here, "revisions")


def load_small():
    return onnx.load(os.path.join(here, "small.onnx"))


def save(model, name):
    model.producer_name = "slogate make-revisions.py"
    model.doc_string = name
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out_dir, name))
    print(f"{name}: {os.path.getsize(os.path.join(out_dir, name))} bytes")


def reroute_logits(graph, new_name, extra_nodes):
    """Renames the output `logits` of its producer to `new_name` and inserts `extra_nodes` (which must produce
    `logits` again) right after it, keeping the graph in topological order."""
    nodes = list(graph.node)
    at = next(i for i, n in enumerate(nodes) if "logits" in n.output)
    producer = nodes[at]
    producer.output[list(producer.output).index("logits")] = new_name
    del graph.node[:]
    graph.node.extend(nodes[: at + 1] + extra_nodes + nodes[at + 1 :])


def reexport():
    save(load_small(), "small-reexport.onnx")


def degraded():
    m = load_small()
    rng = np.random.default_rng(20261202)
    for init in m.graph.initializer:
        w = numpy_helper.to_array(init).astype(np.float32)
        noisy = w + rng.normal(0.0, 0.5 * float(w.std()) + 1e-6, w.shape).astype(np.float32)
        init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    save(m, "small-degraded.onnx")


def slow(steps=16, width=512):
    m = load_small()
    g = m.graph
    rng = np.random.default_rng(7)
    w_in = (rng.standard_normal((784, width)) / np.sqrt(784)).astype(np.float32)
    w_sq = (0.5 * rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    g.initializer.extend([numpy_helper.from_array(w_in, "slow_w_in"), numpy_helper.from_array(w_sq, "slow_w_sq")])
    g.initializer.append(numpy_helper.from_array(np.zeros((1,), np.float32), "slow_zero"))
    nodes = [helper.make_node("MatMul", ["pixels", "slow_w_in"], ["slow_h0"])]
    for i in range(steps):
        nodes.append(helper.make_node("MatMul", [f"slow_h{i}", "slow_w_sq"], [f"slow_h{i + 1}"]))
    nodes.append(helper.make_node("ReduceSum", [f"slow_h{steps}"], ["slow_sum"], keepdims=1))
    nodes.append(helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]))
    nodes.append(helper.make_node("Add", ["logits_fast", "slow_nothing"], ["logits"]))
    reroute_logits(g, "logits_fast", nodes)
    save(m, "small-slow.onnx")


def renamed():
    m = load_small()
    for n in m.graph.node:
        for i, x in enumerate(n.input):
            if x == "pixels":
                n.input[i] = "image"
    m.graph.input[0].name = "image"
    save(m, "small-renamed.onnx")


def fails_at_run():
    m = load_small()
    g = m.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1, 997], np.int64), "bad_shape"),
            numpy_helper.from_array(np.array([-1, 10], np.int64), "back_shape"),
        ]
    )
    reroute_logits(
        g,
        "logits_raw",
        [
            helper.make_node("Reshape", ["logits_raw", "bad_shape"], ["logits_997"]),
            helper.make_node("Reshape", ["logits_997", "back_shape"], ["logits"]),
        ],
    )
    save(m, "small-fails-at-run.onnx")


def fails_on_negative():
    m = load_small()
    g = m.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([0.0], np.float32), "neg_zero"),
            numpy_helper.from_array(np.array([987], np.int64), "neg_extra"),
            numpy_helper.from_array(np.array([-1, 10], np.int64), "neg_back"),
            numpy_helper.from_array(np.array([-1], np.int64), "neg_lead"),
            numpy_helper.from_array(np.array([10], np.int64), "neg_ten"),
        ]
    )
    reroute_logits(
        g,
        "logits_raw",
        [
            # width = 10 + 987 * (min(pixels) < 0): 10 reshapes in place, 997 fails unless rows are a multiple of 997.
            helper.make_node("ReduceMin", ["pixels"], ["neg_min"], keepdims=0),
            helper.make_node("Less", ["neg_min", "neg_zero"], ["neg_any"]),
            helper.make_node("Cast", ["neg_any"], ["neg_flag"], to=TensorProto.INT64),
            helper.make_node("Mul", ["neg_flag", "neg_extra"], ["neg_add"]),
            helper.make_node("Add", ["neg_add", "neg_ten"], ["neg_width"]),
            helper.make_node("Concat", ["neg_lead", "neg_width"], ["neg_shape"], axis=0),
            helper.make_node("Reshape", ["logits_raw", "neg_shape"], ["neg_wide"]),
            helper.make_node("Reshape", ["neg_wide", "neg_back"], ["logits"]),
        ],
    )
    save(m, "small-fails-on-negative.onnx")


if __name__ == "__main__":
    os.makedirs(out_dir, exist_ok=True)
    for make in (reexport, degraded, slow, renamed, fails_at_run, fails_on_negative):
        make()
    sys.exit(0)
