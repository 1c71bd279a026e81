"""Type stubs of ``nacsim._nacsim``, the native half of the nacsim package (PyO3).

Use the functions of :mod:`nacsim` (``nacsim.run``, ``nacsim.info``, ...): they take arrays and
return dicts; the functions here take what those pass on and return JSON text. ``Design`` and
``Network`` are re-exported as ``nacsim.Design`` and ``nacsim.Network``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

_Path = Union[str, "os.PathLike[str]"]

__version__: str
"""The version of the nacsim crates this module was built from (``0.1.0``)."""

class Design:
    """A hardware design: a ``models/designs/*.ron`` file with its energy table (pJ per action)
    and technology file (area µm², leakage µW per component), loaded once and changed field by
    field with :meth:`set`. Pass it as ``design`` to ``nacsim.run`` / ``nacsim.info``.

    Fields are named by dotted paths from the file's root, as in sweep files:
    ``clock_mhz`` (MHz), ``dram.bytes_per_cycle`` (bytes per clock cycle),
    ``engines.0.engine.rows`` (list entries as ``.0`` or ``[0]``; an enum variant such as
    ``Systolic`` or ``Crossbar`` may be named, ``engines[0].engine.Crossbar.nonideal.d2d_sigma_rel``,
    or skipped, ``engines.0.engine.nonideal.d2d_sigma_rel``). Units are those of the file
    (docs/report-format.md, the design files' comments).
    """

    @staticmethod
    def load(path: _Path) -> Design:
        """Load a design file (RON) with the energy preset and technology file it names.

        Raises ``nacsim.ConfigError`` naming the file, line and column or field, value and
        rule, as the CLI does.
        """
    @staticmethod
    def default() -> Design:
        """The embedded default design: models/designs/systolic-int8.ron (32x32 int8 systolic
        array at 500 MHz, Horowitz 45 nm energies)."""
    def set(self, path: str, value: Union[int, float, str, bool, None]) -> None:
        """Set the field at ``path`` to ``value`` (a number, a name such as an enum variant or
        a device preset, a bool, or None for an optional field), validated by the same rules
        as the file: a refused value raises ``nacsim.ConfigError`` (``file`` the design's file,
        ``field`` the canonical path, ``value``, ``rule``) and leaves the design unchanged.
        Integer fields take whole numbers only."""
    def get(self, path: str) -> Any:
        """The value at ``path`` (number, string, bool, None, list or dict)."""
    def resolve(self, path: str) -> str:
        """The canonical spelling of ``path``: ``engines.0.engine.rows`` →
        ``engines[0].engine.Systolic.rows`` (the form sweep files and error messages use)."""
    def to_dict(self) -> Dict[str, Any]:
        """The whole design as a dict (the file's fields; enum variants as one-key dicts)."""
    def copy(self) -> Design:
        """An independent copy (``set`` on it leaves this design unchanged)."""
    @property
    def path(self) -> str:
        """The file the design was loaded from (relative presets are resolved from it)."""
    @property
    def name(self) -> str:
        """The design's ``name`` field."""

class Network:
    """A neural network, loaded once: a RON network file with its safetensors weights
    (``models/networks/*.ron``), a RON file without weights (shapes only), an ONNX export
    (chains of Gemm, Conv, Relu, pools, Flatten; docs/workloads.md) or a SCALE-Sim topology
    CSV (``models/workloads/*.csv``, shapes only). ``nacsim.run`` needs a trained one;
    ``nacsim.info`` takes any."""

    @staticmethod
    def load(path: _Path) -> Network:
        """Load a network file (``.ron``, ``.onnx`` or ``.csv``), as the CLI's ``--network``
        (``--topology`` for ``.csv``). Raises ``nacsim.ConfigError`` naming the file."""
    @staticmethod
    def default() -> Network:
        """The embedded default network: models/networks/fmnist-mlp.ron with its weights."""
    @property
    def kind(self) -> str:
        """``"trained"`` (weights loaded), ``"topology-only"`` (RON without weights) or
        ``"scale-sim"`` (a topology CSV)."""
    @property
    def label(self) -> str:
        """The name reports give the network (``network`` key): its path as given."""
    @property
    def input_shape(self) -> Optional[Tuple[int, int, int]]:
        """Input image shape ``(channels, height, width)`` in pixels; None for a topology CSV."""
    @property
    def classes(self) -> Optional[int]:
        """Number of output classes; None for a topology CSV."""

_DataArg = Union[
    None,
    _Path,
    Tuple[bytes, str, Tuple[int, int, int, int], bytes, Optional[Tuple[bytes, str, Tuple[int, int, int, int]]]],
]

def run(
    design: Union[Design, _Path, None] = None,
    network: Union[Network, _Path, None] = None,
    data: _DataArg = None,
    limit: Optional[int] = None,
    seed: int = 0,
    trial: int = 0,
    float_reference: bool = True,
) -> str:
    """``nacsim run --json`` as JSON text (``float_reference=False``: ``--no-float-reference``). ``data`` is None, an IDX folder, or
    ``(image bytes, "uint8" | "float32", (N, C, H, W), labels as little-endian int64 bytes,
    calibration or None)``. Releases the GIL while it simulates."""

def info(
    design: Union[Design, _Path, None] = None,
    network: Union[Network, _Path, None] = None,
    seed: int = 0,
) -> str:
    """``nacsim info --json`` as JSON text. Releases the GIL."""

def train(
    config: _Path,
    out: Optional[_Path] = None,
    data: Optional[_Path] = None,
    epochs: Optional[int] = None,
    limit: Optional[int] = None,
    eval_limit: Optional[int] = None,
    force: bool = False,
    progress: bool = False,
) -> str:
    """``nacsim train --json`` as JSON text (writes the trained network). Releases the GIL."""

def sweep(
    spec: _Path,
    out: _Path,
    threads: Optional[int] = None,
    shard: Optional[str] = None,
    force_new: bool = False,
    progress: bool = False,
) -> List[str]:
    """``nacsim sweep SPEC --out OUT``; the text of every point file in ``OUT/points``.
    Releases the GIL."""

def merge(out: _Path, allow_partial: bool = False) -> str:
    """The merged rows of a sweep folder as a JSON list (``nacsim merge``'s CSV rows)."""
