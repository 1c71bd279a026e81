"""A device-variation study on the RRAM crossbar: device-to-device conductance spread (d2d,
drawn once per device) × read noise (redrawn every read), Monte Carlo trials at each point,
the Fashion-MNIST MLP's accuracy as a table and, when matplotlib is installed, a heat map.

    python examples/python/variation_study.py                 # bundled 2,000-image sample
    python examples/python/variation_study.py --data /usr/share/datasets/fashion-mnist --trials 10
    python examples/python/variation_study.py --plot variation.png

Every point is ``nacsim.run`` on one design object whose two fields are set in place; trial t
draws its devices and noise from the keyed streams (seed, trial), so the numbers are the CLI's
for the same design file, seed and trial.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nacsim

ROOT = Path(__file__).resolve().parents[2]
D2D = "engines.0.engine.nonideal.d2d_sigma_rel"
READ = "engines.0.engine.nonideal.read_noise_sigma_rel"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default=ROOT / "models/designs/crossbar-rram.ron")
    ap.add_argument("--network", default=ROOT / "models/networks/fmnist-mlp.ron")
    ap.add_argument("--data", default=None, help="IDX folder (default: the bundled sample)")
    ap.add_argument("--limit", type=int, default=None, help="first K test images")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--d2d", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--read-noise", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    ap.add_argument("--plot", default=None, help="write a heat map (needs matplotlib)")
    a = ap.parse_args()

    design = nacsim.Design.load(a.design)
    network = nacsim.Network.load(a.network)  # loaded once, shared by every point
    acc = {}
    t0 = time.perf_counter()
    for d2d in a.d2d:
        design.set(D2D, d2d)
        for rn in a.read_noise:
            design.set(READ, rn)
            runs = [
                nacsim.run(design, network, data=a.data, limit=a.limit, seed=1, trial=t)
                for t in range(a.trials)
            ]
            acc[d2d, rn] = [r["accuracy"] for r in runs]
    wall = time.perf_counter() - t0
    images = runs[0]["images"]

    print(f"accuracy (mean ± std over {a.trials} trials, {images} images) — rows: d2d σ/G, columns: read-noise σ/G")
    print("d2d \\ read " + "".join(f"{rn:>16.3f}" for rn in a.read_noise))
    for d2d in a.d2d:
        cells = []
        for rn in a.read_noise:
            v = acc[d2d, rn]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{100 * statistics.mean(v):>9.2f} ± {100 * sd:4.2f}")
        print(f"{d2d:>11.3f} " + "".join(f"{c:>16}" for c in cells))
    points = len(a.d2d) * len(a.read_noise) * a.trials
    print(f"{points} simulations of {images} images in {wall:.1f} s ({wall / points * 1e3:.0f} ms each)")

    if a.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
            return
        grid = [[100 * statistics.mean(acc[d, r]) for r in a.read_noise] for d in a.d2d]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(a.read_noise)), [f"{r:g}" for r in a.read_noise])
        ax.set_yticks(range(len(a.d2d)), [f"{d:g}" for d in a.d2d])
        ax.set_xlabel("read noise σ/G (per read)")
        ax.set_ylabel("device-to-device σ/G (per device)")
        ax.set_title(f"RRAM crossbar, Fashion-MNIST MLP: accuracy (%), {a.trials} trials")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax, label="top-1 accuracy (%)")
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
