"""nacsim.train: the CLI's training report, on a few hundred images."""

from __future__ import annotations

import json
from pathlib import Path

import nacsim
import pytest

from conftest import FASHION_MNIST


@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_train_writes_the_network_and_reports(root, tmp_path):
    config = root / "models" / "training" / "fmnist-mlp.ron"
    r = nacsim.train(config, out=tmp_path, epochs=1, limit=256, eval_limit=200)
    assert r["epochs"] == 1 and r["images"] == 200 and len(r["history"]) == 1
    assert 0.0 <= r["accuracy"] <= 1.0
    out = Path(r["output"])
    assert out.parent == tmp_path and out.exists()
    assert json.loads(out.with_suffix(".train.json").read_text())["accuracy"] == r["accuracy"]
    # The trained network runs.
    assert nacsim.run(None, out, limit=50)["images"] == 50
    # The output exists now: refused without force, as the CLI refuses it.
    with pytest.raises(nacsim.NacsimError, match="--force|force"):
        nacsim.train(config, out=tmp_path, epochs=1, limit=64, eval_limit=50)
    with pytest.raises(ValueError, match="epochs=0"):
        nacsim.train(config, out=tmp_path, epochs=0)


@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_insitu_training_reports_the_writes(root, tmp_path, cli_json):
    config = root / "models" / "training" / "insitu-agasi-linear-fmnist-mlp.ron"
    args = dict(epochs=1, limit=200, eval_limit=100)
    r = nacsim.train(config, out=tmp_path / "py", **args)
    w = r["insitu"]
    assert w["pulses"] > 0 and w["write_energy_pj"] > 0 and w["write_latency_s"] > 0
    # The CLI trains the same network to the same numbers (same seed, same images).
    c = cli_json("train", str(config), "--out", str(tmp_path / "cli"), "--epochs", "1",
                 "--limit", "200", "--eval-limit", "100")
    for k in ("accuracy", "images", "epochs", "seed", "insitu"):
        assert r[k] == c[k], k
    assert [h["loss"] for h in r["history"]] == [h["loss"] for h in c["history"]]
