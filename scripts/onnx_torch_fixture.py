#!/usr/bin/env python3
"""Write `tests/fixtures/onnx/torch-resnet.onnx` with PyTorch itself (issue #16): a small CNN
with BatchNormalization and a residual Add, exported by `torch.onnx.export`, and the outputs
PyTorch computed for five inputs (`torch-resnet.outputs.json`), the reference of
`tests/onnx.rs`. The other fixtures (`scripts/onnx_fixtures.py`) were built with the onnx
package when torch could not be installed; they are left as they are.

The network (input 1x8x8, seeded weights and BatchNorm running statistics, eval mode):
conv1 3x3 (1->4, pad 1) -> ReLU -> bn1 -> [conv2 3x3 (4->4, pad 1) -> bn2 -> ReLU] + skip ->
MaxPool 2 -> Flatten -> fc (64->10). bn1 follows a ReLU, so the exporter cannot fold it into
a convolution and the graph keeps a BatchNormalization node.

    pip install torch onnx      # torch from PyPI (CPU use); see scripts/pcm-drift-aihwkit.py
    python3 scripts/onnx_torch_fixture.py
"""
import json
import os

import onnx
import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        a = self.bn1(torch.relu(self.conv1(x)))
        b = torch.relu(self.bn2(self.conv2(a)))
        return self.fc(self.flatten(self.pool(a + b)))


def main():
    torch.manual_seed(16)
    net = Net()
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.rand(5, 1, 8, 8)
    export_fixture(net, x, "torch-resnet", ("BatchNormalization", "Add"))


def export_fixture(net, x, name, want_ops):
    """Export `net` (eval mode) to `tests/fixtures/onnx/<name>.onnx` with the TorchScript
    exporter at opset 17 (batch axis dynamic), check the model and that it holds every op of
    `want_ops`, and write what PyTorch computes for `x` to `<name>.outputs.json`. Returns the
    loaded ONNX model."""
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(net, (x,), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    for want in want_ops:
        assert want in ops, ops
    with torch.no_grad():
        y = net(x)
    with open(os.path.join(OUT, f"{name}.outputs.json"), "w") as f:
        json.dump({"source": f"PyTorch {torch.__version__} (CPU, float32), eval mode; "
                             f"exported by torch.onnx.export (TorchScript exporter, opset 17)",
                   "input_shape": list(x.shape), "input": x.ravel().tolist(),
                   "output_shape": list(y.shape), "output": y.ravel().tolist()}, f)
    print(f"{path}: {len(m.graph.node)} nodes {ops}, outputs {tuple(y.shape)}")
    return m


if __name__ == "__main__":
    main()
