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

if __name__ == "__main__":
    main()
