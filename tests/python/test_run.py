"""nacsim.run and nacsim.info: the CLI's reports, key for key and number for number."""

from __future__ import annotations

import threading
import time

import nacsim
import pytest

from conftest import FASHION_MNIST, committed_design_text, without_wall

DESIGN = "models/designs/systolic-int8.ron"
XBAR = "models/designs/crossbar-rram.ron"
MLP = "models/networks/fmnist-mlp.ron"


def test_run_default_equals_cli_json(cli_json):
    r = nacsim.run(limit=300)
    c = cli_json("run", "--limit", "300")
    assert list(r) == list(c)  # the same keys in the same order
    assert without_wall(r) == without_wall(c)
    assert r["images"] == 300
    assert 0.5 < r["accuracy"] <= 1.0


@pytest.mark.skipif(not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_run_full_fashion_mnist_equals_cli_json(cli_json):
    """The issue's check: the default design on the full test set, the CLI's numbers."""
    r = nacsim.run(data=FASHION_MNIST)
    c = cli_json("run", "--data", str(FASHION_MNIST))
    assert r["images"] == 10_000
    assert r["calibration"]["split"] == "train"
    assert without_wall(r) == without_wall(c)


def test_run_crossbar_trial_equals_cli_json(cli_json, root, tmp_path):
    d = nacsim.Design.load(root / XBAR)
    d.set("engines.0.engine.nonideal.d2d_sigma_rel", 0.1)
    d.set("engines[0].engine.Crossbar.nonideal.read_noise_sigma_rel", 0.02)
    r = nacsim.run(d, root / MLP, limit=200, seed=3, trial=2)
    # The same design as a file: the CLI reads it.
    text = committed_design_text(root, XBAR).replace("d2d_sigma_rel: 0.0", "d2d_sigma_rel: 0.1")
    text = text.replace("read_noise_sigma_rel: 0.0", "read_noise_sigma_rel: 0.02")
    assert "d2d_sigma_rel: 0.1" in text and "read_noise_sigma_rel: 0.02" in text
    f = tmp_path / "crossbar.ron"
    f.write_text(text)
    c = cli_json("run", "--design", str(f), "--network", str(root / MLP), "--limit", "200",
                 "--seed", "3", "--trial", "2")
    r, c = without_wall(r), without_wall(c)
    r.pop("design"), c.pop("design")  # the file names differ
    assert r == c
    # Another trial draws other devices.
    r2 = nacsim.run(d, root / MLP, limit=200, seed=3, trial=3)
    assert r2["accuracy"] != r["accuracy"] or r2["energy_pj"] != r["energy_pj"]


def test_paths_and_objects_agree(root):
    a = nacsim.run(root / DESIGN, str(root / MLP), limit=100)
    b = nacsim.run(nacsim.Design.load(str(root / DESIGN)), nacsim.Network.load(root / MLP), limit=100)
    assert without_wall(a) == without_wall(b)
    assert a["design"] == "systolic-int8-32x32" or a["design"]


def test_info_equals_cli_json(cli_json, root):
    assert nacsim.info() == cli_json("info")
    i = nacsim.info(root / XBAR, root / MLP)
    assert i == cli_json("info", "--design", str(root / XBAR), "--network", str(root / MLP))
    topo = root / "models" / "workloads" / "mobilenet_v1.csv"
    t = nacsim.info(None, nacsim.Network.load(topo))
    assert t == cli_json("info", "--topology", str(topo))
    assert t["network"] == str(topo)


def test_run_releases_the_gil():
    """Python code runs in another thread while a simulation runs.

    One default run takes about 20 ms on a fast machine, too short to tell on its own, so the
    worker repeats it for about 0.3 s; only the main thread's ticks in the middle half of a
    run count (a run that held the GIL would let none through, whatever the gaps between runs).
    """
    ticks = []
    spans = []

    def work():
        until = time.perf_counter() + 0.3
        while True:
            start = time.perf_counter()
            nacsim.run(nacsim.Design.default(), nacsim.Network.default())
            end = time.perf_counter()
            spans.append((start, end))
            if end > until:
                break

    t = threading.Thread(target=work)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    inside = [x for x in ticks
              if any(s + 0.25 * (e - s) < x < e - 0.25 * (e - s) for s, e in spans)]
    total = sum(e - s for s, e in spans)
    assert total > 0.02, "the runs are too short to tell"
    assert len(inside) >= 3, f"{len(inside)} ticks in the middle halves of {len(spans)} runs ({total:.3f} s)"


def test_limit_zero_is_refused():
    with pytest.raises(ValueError, match="limit=0"):
        nacsim.run(limit=0)


def test_version():
    assert nacsim.__version__.count(".") == 2


def test_float_reference_false_equals_cli_no_float_reference(cli_json):
    r = nacsim.run(limit=200, float_reference=False)
    c = cli_json("run", "--limit", "200", "--no-float-reference")
    assert without_wall(r) == without_wall(c)
    assert r["float_accuracy"] is None
    assert r["timings"]["float_reference_s"] == 0
    full = nacsim.run(limit=200)
    assert full["float_accuracy"] is not None
    assert full["accuracy"] == r["accuracy"] and full["energy_pj"] == r["energy_pj"]
    with pytest.raises(TypeError, match="float_reference must be True or False"):
        nacsim.run(limit=10, float_reference="no")
