"""nacsim.Design and nacsim.Network: loading, field paths, overrides that change the numbers."""

from __future__ import annotations

import nacsim
import pytest

SYSTOLIC = "models/designs/systolic-int8.ron"


def test_paths_are_resolved(root):
    d = nacsim.Design.load(root / SYSTOLIC)
    assert d.resolve("engines.0.engine.rows") == "engines[0].engine.Systolic.rows"
    assert d.resolve("engines[0].engine.Systolic.rows") == "engines[0].engine.Systolic.rows"
    assert d.get("engines.0.engine.rows") == 32
    assert d.get("clock_mhz") == 500.0
    assert d.to_dict()["name"] == d.name == "systolic-int8-32x32"
    assert d.path == str(root / SYSTOLIC)


def test_set_changes_the_report(root):
    d = nacsim.Design.load(root / SYSTOLIC)
    before = nacsim.info(d)
    e = d.copy()
    e.set("engines.0.engine.rows", 64)
    assert e.get("engines.0.engine.rows") == 64
    assert d.get("engines.0.engine.rows") == 32  # a copy is independent
    after = nacsim.info(e)
    # Peak = 2 · rows · cols · clock: twice the rows, twice the peak.
    assert after["peak_gops"] == pytest.approx(2 * before["peak_gops"])
    e.set("clock_mhz", 250)
    assert nacsim.info(e)["clock_hz"] == 250e6


def test_default_design_is_the_embedded_one(root):
    assert nacsim.info(nacsim.Design.default()) == nacsim.info()
    assert nacsim.Design.default().name == nacsim.Design.load(root / SYSTOLIC).name


def test_networks(root):
    n = nacsim.Network.load(root / "models" / "networks" / "fmnist-mlp.ron")
    assert (n.kind, n.input_shape, n.classes) == ("trained", (1, 28, 28), 10)
    t = nacsim.Network.load(root / "models" / "networks" / "fc4096.ron")
    assert t.kind in ("topology-only", "trained")
    i = nacsim.info(root / "models" / "designs" / "bpca-qin2019.ron", t)
    assert i["peak_gops"] > 0
    csv = nacsim.Network.load(root / "models" / "workloads" / "bert_base_encoder.csv")
    assert csv.kind == "scale-sim" and csv.input_shape is None
    assert nacsim.Network.default().label.endswith("(embedded)")


def test_onnx_network(root, cli_json):
    path = root / "tests" / "fixtures" / "onnx" / "fmnist-cnn.onnx"
    n = nacsim.Network.load(path)
    assert (n.kind, n.input_shape, n.classes) == ("trained", (1, 28, 28), 10)
    assert nacsim.info(None, n) == cli_json("info", "--network", str(path))
    with pytest.raises(nacsim.ConfigError) as e:
        nacsim.Network.load(root / "tests" / "fixtures" / "onnx" / "bad-op.onnx")
    assert e.value.file.endswith("bad-op.onnx")
