#!/usr/bin/env python3
"""Write the ONNX test fixtures of `tests/onnx.rs`: the committed Fashion-MNIST CNN as an ONNX
graph, with the outputs an independent ONNX runtime computes for a few inputs.

    pip install onnx safetensors numpy
    python3 scripts/onnx_fixtures.py        # writes tests/fixtures/onnx/*

The graphs use the operators and layout `torch.onnx.export` writes for these modules at opset
17 (Conv with kernel_shape/strides/pads/dilations/group, Relu, MaxPool, Flatten(axis=1),
Gemm(transB=1) with `<module>.weight` / `<module>.bias` initializers, a symbolic batch
dimension). PyTorch itself is not used: its wheels cannot be installed on the machine that made
these files (see docs/workloads.md); the weights are the committed safetensors, and the
reference outputs come from onnx's reference evaluator (`onnx.reference.ReferenceEvaluator`),
an implementation independent of nacsim. A `bad-*.onnx` file per refusal is written too.

`graph.onnx` is a branching graph with seeded weights (residual Add, Concat, BatchNormalization,
grouped and rectangular Conv, Clip(0, 6), GlobalAveragePool, a MatMul of two activations, a
static Reshape and Gemm); its reference outputs are computed by this script's own numpy forward
(`graph_forward`), checked against `onnx.reference.ReferenceEvaluator` before they are written.
torch was not available to export it (see above), so the graph follows torch's export layout.
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from safetensors.numpy import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")
OPSET = 17


def init(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)


def model(name, nodes, inits, in_shape, classes):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *in_shape])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])
    g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="nacsim scripts/onnx_fixtures.py")
    onnx.checker.check_model(m)
    return m


def gemm(mod, x, y):
    return helper.make_node("Gemm", [x, f"{mod}.weight", f"{mod}.bias"], [y], name=f"/{mod}/Gemm",
                            alpha=1.0, beta=1.0, transB=1)


def cnn(w):
    nodes, prev = [], "input"

    def add(op, ins, name, **attrs):
        nonlocal prev
        out = f"/{name}/{op}_output_0"
        nodes.append(helper.make_node(op, ins, [out], name=f"/{name}/{op}", **attrs))
        prev = out

    add("Conv", [prev, "conv1.weight", "conv1.bias"], "conv1", kernel_shape=[5, 5],
        strides=[1, 1], pads=[2, 2, 2, 2], dilations=[1, 1], group=1)
    add("Relu", [prev], "relu1")
    add("MaxPool", [prev], "pool1", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    add("Conv", [prev, "conv2.weight", "conv2.bias"], "conv2", kernel_shape=[5, 5],
        strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
    add("Relu", [prev], "relu2")
    add("MaxPool", [prev], "pool2", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    add("Flatten", [prev], "flatten", axis=1)
    for i, mod in enumerate(["fc1", "fc2", "fc3"]):
        out = "output" if mod == "fc3" else f"/{mod}/Gemm_output_0"
        nodes.append(gemm(mod, prev, out))
        prev = out
        if mod != "fc3":
            add("Relu", [prev], f"relu{i + 3}")
    # Dropout at inference is the identity: torch exports none in eval mode, but other
    # exporters (and training-mode exports) write one; it is here to test that it is skipped.
    i = next(k for k, n in enumerate(nodes) if n.name == "/relu3/Relu")
    nodes.insert(i + 1, helper.make_node("Dropout", ["/relu3/Relu_output_0"],
                                         ["/drop/Dropout_output_0"], name="/drop/Dropout"))
    nodes[i + 2].input[0] = "/drop/Dropout_output_0"
    inits = [init(k, v) for k, v in sorted(w.items())]
    return model("fmnist-cnn", nodes, inits, [1, 28, 28], 10)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.random((6, 1, 28, 28), dtype=np.float32)
    for name, build in (("fmnist-cnn", cnn),):
        w = load_file(os.path.join(ROOT, "models", "networks", f"{name}.safetensors"))
        m = build(w)
        path = os.path.join(OUT, f"{name}.onnx")
        onnx.save(m, path)
        y = ReferenceEvaluator(m).run(None, {"input": x})[0]
        with open(os.path.join(OUT, f"{name}.outputs.json"), "w") as f:
            json.dump({"source": "onnx.reference.ReferenceEvaluator " + onnx.__version__,
                       "input_shape": list(x.shape), "input": x.ravel().tolist(),
                       "output_shape": list(y.shape), "output": y.ravel().tolist()}, f)
        print(f"{path}: {len(m.graph.node)} nodes, outputs {y.shape}")
    # Refusals, on a tiny chain (input 1x2x2, Flatten, Gemm 3x4, Relu, Gemm 2x3): an operator
    # nacsim does not import, and a graph that is not a chain.
    tw = {"fc1.weight": rng.standard_normal((3, 4)), "fc1.bias": np.zeros(3),
          "fc2.weight": rng.standard_normal((2, 3)), "fc2.bias": np.zeros(2)}

    def tiny():
        nodes = [helper.make_node("Flatten", ["input"], ["f"], name="/flatten/Flatten", axis=1),
                 gemm("fc1", "f", "h"),
                 helper.make_node("Relu", ["h"], ["r"], name="/relu/Relu"),
                 gemm("fc2", "r", "output")]
        return model("tiny", nodes, [init(k, v) for k, v in sorted(tw.items())], [1, 2, 2], 2)

    m = tiny()
    m.graph.node[2].op_type = "Softsign"
    onnx.save(m, os.path.join(OUT, "bad-op.onnx"))
    m = tiny()
    m.graph.node[3].input[0] = "f"  # fc2 reads the flatten output, not the Relu's
    onnx.save(m, os.path.join(OUT, "bad-branch.onnx"))
    onnx.save(tiny(), os.path.join(OUT, "tiny.onnx"))
    write_graph()

def graph_weights(rng):
    r = lambda *s: (rng.standard_normal(s) * 0.4).astype(np.float32)
    pos = lambda *s: (rng.random(s) + 0.5).astype(np.float32)
    return {
        "stem.weight": r(4, 1, 3, 3), "stem.bias": r(4),
        "bn.weight": pos(4), "bn.bias": r(4), "bn.running_mean": r(4), "bn.running_var": pos(4),
        "dw.weight": r(4, 1, 3, 1),  # depthwise, rectangular 3x1
        "gc.weight": r(4, 2, 1, 3), "gc.bias": r(4),  # 2 groups, rectangular 1x3
        "fc.weight": r(3, 8 + 16), "fc.bias": r(3),
        "shape": np.array([-1, 16], dtype=np.int64),
        "clip_min": np.array(0.0, dtype=np.float32), "clip_max": np.array(6.0, dtype=np.float32),
    }


def graph(w):
    """input [N, 1, 6, 6] → stem conv3x3 pad 1 → BN → Clip(0, 6) = a; b = gc(dw(a));
    s = a + b; Concat(a, s) (8 channels) → GlobalAveragePool → Flatten (8);
    MatMul(a, s) per channel → MaxPool 3 → Reshape [-1, 16] (16); Concat → Gemm (3)."""
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "stem.weight", "stem.bias"], ["c"], name="/stem/Conv",
          kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
        n("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
          ["bnout"], name="/bn/BatchNormalization", epsilon=1e-5, momentum=0.9),
        n("Clip", ["bnout", "clip_min", "clip_max"], ["a"], name="/relu6/Clip"),
        n("Conv", ["a", "dw.weight"], ["d"], name="/dw/Conv", kernel_shape=[3, 1],
          strides=[1, 1], pads=[1, 0, 1, 0], dilations=[1, 1], group=4),
        n("Conv", ["d", "gc.weight", "gc.bias"], ["b"], name="/gc/Conv", kernel_shape=[1, 3],
          strides=[1, 1], pads=[0, 1, 0, 1], dilations=[1, 1], group=2),
        n("Add", ["a", "b"], ["s"], name="/add/Add"),
        n("Concat", ["a", "s"], ["cat"], name="/cat/Concat", axis=1),
        n("GlobalAveragePool", ["cat"], ["g"], name="/gap/GlobalAveragePool"),
        n("Flatten", ["g"], ["gf"], name="/flatten/Flatten", axis=1),
        n("MatMul", ["a", "s"], ["mm"], name="/attn/MatMul"),
        n("MaxPool", ["mm"], ["mp"], name="/pool/MaxPool", kernel_shape=[3, 3], strides=[3, 3],
          pads=[0, 0, 0, 0]),
        n("Reshape", ["mp", "shape"], ["mf"], name="/reshape/Reshape"),
        n("Concat", ["gf", "mf"], ["z"], name="/cat2/Concat", axis=1),
        gemm("fc", "z", "output"),
    ]
    inits = [init(k, v) if v.dtype != np.int64 else numpy_helper.from_array(v, k)
             for k, v in sorted(w.items())]
    return model("graph", nodes, inits, [1, 6, 6], 3)


def conv_np(x, wt, b, pads, groups):
    """Cross-correlation, stride 1, zero padding (ph, pw), PyTorch's `groups`."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = wt.shape
    ph, pw = pads
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = h + 2 * ph - kh + 1, wd + 2 * pw - kw + 1
    y = np.zeros((n, o, oh, ow), dtype=np.float64)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, ky:ky + oh, kx:kx + ow]
                y[:, oc] += np.einsum("nchw,c->nhw", patch, wt[oc, :, ky, kx])
    if b is not None:
        y += b[None, :, None, None]
    return y


