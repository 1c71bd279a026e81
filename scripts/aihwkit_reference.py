"""Same-machine timing reference of IBM aihwkit (CPU) for nacsim's MLP benchmarks.

Measures, on a 784-256-128-10 MLP (ReLU hidden layers, or sigmoid with --activation
for training; AnalogLinear layers with aihwkit's default bias=True, which the
default mapping keeps digital):

* ``--workload inference``: analog inference over the 10,000 Fashion-MNIST test
  images, batch 1000, with ``InferenceRPUConfig()`` (its defaults: PCMLikeNoiseModel
  programming noise and drift, GlobalDriftCompensation, forward out_noise 0.06,
  7-bit DAC / 9-bit ADC, tiles at most 512x512). Weights are taken from a short
  float pre-training (1 epoch, so the accuracy is meaningful), then programmed
  and drifted once with ``drift_analog_weights(t_inference)`` (default 1 h).
  Timed: the forward pass over the 10,000 images only (median of ``--repeats``
  runs after one warm-up); each run reads with fresh read noise.
* ``--workload train``: pulsed in-situ training, ``SingleRPUConfig(device=...)``,
  AnalogSGD lr 0.1, batch 64, cross-entropy loss. Timed: each full epoch over the
  60,000 training images (forward + backward + pulsed update, and the cheap
  per-batch slicing of tensors already in memory; file decoding is excluded).
  Accuracy: the test set after each epoch (not timed). Note: with ReLU and
  ConstantStepDevice the net collapses to 10 % after 1-2 epochs (lr 0.1 and 0.05);
  --activation sigmoid trains stably (65/75/78 % after epochs 1/2/3).

One JSON line per measurement: {"workload", "seconds", "accuracy", "images",
"torch", "aihwkit", "threads", "cpu_seconds", "loadavg" (1-min, read just before
the timing), "started", ...}.

Install (aihwkit 1.1.0's cp311 wheel is built against torch 2.10.0; torch 2.9.1
fails to import it with an undefined symbol):

    python3.11 -m venv /work/aihwkit-venv
    /work/aihwkit-venv/bin/pip install torch==2.10.0 torchvision==0.25.0
    /work/aihwkit-venv/bin/pip install aihwkit==1.1.0

Usage:

    /work/aihwkit-venv/bin/python scripts/aihwkit_reference.py \\
        --workload inference|train [--data DIR] \\
        [--device constant-step|soft-bounds|reram-es] [--repeats N] [--threads 2]

``--data`` is a folder with the Fashion-MNIST IDX files (gzipped or not);
default /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torch_mlp import read_idx

import aihwkit
from aihwkit.nn import AnalogLinear, AnalogSequential
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import InferenceRPUConfig, SingleRPUConfig
from aihwkit.simulator.configs.devices import ConstantStepDevice, SoftBoundsDevice
from aihwkit.simulator.presets.devices import ReRamESPresetDevice
from aihwkit.simulator.rpu_base import cuda

DEVICES = {
    "constant-step": ConstantStepDevice,
    "soft-bounds": SoftBoundsDevice,
    "reram-es": ReRamESPresetDevice,
}


def load(data, split):
    images = read_idx(os.path.join(data, f"{split}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data, f"{split}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def mlp(rpu_config, activation="relu"):
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    return AnalogSequential(
        AnalogLinear(784, 256, rpu_config=rpu_config),
        act(),
        AnalogLinear(256, 128, rpu_config=rpu_config),
        act(),
        AnalogLinear(128, 10, rpu_config=rpu_config),
    )


@torch.no_grad()
def predict(model, x, batch):
    return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def accuracy(model, x, y, batch=1000):
    return (predict(model, x, batch) == y).float().mean().item()


def sgd_epoch(model, opt, x, y, batch, generator):
    model.train()
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()


def timed(fn, *args):
    """Runs fn(*args); returns its result and the timing fields of one measurement.

    loadavg is the 1-minute load read just before; cpu_seconds is this process's CPU
    time (all threads), less sensitive than wall seconds to other load on the machine.
    """
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    started, c0, t0 = time.strftime("%H:%M:%S"), time.process_time(), time.perf_counter()
    out = fn(*args)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return out, {"seconds": wall, "cpu_seconds": cpu, "loadavg": load, "started": started}


def run_inference(args, info):
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    model = mlp(InferenceRPUConfig())
    # Float pre-training: inference tiles train with perfect (non-pulsed) updates.
    opt = AnalogSGD(model.parameters(), lr=0.05)
    sgd_epoch(model, opt, xtr, ytr, 64, torch.Generator().manual_seed(0))
    model.drift_analog_weights(args.t_inference)
    predict(model, xte, args.batch)  # warm-up
    times, accs = [], []
    for _ in range(args.repeats):
        pred, timing = timed(predict, model, xte, args.batch)
        times.append(timing["seconds"])
        accs.append((pred == yte).float().mean().item())
        emit(info, workload="inference", accuracy=accs[-1], images=len(xte), **timing)
    emit(
        info,
        workload="inference",
        summary="median",
        seconds=statistics.median(times),
        accuracy=statistics.median(accs),
        images=len(xte),
        t_inference=args.t_inference,
    )


def run_train(args, info):
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    model = mlp(SingleRPUConfig(device=DEVICES[args.device]()), args.activation)
    opt = AnalogSGD(model.parameters(), lr=args.lr)
    opt.regroup_param_groups(model)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(1, args.repeats + 1):
        _, timing = timed(sgd_epoch, model, opt, xtr, ytr, args.batch, gen)
        emit(
            info,
            workload="train",
            device=args.device,
            activation=args.activation,
            lr=args.lr,
            epoch=epoch,
            accuracy=accuracy(model, xte, yte),
            images=len(xtr),
            **timing,
        )


def emit(info, **fields):
    print(json.dumps({**fields, **info}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=["inference", "train"], required=True)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--device", choices=sorted(DEVICES), default="constant-step")
    p.add_argument("--repeats", type=int, default=None, help="inference: 5, train: 1 epoch")
    p.add_argument("--batch", type=int, default=None, help="inference: 1000, train: 64")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--activation", choices=["relu", "sigmoid"], default="relu", help="train only")
    p.add_argument("--t-inference", type=float, default=3600.0, help="drift time (s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    inference = args.workload == "inference"
    args.repeats = args.repeats or (5 if inference else 1)
    args.batch = args.batch or (1000 if inference else 64)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    info = {
        "torch": torch.__version__,
        "aihwkit": aihwkit.__version__,
        "threads": torch.get_num_threads(),
        "rpu_cuda": cuda.is_compiled(),
        "batch": args.batch,
    }
    (run_inference if inference else run_train)(args, info)


if __name__ == "__main__":
    main()
