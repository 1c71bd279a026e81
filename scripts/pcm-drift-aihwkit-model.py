#!/usr/bin/env python3
"""aihwkit's PCM inference model on the committed Fashion-MNIST MLP, re-implemented in numpy.

The side-by-side reference for the drift tables of docs/engines/crossbar.md (issue #21):
aihwkit's `PCMLikeNoiseModel` (Nandakumar et al., ICECS 2019; aihwkit
`inference/noise/pcm.py`) with its `SinglePairConductanceConverter` (g_max = 25 uS, g_min = 0:
a positive weight on G+, the other device at 0 S) and `GlobalDriftCompensation` (one scale per
layer from an all-ones read), with float periphery (no DAC/ADC, no IO noise). aihwkit itself
needs torch, which this machine cannot install; the formulas are those of crates/device/src/
noise.rs (checked against aihwkit there).

Two settings: drift only (programming and read noise off, as the nacsim drift sweeps) and
aihwkit's full model (programming noise, drift, 1/f read noise at t).

    python3 scripts/pcm-drift-aihwkit-model.py [DATA_DIR] [TRIALS]
"""
import gzip
import json
import struct
import sys

import numpy as np

ROOT = __file__.rsplit("/scripts/", 1)[0]
DATA = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
TRIALS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
G_MAX = 25.0  # uS
T0 = 20.0  # s
T_READ = 250e-9  # s
PROG = (0.26348, 1.9650, -1.1731)  # uS
TIMES = [0.0, 1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]


def load_weights():
    b = open(f"{ROOT}/models/networks/fmnist-mlp.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype=np.float32).reshape(v["shape"])
    return out


def load_test():
    with gzip.open(f"{DATA}/t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 784) / 255.0
    with gzip.open(f"{DATA}/t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read()[8:], dtype=np.uint8)
    return x.astype(np.float64), y


def nu_stats(g_target):
    r = np.maximum(np.abs(g_target) / G_MAX, 1e-7)
    mu = np.clip(-0.0155 * np.log(r) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(r) - 0.0059, 0.008, 0.045)
    return mu, sd


def conductances(w, rng, t, full):
    """Programmed + drifted (+ read-noisy) G+ and G- (uS) of weight matrix w, and w_max."""
    w_max = np.abs(w).max()
    gp = np.maximum(w, 0) / w_max * G_MAX
    gm = np.maximum(-w, 0) / w_max * G_MAX
    out = []
    for g in (gp, gm):
        if full:
            r = g / G_MAX
            sig = PROG[0] + PROG[1] * r + PROG[2] * r * r
            gprog = np.maximum(g + sig * rng.standard_normal(g.shape), 0.0)
        else:
            gprog = g
        mu, sd = nu_stats(g)
        nu = np.abs(mu + sd * rng.standard_normal(g.shape))
        tt = t + T0
        gd = gprog * (tt / T0) ** (-nu) if tt > T0 else gprog
        if full:
            q = np.minimum(0.0088 / np.maximum((gprog / G_MAX) ** 0.65, 1e-3), 0.2)
            s = q * np.sqrt(np.log((tt + T_READ) / (2 * T_READ)))
            gd = np.maximum(gd + np.abs(gd) * s * rng.standard_normal(g.shape), 0.0)
        out.append((gprog, gd))
    return out, w_max


def accuracy(ws, x, y, rng, t, full, gdc):
    h = x
    for i, (w, b) in enumerate(ws):
        ((pp, pd), (mp, md)), w_max = conductances(w, rng, t, full)
        w_prog = (pp - mp) / G_MAX * w_max
        w_drift = (pd - md) / G_MAX * w_max
        if gdc:
            ones = np.ones(w.shape[1])
            base = max(np.abs(w_prog @ ones).mean(), 1e-4)
            now = max(np.abs(w_drift @ ones).mean(), 1e-4)
            w_drift = w_drift * (base / now)
        h = h @ w_drift.T + b
        if i < len(ws) - 1:
            h = np.maximum(h, 0)
    return float((h.argmax(1) == y).mean())


def main():
    p = load_weights()
    ws = [(p[f"fc{i}.weight"].astype(np.float64), p[f"fc{i}.bias"].astype(np.float64)) for i in (1, 2, 3)]
    x, y = load_test()
    print(f"float accuracy {accuracy(ws, x, y, np.random.default_rng(0), 0.0, False, False):.4f}")
    print("| time (s) | drift only | drift only + GDC | full PCM model | full PCM model + GDC |")
    print("|---|---|---|---|---|")
    for t in TIMES:
        cells = []
        for full in (False, True):
            for gdc in (False, True):
                accs = [
                    accuracy(ws, x, y, np.random.default_rng(1000 * k + 7), t, full, gdc)
                    for k in range(TRIALS)
                ]
                cells.append(f"{np.mean(accs):.4f} ± {np.std(accs):.4f}")
        print(f"| {t:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