def graph_forward(w, x):
    """The numpy reference of `graph` (float64)."""
    x = x.astype(np.float64)
    c = conv_np(x, w["stem.weight"], w["stem.bias"], (1, 1), 1)
    bn = lambda v, k: v[None, :, None, None]
    c = (c - bn(w["bn.running_mean"], 0)) / np.sqrt(bn(w["bn.running_var"], 0) + 1e-5)
    c = c * bn(w["bn.weight"], 0) + bn(w["bn.bias"], 0)
    a = np.clip(c, 0.0, 6.0)
    d = conv_np(a, w["dw.weight"], None, (1, 0), 4)
    b = conv_np(d, w["gc.weight"], w["gc.bias"], (0, 1), 2)
    s = a + b
    cat = np.concatenate([a, s], axis=1)
    gf = cat.mean(axis=(2, 3))
    mm = a @ s
    n = x.shape[0]
    mp = mm.reshape(n, 4, 2, 3, 2, 3).max(axis=(3, 5))
    z = np.concatenate([gf, mp.reshape(n, -1)], axis=1)
    return z @ w["fc.weight"].T + w["fc.bias"]


def write_graph():
    rng = np.random.default_rng(16)
    w = graph_weights(rng)
    m = graph(w)
    path = os.path.join(OUT, "graph.onnx")
    onnx.save(m, path)
    x = rng.random((5, 1, 6, 6), dtype=np.float32)
    y = graph_forward(w, x)
    ref = ReferenceEvaluator(m).run(None, {"input": x})[0]
    assert np.abs(y - ref).max() < 1e-4, np.abs(y - ref).max()
    with open(os.path.join(OUT, "graph.outputs.json"), "w") as f:
        json.dump({"source": "scripts/onnx_fixtures.py graph_forward (numpy float64), checked "
                             "against onnx.reference.ReferenceEvaluator " + onnx.__version__,
                   "input_shape": list(x.shape), "input": x.ravel().tolist(),
                   "output_shape": list(y.shape), "output": y.astype(np.float32).ravel().tolist()}, f)
    print(f"{path}: {len(m.graph.node)} nodes, outputs {y.shape}, "
          f"max |numpy - onnx reference| = {np.abs(y - ref).max():.2e}")


if __name__ == "__main__":
    main()
