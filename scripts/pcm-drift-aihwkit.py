#!/usr/bin/env python3
"""IBM aihwkit itself on the committed Fashion-MNIST MLP: accuracy against PCM drift.

The side-by-side run of issue #21: the nacsim drift sweeps
`models/sweeps/crossbar-drift{,-gdc}-fmnist-mlp.ron` next to aihwkit's inference model on the
same float weights (`models/networks/fmnist-mlp.safetensors`) and the full test set. Unlike
`scripts/pcm-drift-aihwkit-model.py` (a numpy re-implementation of aihwkit's formulas, written
when aihwkit could not be installed), this script imports aihwkit and uses its own classes:

* `InferenceRPUConfig` with `PCMLikeNoiseModel(g_max=25 uS)` (Nandakumar et al., ICECS 2019:
  programming noise, power-law drift with state-dependent nu, 1/f read noise at t) and its
  default `SinglePairConductanceConverter` (a positive weight on G+, the other device at 0 S);
* `GlobalDriftCompensation` (aihwkit's: one gain per tile, the mean |output| of a read of the
  one-hot vectors `eye(in_size)` at programming over the same read now), or none;
* float periphery (`forward.is_perfect = True`: no DAC/ADC, no output noise), digital bias;
* one tile per layer (`mapping.max_input_size = max_output_size = 0`), as the numpy model, or
  aihwkit's default 512x512 split with `--tile 512`.

Two noise settings: drift only (`prog_noise_scale = read_noise_scale = 0`, the nacsim sweeps'
setting) and aihwkit's full PCM model (all scales 1). Each trial seeds torch with the trial
number, converts and programs the network once and drifts the same devices to every time
(`drift_analog_weights(t)`, t counted from the end of programming, t0 = 20 s).

Install (outside the repository, PyPI only; download.pytorch.org is not needed). aihwkit
1.1.0 has a cp311 manylinux wheel built against torch 2.10.0 (about 7.4 GB with torch's CUDA
dependency wheels, run on the CPU):

    python3.11 -m venv /work/venv-aihwkit11
    /work/venv-aihwkit11/bin/pip install torch==2.10.0 numpy safetensors aihwkit==1.1.0

aihwkit 1.2.0 is on PyPI as an sdist only: `pip install --no-build-isolation aihwkit==1.2.0`
(with torch, scikit-build, pybind11, ninja, cmake, mypy and `apt-get install libopenblas-dev`)
compiles its C++ simulator, 41 steps, about a minute each on a loaded 2-core machine. The
Python code used here (`inference/noise/pcm.py`, `inference/compensation/*.py`,
`inference/converter/conductance.py`, `simulator/tiles/inference.py`,
`simulator/configs/configs.py`) is the same in 1.1.0 and 1.2.0 apart from copyright lines.

Usage:

    /work/venv-aihwkit11/bin/python scripts/pcm-drift-aihwkit.py [--data DIR] [--trials 20]
        [--tile 0|512] [--threads 2]
"""
import argparse
import os
import time

import numpy as np
import torch
from torch import nn

import torch_mlp

import aihwkit
from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.simulator.configs import InferenceRPUConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMES = [0.0, 1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
LABELS = ["0 (programmed)", "1 s", "1 h", "1 day", "30 days", "365 days"]


def mlp():
    """The 784-256-128-10 MLP with the committed weights (fc1..fc3, weight [out, in], bias)."""
    return torch_mlp.mlp(os.path.join(ROOT, "models", "networks", "fmnist-mlp.safetensors"))


def test_set(data):
    """Fashion-MNIST test images scaled to [0, 1] (as nacsim's loader) and labels."""
    x, y = torch_mlp.test_set(data)
    return torch.from_numpy(x), torch.from_numpy(y)


def config(full, gdc, tile):
    """aihwkit's inference config for one setting (see the module docstring)."""
    c = InferenceRPUConfig()
    c.forward.is_perfect = True
    c.mapping.max_input_size = tile
    c.mapping.max_output_size = tile
    scale = 1.0 if full else 0.0
    c.noise_model = PCMLikeNoiseModel(g_max=25.0, prog_noise_scale=scale, read_noise_scale=scale)
    c.drift_compensation = GlobalDriftCompensation() if gdc else None
    return c


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--tile", type=int, default=0, help="max tile size (0: one tile per layer)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x, y = test_set(args.data)
    float_model = mlp()
    print(f"aihwkit {aihwkit.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
          f"{args.trials} trials, tile {args.tile or 'one per layer'}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"float accuracy {accuracy(float_model, x, y):.4f}")
    settings = [(False, False), (False, True), (True, False), (True, True)]
    acc = {s: [[] for _ in TIMES] for s in settings}
    for full, gdc in settings:
        for trial in range(1, args.trials + 1):
            torch.manual_seed(trial)
            model = convert_to_analog(float_model, config(full, gdc, args.tile))
            model.eval()
            model.program_analog_weights()
            for i, t in enumerate(TIMES):
                model.drift_analog_weights(t)
                acc[(full, gdc)][i].append(accuracy(model, x, y))
    print("| time since programming (s) | | drift only | drift only + GDC | full PCM model | full PCM model + GDC |")
    print("|---|---|---|---|---|---|")
    for i, t in enumerate(TIMES):
        cells = [f"{np.mean(acc[s][i]):.4f} ± {np.std(acc[s][i]):.4f}" for s in settings]
        print(f"| {t:g} | {LABELS[i]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
