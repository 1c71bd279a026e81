"""Fixtures of the nacsim Python tests: the repository, the CLI to compare with, the bundled
Fashion-MNIST sample as numpy arrays.

The CLI is ``$NACSIM_BIN`` if set (``.ci/run`` sets it), else ``target/release/nacsim`` or
``target/debug/nacsim`` of this checkout; the tests that compare with it are skipped only when
none exists (never in CI, which sets ``NACSIM_BIN``).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "crates" / "nn" / "data" / "fmnist-sample"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def cli_path() -> Path | None:
    env = os.environ.get("NACSIM_BIN")
    if env:
        p = Path(env)
        assert p.exists(), f"NACSIM_BIN={env} does not exist"
        return p
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "nacsim"
        if p.exists():
            return p
    return None


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def cli():
    """Run the CLI; returns (exit status, stdout, stderr)."""
    path = cli_path()
    if path is None:
        pytest.skip("no nacsim binary: set NACSIM_BIN or build target/release/nacsim")

    def call(*args: str):
        p = subprocess.run([str(path), *args], capture_output=True, text=True, cwd=ROOT)
        return p.returncode, p.stdout, p.stderr

    return call


@pytest.fixture(scope="session")
def cli_json(cli):
    def call(*args: str):
        code, out, err = cli(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    return call


def read_idx(path: Path):
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, rows, cols)
    assert magic == 2049
    return np.frombuffer(raw[8:], dtype=np.uint8)


@pytest.fixture(scope="session")
def sample():
    """The bundled sample as arrays: (test images, test labels, training images)."""
    pytest.importorskip("numpy")
    return (
        read_idx(SAMPLE / "t10k-images-idx3-ubyte.gz"),
        read_idx(SAMPLE / "t10k-labels-idx1-ubyte.gz"),
        read_idx(SAMPLE / "train-images-idx3-ubyte.gz"),
    )


def without_wall(report: dict) -> dict:
    """A report without its wall times (``wall_seconds`` and the phase ``timings``: the only
    keys that differ between two runs)."""
    r = dict(report)
    r.pop("wall_seconds", None)
    r.pop("timings", None)
    return r


def committed_design_text(root: Path, rel: str) -> str:
    """The text of a committed design with its presets (``Preset("../energy/...")``) made
    absolute, so that a copy elsewhere loads the same files."""
    text = (root / rel).read_text()
    models = root / "models"
    return text.replace('Preset("../', f'Preset("{models}/')
