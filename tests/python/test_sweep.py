"""nacsim.sweep and nacsim.merge: the CLI's points, resume and merged rows."""

from __future__ import annotations

import json

import nacsim
import pytest

SWEEP = """(
    schema_version: 1,
    name: "py-readnoise",
    design: "{root}/models/designs/crossbar-rram.ron",
    network: "{root}/models/networks/fmnist-mlp.ron",
    limit: 100,
    parameter: (path: "engines[0].engine.Crossbar.nonideal.read_noise_sigma_rel", values: [0.0, 0.05]),
    trials: 2,
    seed: 1,
)
"""


@pytest.fixture
def spec(root, tmp_path):
    f = tmp_path / "sweep.ron"
    f.write_text(SWEEP.format(root=root))
    return f


def test_sweep_points_equal_the_cli(spec, tmp_path, cli):
    rows = nacsim.sweep(spec, out=tmp_path / "py", as_frame=False)
    assert [(r["value_index"], r["trial"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [r["value"] for r in rows] == [0.0, 0.0, 0.05, 0.05]
    code, _, err = cli("sweep", str(spec), "--out", str(tmp_path / "cli"), "--threads", "1")
    assert code == 0, err
    found = [json.loads(q.read_text()) for q in (tmp_path / "cli" / "points").glob("*.json")]
    assert len(found) == 4
    for c in found:
        c.pop("digest", None)
    found.sort(key=lambda c: (c["value_index"], c["trial"]))
    assert rows == found
    # Read noise of 5 % changes the numbers of trial 0 and 1 differently.
    assert rows[2]["accuracy"] != rows[0]["accuracy"] or rows[2]["energy_pj"] != rows[0]["energy_pj"]


def test_sweep_resumes_and_merges(spec, tmp_path):
    out = tmp_path / "s"
    first = nacsim.sweep(spec, out=out, shard=(0, 2), as_frame=False)
    assert len(first) == 2
    with pytest.raises(nacsim.NacsimError, match="missing"):
        nacsim.merge(out)
    partial = nacsim.merge(out, allow_partial=True, as_frame=False)
    assert all(not r["complete"] for r in partial)
    both = nacsim.sweep(spec, out=out, threads=1, as_frame=False)
    assert len(both) == 4
    assert [p for p in both if (p["value_index"], p["trial"]) in {(f["value_index"], f["trial"]) for f in first}] == first
    rows = nacsim.merge(out, as_frame=False)
    assert [r["value"] for r in rows] == [0.0, 0.05]
    assert all(r["complete"] and r["trials"] == 2 for r in rows)
    accs = [p["accuracy"] for p in both if p["value_index"] == 1]
    assert rows[1]["accuracy_mean"] == pytest.approx(sum(accs) / 2)
    # A changed sweep is refused in the same folder, unless force_new.
    spec.write_text(spec.read_text().replace("trials: 2", "trials: 1"))
    with pytest.raises(nacsim.NacsimError):
        nacsim.sweep(spec, out=out)
    assert len(nacsim.sweep(spec, out=out, force_new=True, as_frame=False)) == 2


def test_sweep_into_a_temporary_folder(spec):
    rows = nacsim.sweep(spec, threads=1, as_frame=False)
    assert len(rows) == 4
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert isinstance(nacsim.sweep(spec), list)
    else:
        assert list(nacsim.sweep(spec)["trial"]) == [0, 1, 0, 1]
