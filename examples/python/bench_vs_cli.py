"""Wall time of ``nacsim.run`` from Python against the ``nacsim run`` CLI on the same inputs,
in alternating rounds, and a check that both report the same numbers.

    python examples/python/bench_vs_cli.py --cli target/release/nacsim \
        --data /usr/share/datasets/fashion-mnist --rounds 5

The CLI's time is the process's wall time (start-up, loading, simulation, printing); the
package's is the call's (loading from the files, simulation, the report as a dict), measured
in this process. Run both from builds of the same profile (release).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import nacsim

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=ROOT / "target/release/nacsim")
    ap.add_argument("--design", default=ROOT / "models/designs/systolic-int8.ron")
    ap.add_argument("--network", default=ROOT / "models/networks/fmnist-mlp.ron")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    args = [str(a.cli), "run", "--design", str(a.design), "--network", str(a.network), "--data", str(a.data), "--json"]
    cli_t, py_t = [], []
    cli_r = py_r = None
    for _ in range(a.rounds):
        t = time.perf_counter()
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        cli_t.append(time.perf_counter() - t)
        cli_r = json.loads(out)
        t = time.perf_counter()
        py_r = nacsim.run(a.design, a.network, data=a.data)
        py_t.append(time.perf_counter() - t)
    for r in (cli_r, py_r):
        r.pop("wall_seconds")
    same = cli_r == py_r
    c, p = statistics.median(cli_t), statistics.median(py_t)
    print(f"{py_r['images']} images, design {py_r['design']}: same report: {same}")
    print(f"CLI    median {c:.3f} s  (rounds: {', '.join(f'{x:.3f}' for x in cli_t)})")
    print(f"Python median {p:.3f} s  (rounds: {', '.join(f'{x:.3f}' for x in py_t)})")
    print(f"Python / CLI = {p / c:.3f}")
    if not same:
        raise SystemExit("the reports differ")


if __name__ == "__main__":
    main()
