"""nacsim against IBM aihwkit, side by side: one Monte Carlo analog trial of the
784-256-128-10 Fashion-MNIST MLP (programming included, then the 10,000 test images),
and float inference of the same network, in alternating rounds on one machine, so
both see the same load; prints the medians and the ratios.

Per round:

* nacsim: ``nacsim run --json`` on ``models/designs/crossbar-rram.ron`` with 5 %
  device-to-device variation, 2 % read noise (before the ADC, the default) and 8-bit
  ADCs, trial = round number. From its ``timings`` (docs/report-format.md): the
  trial is ``calibrate_s + compile_s + simulate_s`` (quantization with calibration
  on 512 training images, programming with the d2d draws, 10,000 images with read
  noise); float inference is ``float_reference_s`` (the same network in float, same
  images, same process).
* aihwkit (unless ``--nacsim-only``): the same MLP with ``InferenceRPUConfig()``
  defaults (PCM-like programming noise and drift, output noise, 7-bit DAC / 9-bit
  ADC), weights from the nacsim network file; timed: conversion to analog tiles +
  programming + drift (``drift_analog_weights``) + the forward pass over the 10,000
  images at batch 1000; and PyTorch float inference of the same network.

Install aihwkit (download.pytorch.org is not needed; aihwkit 1.1.0's cp311 wheel is
built against torch 2.10.0 from PyPI):

    python3.11 -m venv /work/aihwkit-venv
    /work/aihwkit-venv/bin/pip install torch==2.10.0 torchvision==0.25.0
    /work/aihwkit-venv/bin/pip install aihwkit==1.1.0 numpy

Usage (build nacsim first: ``cargo build --release``):

    /work/aihwkit-venv/bin/python scripts/aihwkit_side_by_side.py [--rounds 5]
        [--data DIR] [--threads 2] [--nacsim target/release/nacsim] [--nacsim-only]

On a loaded machine pass ``--threads 1``: torch's two-thread pool stalls when both cores are
busy (docs/performance.md, session 7), which makes the aihwkit and PyTorch times swing by 5x
from round to round.

``--nacsim-only`` runs the nacsim half alone (no torch needed): its trial/float ratio
is still measured in one process. Output: one JSON line per measurement, then a
table of medians and ratios.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noisy_design(tmp):
    """crossbar-rram.ron with 5 % d2d, 2 % read noise, presets made absolute."""
    path = os.path.join(ROOT, "models", "designs", "crossbar-rram.ron")
    with open(path) as f:
        text = f.read()
    text, n = re.subn(
        r"nonideal: \(d2d_sigma_rel: 0\.0, read_noise_sigma_rel: 0\.0\)",
        "nonideal: (d2d_sigma_rel: 0.05, read_noise_sigma_rel: 0.02)",
        text,
    )
    if n != 1:
        sys.exit(f"{path}: expected one ideal `nonideal` entry to replace, found {n}")
    designs = os.path.join(ROOT, "models", "designs")
    text = re.sub(
        r'Preset\("([^"]+)"\)',
        lambda m: f'Preset("{os.path.normpath(os.path.join(designs, m.group(1)))}")',
        text,
    )
    out = os.path.join(tmp, "crossbar-rram-noisy.ron")
    with open(out, "w") as f:
        f.write(text)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def nacsim_round(args, design, trial):
    cmd = [
        args.nacsim, "run", "--json", "--design", design,
        "--data", args.data, "--seed", "1", "--trial", str(trial),
    ]
    load = loadavg()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    t = r["timings"]
    return {
        "tool": "nacsim",
        "trial_s": t["calibrate_s"] + t["compile_s"] + t["simulate_s"],
        "float_s": t["float_reference_s"],
        "accuracy": r["accuracy"],
        "float_accuracy": r["float_accuracy"],
        "wall_seconds": r["wall_seconds"],
        "timings": t,
        "loadavg": load,
    }


class Aihwkit:
    """The aihwkit half: imported only when used, so --nacsim-only needs no torch."""

    def __init__(self, args):
        import torch

        import aihwkit
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.simulator.configs import InferenceRPUConfig

        torch.set_num_threads(args.threads)
        import torch_mlp  # numpy: needed by the aihwkit half only

        self.torch, self.mlp = torch, torch_mlp
        self.convert, self.config = convert_to_analog, InferenceRPUConfig
        self.version = {"torch": torch.__version__, "aihwkit": aihwkit.__version__}
        self.x, self.y = self.load(args.data)
        self.float_model = self.network(args.network)
        self.batch = 1000

    def load(self, data):
        x, y = self.mlp.test_set(data)
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def network(self, path):
        """The MLP with nacsim's trained weights: the network file's safetensors
        (``fc1``..``fc3``, weight ``[out, in]`` and bias, f32 little-endian)."""
        weights = os.path.join(os.path.dirname(path), re.search(r'weights: "([^"]+)"', open(path).read()).group(1))
        return self.mlp.mlp(weights)

    def predict(self, model):
        with self.torch.no_grad():
            return self.torch.cat(
                [model(self.x[i: i + self.batch]).argmax(1) for i in range(0, len(self.x), self.batch)]
            )

    def trial(self):
        """Convert + program + drift + forward over the test set: one analog trial."""
        load = loadavg()
        t0 = time.perf_counter()
        model = self.convert(self.float_model, self.config())
        model.eval()
        model.program_analog_weights()
        model.drift_analog_weights(3600.0)
        pred = self.predict(model)
        trial_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fpred = self.predict(self.float_model)
        float_s = time.perf_counter() - t0
        return {
            "tool": "aihwkit",
            "trial_s": trial_s,
            "float_s": float_s,
            "accuracy": (pred == self.y).float().mean().item(),
            "float_accuracy": (fpred == self.y).float().mean().item(),
            "loadavg": load,
            **self.version,
        }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--network", default=os.path.join(ROOT, "models", "networks", "fmnist-mlp.ron"))
    p.add_argument("--nacsim", default=os.path.join(ROOT, "target", "release", "nacsim"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nacsim-only", action="store_true", help="skip the aihwkit half")
    args = p.parse_args()
    if not os.path.exists(args.nacsim):
        sys.exit(f"{args.nacsim}: not found; run `cargo build --release` or pass --nacsim")
    peer = None
    if not args.nacsim_only:
        try:
            peer = Aihwkit(args)
        except ImportError as e:
            sys.exit(f"aihwkit half: {e}; install it as this script's docstring says, or pass --nacsim-only")
    rows = {"nacsim": [], "aihwkit": []}
    with tempfile.TemporaryDirectory() as tmp:
        design = noisy_design(tmp)
        for r in range(1, args.rounds + 1):
            m = nacsim_round(args, design, r)
            rows["nacsim"].append(m)
            print(json.dumps({"round": r, **m}), flush=True)
            if peer:
                m = peer.trial()
                rows["aihwkit"].append(m)
                print(json.dumps({"round": r, **m}), flush=True)

    def med(tool, key):
        v = [m[key] for m in rows[tool]]
        return statistics.median(v) if v else float("nan")

    print(f"\nmedians of {args.rounds} alternating rounds (load {loadavg():.2f}):")
    print(f"{'':10} {'trial s':>9} {'float s':>9} {'trial/float':>12}")
    for tool in ("nacsim", "aihwkit"):
        if rows[tool]:
            t, f = med(tool, "trial_s"), med(tool, "float_s")
            print(f"{tool:10} {t:9.3f} {f:9.3f} {t / f:12.2f}")
    if rows["aihwkit"]:
        print("per round (each ratio from one round, the two tools run back to back):")
        print(f"{'round':>5} {'aihwkit/nacsim trial':>21} {'PyTorch/nacsim float':>21} {'load':>6}")
        for r, (a, n) in enumerate(zip(rows["aihwkit"], rows["nacsim"]), start=1):
            print(f"{r:5d} {a['trial_s'] / n['trial_s']:21.2f} {a['float_s'] / n['float_s']:21.2f} {n['loadavg']:6.2f}")
        print(f"aihwkit / nacsim per trial: {med('aihwkit', 'trial_s') / med('nacsim', 'trial_s'):.2f}x")
        print(f"PyTorch / nacsim float:     {med('aihwkit', 'float_s') / med('nacsim', 'float_s'):.2f}x")


if __name__ == "__main__":
    main()
