#!/usr/bin/env python3
"""Export a committed nacsim network (RON graph + safetensors weights) to ONNX through PyTorch
(issue #16): build the PyTorch module the RON file describes, load the safetensors weights into
it (nacsim writes PyTorch's names and shapes: ``<node>.weight``, ``<node>.bias``,
``<node>.running_mean``, ``<node>.running_var``), export it in eval mode with
``torch.onnx.export`` (opset 17, the TorchScript exporter, batch axis dynamic), and write

- ``models/networks/<name>.onnx`` -- the model, importable by ``nacsim --network <name>.onnx``;
- ``models/networks/<name>.torch-outputs.json`` -- the logits PyTorch computed for the first
  ``--inputs`` images of the sample bundled with nacsim (``crates/nn/data/fmnist-sample``,
  pixel / 255 as nacsim's loader), the reference of ``tests/onnx_models.rs``.

It is also the worked example of bringing a PyTorch model to nacsim (docs/workloads.md): any
``nn.Module`` built from these layer kinds exports the same way.

Network kinds understood: Conv2d (any kernel, stride, padding, groups; bias or not),
BatchNorm2d, Dense, Flatten, MaxPool2d, AvgPool2d, GlobalAvgPool, Add, Concat, Dropout and the
activations ReLU, ReLU6, Sigmoid, Tanh, LeakyReLU, HardTanh, Elu, Selu; graphs written as
``nodes`` or chains written as ``layers`` (parameter layers named as nacsim names them: ``fc1``,
``conv1``, ``bn1``, ... unless they carry a ``name``). Anything else is refused with the node's
name.

    /work/venv-aihwkit11/bin/python scripts/export_onnx.py models/networks/fmnist-resnet8.ron
    # elsewhere: python3 -m pip install torch onnx safetensors numpy   (torch from PyPI, CPU use)

PyTorch's exporter folds each eval-mode BatchNorm that follows a Conv into the Conv's weights
and bias, so the ONNX graph has fewer nodes than the RON graph and its float sums round
differently (max |delta| of the logits is printed and asserted by the test).
"""
import argparse
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
SAMPLE = os.path.join(ROOT, "crates", "nn", "data", "fmnist-sample")
sys.path.insert(0, HERE)
from torch_mlp import read_idx  # noqa: E402  (IDX reading shared with the aihwkit scripts)


# ---- a small reader of the RON subset nacsim writes ------------------------------------------

TOKEN = re.compile(
    r'\s*(//[^\n]*|"(?:[^"\\]|\\.)*"|[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf|NaN)'
    r"|[A-Za-z_][A-Za-z0-9_]*|[()\[\]{}:,])"
)


def tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise SystemExit(f"cannot read RON at offset {pos}: {text[pos:pos + 30]!r}")
        t = m.group(1)
        pos = m.end()
        if not t.startswith("//"):
            out.append(t)
    return out


class Ron:
    """Values: numbers, strings, lists, dicts (named fields; ``"$kind"`` holds an enum variant
    or struct name), maps (dicts), tuples (lists), bare identifiers (strings)."""

    def __init__(self, text):
        self.t = tokens(text)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want=None):
        t = self.t[self.i]
        if want is not None and t != want:
            raise SystemExit(f"RON: expected {want!r}, found {t!r}")
        self.i += 1
        return t

    def value(self):
        t = self.peek()
        if t == "[":
            self.take()
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            return items
        if t == "(":
            return self.group(None)
        if t == "{":
            # A map (e.g. a trained model's `trained_for`): any keys, in order.
            self.take()
            entries = {}
            while self.peek() != "}":
                k = self.value()
                self.take(":")
                entries[k] = self.value()
                if self.peek() == ",":
                    self.take()
            self.take("}")
            return entries
        if t.startswith('"'):
            self.take()
            return json.loads(t)
        if re.match(r"[-+]?[\d]", t) or t in ("inf", "NaN"):
            self.take()
            return float(t) if re.search(r"[.eE]|inf|NaN", t) else int(t)
        self.take()
        if t in ("true", "false"):
            return t == "true"
        if self.peek() == "(":
            return self.group(t)
        return t

    def group(self, kind):
        self.take("(")
        fields, items = {}, []
        while self.peek() != ")":
            if self.t[self.i + 1] == ":" and re.match(r"[A-Za-z_]", self.peek()):
                k = self.take()
                self.take(":")
                fields[k] = self.value()
            else:
                items.append(self.value())
            if self.peek() == ",":
                self.take()
        self.take(")")
        if kind == "Some":
            return items[0]
        if items and not fields:
            return {"$kind": kind, "$items": items} if kind else items
        fields["$kind"] = kind
        return fields


