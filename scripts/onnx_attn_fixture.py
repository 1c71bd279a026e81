#!/usr/bin/env python3
"""Write `tests/fixtures/onnx/torch-attn.onnx` with PyTorch (issue #16): a small attention
network using Softmax, LayerNormalization and Transpose, exported by `torch.onnx.export`
(TorchScript exporter, opset 17: LayerNormalization exists from opset 17), and the outputs
PyTorch computed for five inputs (`torch-attn.outputs.json`), the reference of `tests/onnx.rs`.

The network (input 1x6x5: 6 tokens of 5 features, seeded weights, eval mode), every tensor
4-D `[N, C, H, W]` as nacsim reads them:
    embed: Conv (1, 5) kernel, 1 -> 8 channels          [N, 8, 6, 1]   features on C
    q, k, v: 1x1 Conv 8 -> 8, each transposed C<->W      [N, 1, 6, 8]   Transpose perm [0, 3, 2, 1]
    softmax(q kᵀ, dim=-1) v                              [N, 1, 6, 8]   Softmax axis -1, MatMul x2
    transposed back, + embed, LayerNorm over C           [N, 8, 6, 1]   (via a C<->W transpose and
                                                                         nn.LayerNorm(8) on the
                                                                         last axis, LayerNormalization
                                                                         axis -1)
    softmax over H (dim=2), Flatten, Linear 48 -> 4

    pip install torch onnx      # torch from PyPI (CPU use)
    python3 scripts/onnx_attn_fixture.py

It also writes two models nacsim must refuse naming the node (built with onnx.helper):
`bad-attn-ln.onnx`, a LayerNormalization over axes 1.. (C, H and W together), and
`bad-attn-perm.onnx`, a Transpose that moves the batch axis.
"""
import os

import onnx
import torch
from torch import nn

from onnx_torch_fixture import export_fixture

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(1, 8, (1, 5))
        self.q = nn.Conv2d(8, 8, 1)
        self.k = nn.Conv2d(8, 8, 1)
        self.v = nn.Conv2d(8, 8, 1)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(48, 4)

    def forward(self, x):
        e = self.embed(x)                                  # [N, 8, 6, 1]
        q = self.q(e).transpose(1, 3)                      # [N, 1, 6, 8]
        k = self.k(e).transpose(1, 3)
        v = self.v(e).transpose(1, 3)
        p = torch.softmax(q @ k.transpose(2, 3), dim=-1)   # [N, 1, 6, 6]
        c = (p @ v).transpose(1, 3) + e                    # [N, 8, 6, 1]
        n = self.ln(c.transpose(1, 3)).transpose(1, 3)     # LayerNorm over the 8 features
        s = torch.softmax(n, dim=2)                        # over the 6 tokens
        return self.fc(torch.flatten(s, 1))


def main():
    torch.manual_seed(16)
    net = Net()
    with torch.no_grad():
        net.ln.weight.uniform_(0.5, 1.5)
        net.ln.bias.uniform_(-0.3, 0.3)
    net.eval()
    x = torch.rand(5, 1, 6, 5)
    m = export_fixture(net, x, "torch-attn", ("Softmax", "LayerNormalization", "Transpose", "MatMul"))
    for n in m.graph.node:
        print(n.op_type, n.name, list(n.input), [(a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute])


def bad_models():
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    def model(node, inits, name):
        fc_w = numpy_helper.from_array(np.ones((3, 24), np.float32), "fc.weight")
        g = helper.make_graph(
            [node, helper.make_node("Flatten", ["a"], ["f"], name="/flat", axis=1),
             helper.make_node("Gemm", ["f", "fc.weight"], ["output"], name="/fc", transB=1)],
            name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 3, 4])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])],
            initializer=inits + [fc_w])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(OUT, f"{name}.onnx"))

    scale = numpy_helper.from_array(np.ones((2, 3, 4), np.float32), "ln.weight")
    model(helper.make_node("LayerNormalization", ["input", "ln.weight"], ["a"], name="/ln_all",
                           axis=1), [scale], "bad-attn-ln")
    model(helper.make_node("Transpose", ["input"], ["a"], name="/swap_batch", perm=[1, 0, 2, 3]),
          [], "bad-attn-perm")


if __name__ == "__main__":
    bad_models()
    main()
