"""Shared by the scripts that run nacsim's committed MLP outside nacsim (aihwkit_reference.py,
aihwkit_side_by_side.py, pcm-drift-aihwkit.py): IDX reading, the Fashion-MNIST test set as
nacsim's loader scales it, and the 784-256-128-10 MLP with nacsim's trained weights in PyTorch.
numpy only at import; torch is imported by ``mlp`` alone, so a caller without torch can still
read data."""

import json
import os
import struct

import numpy as np


def read_idx(path):
    """Reads one IDX file (optionally .gz: ``path`` or ``path + ".gz"``) into a numpy array."""
    import gzip

    if not os.path.exists(path):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def test_set(data):
    """The test images of the IDX folder ``data`` as float32 ``[N, 784]`` in [0, 1] (pixel / 255,
    as nacsim's loader) and the labels as int64."""
    x = read_idx(os.path.join(data, "t10k-images-idx3-ubyte"))
    y = read_idx(os.path.join(data, "t10k-labels-idx1-ubyte"))
    return x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)


def mlp(safetensors_path):
    """The 784-256-128-10 ReLU MLP (eval mode) with the weights of a nacsim safetensors file
    (``fc1``..``fc3``: weight ``[out, in]`` and bias, f32 little-endian)."""
    import torch
    from torch import nn

    raw = open(safetensors_path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])

    def tensor(name):
        a, b = header[name]["data_offsets"]
        v = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=np.float32)
        return torch.from_numpy(v.copy().reshape(header[name]["shape"]))

    layers = [nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)]
    with torch.no_grad():
        for i, m in enumerate(layers[::2], start=1):
            m.weight.copy_(tensor(f"fc{i}.weight"))
            m.bias.copy_(tensor(f"fc{i}.bias"))
    return nn.Sequential(*layers).eval()