def hw(v):
    """A nacsim ``Hw``: ``3`` or ``(3, 1)``."""
    return (v, v) if isinstance(v, int) else (v[0], v[1])


# ---- the PyTorch module ----------------------------------------------------------------------


def op_of(node):
    """(kind, fields) of a node's op (or of a chain layer)."""
    op = node["op"] if "op" in node else node
    if isinstance(op, str):
        return op, {}
    if op.get("$items") is not None:  # Act(ReLU)
        return op["$kind"], {"$items": op["$items"]}
    return op["$kind"], op


def build(spec):
    """The ``nn.Module`` of a parsed network spec: one submodule per node, registered under the
    node's name so that the state-dict names equal the safetensors names."""
    import torch
    from torch import nn

    inp = spec["input"]
    nodes = spec.get("nodes") or []
    if not nodes:  # a chain: parameter layers take nacsim's default names (fc1, conv1, bn1, ...)
        count = {}
        for i, layer in enumerate(spec.get("layers", [])):
            kind, f = op_of(layer)
            prefix = {"Dense": "fc", "Conv2d": "conv", "BatchNorm2d": "bn"}.get(kind)
            count[kind] = count.get(kind, 0) + 1
            name = f.get("name") or (f"{prefix}{count[kind]}" if prefix else f"layer{i}")
            nodes.append({"name": name, "op": layer})

    def act(f, name):
        a = f["$items"][0]
        kind = a if isinstance(a, str) else a["$kind"]
        if kind == "ReLU":
            return nn.ReLU()
        if kind == "ReLU6":
            return nn.ReLU6()
        if kind == "Sigmoid":
            return nn.Sigmoid()
        if kind == "Tanh":
            return nn.Tanh()
        if kind == "Selu":
            return nn.SELU()
        if kind == "LeakyReLU":
            return nn.LeakyReLU(a["alpha"])
        if kind == "HardTanh":
            return nn.Hardtanh(a["min"], a["max"])
        if kind == "Elu":
            return nn.ELU(a["alpha"])
        raise SystemExit(f"node {name}: activation {kind} has no PyTorch equivalent here")

    class Dense(nn.Linear):
        """nacsim's Dense: flattens (c, h, w) in C order, then Linear (ONNX Flatten + Gemm)."""

        def forward(self, x):
            return super().forward(torch.flatten(x, 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.plan = []  # (name, kind, input names)
            shapes = {"input": (inp["c"], inp["h"], inp["w"])}  # "input": the network input
            prev = "input"
            for node in nodes:
                name = node["name"]
                kind, f = op_of(node)
                ins = node.get("inputs") or [prev]
                c, h, w = shapes[ins[0]]
                if kind == "Conv2d":
                    (kh, kw), (sh, sw) = hw(f["kernel"]), hw(f.get("stride", 1))
                    ph, pw = hw(f.get("padding", 0))
                    m = nn.Conv2d(c, f["out_channels"], (kh, kw), (sh, sw), (ph, pw),
                                  groups=f.get("groups", 1), bias=f.get("bias", True))
                    out = (f["out_channels"], (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
                elif kind == "BatchNorm2d":
                    m = nn.BatchNorm2d(c, eps=f.get("eps", 1e-5), momentum=f.get("momentum", 0.1))
                    out = (c, h, w)
                elif kind == "Dense":
                    m = Dense(c * h * w, f["out"], bias=f.get("bias", True))
                    out = (f["out"], 1, 1)
                elif kind == "Act":
                    m, out = act(f, name), (c, h, w)
                elif kind in ("MaxPool2d", "AvgPool2d"):
                    k, s = f["kernel"], f["stride"]
                    m = (nn.MaxPool2d if kind == "MaxPool2d" else nn.AvgPool2d)(k, s)
                    out = (c, (h - k) // s + 1, (w - k) // s + 1)
                elif kind == "GlobalAvgPool":
                    m, out = nn.AdaptiveAvgPool2d(1), (c, 1, 1)
                elif kind == "Flatten":
                    m, out = nn.Flatten(), (c * h * w, 1, 1)
                elif kind == "Dropout":
                    m, out = nn.Identity(), (c, h, w)
                elif kind == "Add":
                    m, out = None, (c, h, w)
                elif kind == "Concat":
                    m, out = None, (sum(shapes[i][0] for i in ins), h, w)
                else:
                    raise SystemExit(f"node {name}: {kind} is not exported by this script")
                if m is not None:
                    self.add_module(name, m)
                self.plan.append((name, kind, ins))
                shapes[name] = out
                prev = name
            self.last = prev

        def forward(self, x):
            vals = {"input": x}
            for name, kind, ins in self.plan:
                if kind == "Add":
                    y = vals[ins[0]]
                    for i in ins[1:]:
                        y = y + vals[i]
                elif kind == "Concat":
                    y = torch.cat([vals[i] for i in ins], dim=1)
                else:
                    y = getattr(self, name)(vals[ins[0]])
                vals[name] = y
            y = vals[self.last]
            return y if y.dim() == 2 else torch.flatten(y, 1)

    return Net()


def load_weights(net, path):
    """Copies the safetensors tensors into the module; every parameter and running statistic
    must be present (``num_batches_tracked`` is PyTorch's own counter)."""
    from safetensors.torch import load_file

    tensors = load_file(path)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
        elif k in tensors:
            state[k] = tensors.pop(k).reshape(v.shape)
        else:
            raise SystemExit(f"{path}: no tensor {k} for the module's parameter")
    if tensors:
        raise SystemExit(f"{path}: tensors the network does not use: {sorted(tensors)}")
    net.load_state_dict(state)
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("network", help="a nacsim network file (RON), e.g. models/networks/fmnist-resnet8.ron")
    ap.add_argument("--out", help="ONNX path (default: beside the RON file, <name>.onnx)")
    ap.add_argument("--inputs", type=int, default=8, help="sample images whose logits are saved")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()

    import onnx
    import torch

    spec = Ron(open(a.network).read()).value()
    net = build(spec)
    load_weights(net, os.path.join(os.path.dirname(a.network), spec["weights"]))
    stem = os.path.splitext(a.out or a.network)[0]
    out = stem + ".onnx"
    images = read_idx(os.path.join(SAMPLE, "t10k-images-idx3-ubyte"))[: a.inputs]
    shape = (spec["input"]["c"], spec["input"]["h"], spec["input"]["w"])
    x = torch.from_numpy(images.astype(np.float32).reshape((-1,) + shape) / 255.0)
    torch.onnx.export(net, (x,), out, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=a.opset, dynamo=False)
    m = onnx.load(out)
    onnx.checker.check_model(m)
    with torch.no_grad():
        y = net(x)
    ops = sorted({n.op_type for n in m.graph.node})
    with open(stem + ".torch-outputs.json", "w") as f:
        json.dump({"source": f"PyTorch {torch.__version__} (CPU, float32), eval mode, of "
                             f"{os.path.basename(a.network)}; exported by torch.onnx.export "
                             f"(TorchScript exporter, opset {a.opset}) by scripts/export_onnx.py",
                   "images": f"the first {a.inputs} images of crates/nn/data/fmnist-sample "
                             "(t10k), pixel / 255",
                   "output_shape": list(y.shape),
                   "output": [float(v) for v in y.ravel()]}, f)
        f.write("\n")
    print(f"{out}: {len(m.graph.node)} nodes {ops}; logits of {a.inputs} images in "
          f"{stem}.torch-outputs.json")


if __name__ == "__main__":
    main()
