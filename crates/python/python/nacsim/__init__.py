"""nacsim from Python: simulate multiplier-light neural accelerators (memristor crossbars,
block-circulant power-of-two FC engines, sine-approximation datapaths, int8 systolic arrays).

The functions run the same Rust code as the ``nacsim`` command line, with the GIL released, and
return its reports as dicts with exactly the keys of ``nacsim run --json`` / ``nacsim info
--json`` (units in the key names and in docs/report-format.md: ``_pj`` picojoules, ``_s``
seconds, ``_hz`` hertz, ``_bytes`` bytes; ``accuracy`` a fraction; ``gops`` 1e9 operations per
second of simulated time; ``tops_per_watt`` 1e12 operations per joule)::

    import nacsim
    r = nacsim.run(limit=500)                       # the default design and network
    d = nacsim.Design.load("models/designs/crossbar-rram.ron")
    d.set("engines.0.engine.nonideal.d2d_sigma_rel", 0.1)
    r = nacsim.run(d, "models/networks/fmnist-cnn.ron", seed=1, trial=3)

Errors raise :class:`ConfigError` (a ``ValueError``) or :class:`DataError` (both
:class:`NacsimError`), whose text is the CLI's message and whose attributes name the file, the
field, the value and the rule.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._errors import ConfigError, DataError, NacsimError
from ._nacsim import Design, Network, __version__
from . import _nacsim

__all__ = [
    "run",
    "info",
    "sweep",
    "merge",
    "train",
    "Design",
    "Network",
    "NacsimError",
    "ConfigError",
    "DataError",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]


def _check_count(name: str, value: Optional[int]) -> None:
    if value is not None and value < 1:
        raise ValueError(
            f"{name}={value}: must be at least 1 (an accuracy over no image means nothing); "
            f"leave {name} out to use every image"
        )


def _image_array(name: str, images: Any) -> Tuple[bytes, str, Tuple[int, int, int, int]]:
    import numpy as np

    a = np.asarray(images)
    if a.ndim == 3:  # [N, H, W]: one channel
        a = a[:, None, :, :]
    if a.ndim != 4:
        raise DataError(
            f"{name} has shape {a.shape}: give images as [N, C, H, W] (or [N, H, W] for one channel)",
            field=f"{name}.shape",
            value=str(a.shape),
            rule="must be [N, C, H, W] or [N, H, W]",
        )
    if a.dtype == np.uint8:
        dtype = "uint8"
        a = np.ascontiguousarray(a)
    elif np.issubdtype(a.dtype, np.floating):
        dtype = "float32"
        a = np.ascontiguousarray(a, dtype="<f4")
    else:
        raise DataError(
            f"{name} has dtype {a.dtype}: give uint8 pixels (0..255) or float pixels in [0, 1]",
            field=f"{name}.dtype",
            value=str(a.dtype),
            rule="must be uint8 or a float type",
        )
    shape = tuple(int(s) for s in a.shape)
    return a.tobytes(), dtype, shape  # type: ignore[return-value]


def _data_arg(data: Any) -> Any:
    """``data`` as the native module takes it: None, a folder, or a tuple of array bytes."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return data
    if isinstance(data, dict):
        unknown = set(data) - {"images", "labels", "calibration"}
        if unknown or "images" not in data or "labels" not in data:
            raise DataError(
                f"data dict has keys {sorted(data)}: give 'images' and 'labels' (and optionally 'calibration')",
                field="data",
                value=str(sorted(data)),
                rule="keys images, labels[, calibration]",
            )
        images, labels, calibration = data["images"], data["labels"], data.get("calibration")
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        images, labels = data[0], data[1]
        calibration = data[2] if len(data) == 3 else None
    else:
        raise DataError(
            f"data of type {type(data).__name__}: give None (the bundled sample), a folder of IDX "
            "files, (images, labels[, calibration]) arrays or a dict with those keys",
            field="data",
            value=type(data).__name__,
            rule="None, a folder, (images, labels[, calibration]) or a dict",
        )
    import numpy as np

    img = _image_array("images", images)
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise DataError(
            f"labels have shape {lab.shape} and dtype {lab.dtype}: give one integer label per image",
            field="labels",
            value=f"{lab.dtype}{list(lab.shape)}",
            rule="must be a 1-D integer array",
        )
    lab_bytes = np.ascontiguousarray(lab, dtype="<i8").tobytes()
    cal = None if calibration is None else _image_array("calibration", calibration)
    return (img[0], img[1], img[2], lab_bytes, cal)


def run(
    design: Union[Design, PathLike, None] = None,
    network: Union[Network, PathLike, None] = None,
    data: Any = None,
    limit: Optional[int] = None,
    seed: int = 0,
    trial: int = 0,
    float_reference: bool = True,
) -> Dict[str, Any]:
    """Simulate ``design`` running ``network`` over ``data``; the run report (``nacsim run --json``).

    ``design``: a :class:`Design`, a design file, or None for the embedded default (a 32x32
    int8 systolic array). ``network``: a trained :class:`Network`, a network file (RON with
    weights, or ONNX), or None for the embedded default (the Fashion-MNIST MLP).
    ``data``: None (the bundled 2,000 Fashion-MNIST test images, calibrated on 1,000 training
    images), a folder of IDX files (``t10k-*``; ``train-*`` calibrate if present), or arrays
    ``(images, labels)`` / ``(images, labels, calibration_images)`` / a dict with those keys:
    images ``uint8[N, C, H, W]`` (0..255) or float ``[N, C, H, W]`` in [0, 1] (pixel / 255,
    rounded to 8 bits as the simulator's inputs are), ``[N, H, W]`` for one channel, labels
    ``int[N]``. Without calibration images the evaluation images set the int8 scales and the
    report warns. ``limit``: evaluate the first ``limit`` images. ``seed``, ``trial``: the
    random streams of stochastic engines (device variation, read noise); the same seed and
    trial give the same numbers, bit for bit, on any number of threads. ``float_reference``:
    False skips the float network's accuracy pass over the same images (``nacsim run
    --no-float-reference``): ``float_accuracy`` is then None and ``timings.float_reference_s``
    is 0, which saves about one float inference per run in Monte Carlo loops.

    Keys and units: docs/report-format.md (``energy_pj`` pJ, ``time_s`` s of simulated time,
    ``cycles``, ``accuracy`` fraction, ``tops_per_watt``, ``wall_seconds`` s of real time, ...).
    """
    _check_count("limit", limit)
    if not isinstance(float_reference, bool):
        raise TypeError(f"float_reference must be True or False, not {float_reference!r}")
    text = _nacsim.run(design, network, _data_arg(data), limit, seed, trial, float_reference)
    return json.loads(text)


def info(
    design: Union[Design, PathLike, None] = None,
    network: Union[Network, PathLike, None] = None,
    seed: int = 0,
) -> Dict[str, Any]:
    """What is known without data (``nacsim info --json``): peak GOPS, cycles, storage bits,
    energy in pJ and area in mm² for one pass of ``batch`` images.

    ``network`` may also be a topology-only RON file or a SCALE-Sim topology CSV
    (``models/workloads/*.csv``); ``seed`` draws the weights of engines whose costs follow
    weight values (the crossbar) when the network has none.
    """
    return json.loads(_nacsim.info(design, network, seed))


def _frame(rows: List[Dict[str, Any]], as_frame: Optional[bool]) -> Any:
    if as_frame is False:
        return rows
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise
        return rows
    return pd.DataFrame(rows)


def sweep(
    spec: PathLike,
    out: Optional[PathLike] = None,
    threads: Optional[int] = None,
    shard: Optional[Union[str, Tuple[int, int]]] = None,
    force_new: bool = False,
    progress: bool = False,
    as_frame: Optional[bool] = None,
) -> Any:
    """Run a sweep file (``models/sweeps/*.ron``) as ``nacsim sweep SPEC --out OUT`` does.

    Returns every point of the folder ``out`` in grid order, one dict per (value, trial):
    ``value_index``, ``value``, ``trial``, ``accuracy`` (fraction), ``energy_pj`` (pJ),
    ``cycles``, ``latency_s`` (s), ``gops``, ``tops_per_watt`` (training sweeps add
    ``float_accuracy`` and ``seconds``) — a pandas ``DataFrame`` when pandas is installed
    (``as_frame=False`` for the list, ``True`` to require pandas).

    ``out``: the sweep folder; points already there are skipped (resume), a folder holding
    another sweep is refused unless ``force_new``; None runs into a temporary folder removed
    afterwards. ``shard``: ``"i/n"`` or ``(i, n)`` runs only shard i of n (then
    :func:`merge`). ``threads``: worker threads (results do not depend on it).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads}: give at least 1, or leave it out to use all cores")
    if isinstance(shard, tuple):
        shard = f"{shard[0]}/{shard[1]}"
    if out is None:
        with tempfile.TemporaryDirectory(prefix="nacsim-sweep-") as tmp:
            texts = _nacsim.sweep(spec, tmp, threads, shard, force_new, progress)
    else:
        texts = _nacsim.sweep(spec, out, threads, shard, force_new, progress)
    rows = [json.loads(t) for t in texts]
    rows.sort(key=lambda r: (r.get("value_index", 0), r.get("trial", 0)))
    for r in rows:
        r.pop("digest", None)
    return _frame(rows, as_frame)


def merge(out: PathLike, allow_partial: bool = False, as_frame: Optional[bool] = None) -> Any:
    """The rows ``nacsim merge OUT --csv`` writes: one per swept value, with ``value``,
    ``trials``, ``trials_expected``, ``accuracy_mean``/``_std``/``_min``/``_max`` (fractions),
    ``energy_pj_mean`` (pJ), ``cycles_mean``, ``tops_per_watt_mean`` and ``complete``.

    Refuses a sweep with missing points unless ``allow_partial``.
    """
    rows = json.loads(_nacsim.merge(out, allow_partial))
    return _frame(rows, as_frame)


def train(
    config: PathLike,
    out: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    epochs: Optional[int] = None,
    limit: Optional[int] = None,
    eval_limit: Optional[int] = None,
    force: bool = False,
    progress: bool = False,
) -> Dict[str, Any]:
    """Train a network from a training config (``models/training/*.ron``, in-situ training on
    crossbar devices included) as ``nacsim train`` does; its ``--json`` report.

    Writes the trained network (RON + safetensors) and ``.train.json`` into ``out`` (default:
    the config's ``output`` path, which ``force`` must allow to be overwritten). ``data``: the
    folder of IDX files (default: the config's). ``epochs`` overrides the config's; ``limit``
    trains on the first images only and ``eval_limit`` evaluates on the first test images.
    Keys: ``name``, ``config``, ``seed``, ``accuracy`` (fraction), ``images``, ``epochs``,
    ``seconds`` (s), ``threads``, ``output``, ``history`` (per epoch: ``epoch``, ``lr``,
    ``loss``, ``train_accuracy``, ``eval_accuracy``, ``seconds``), and ``insitu`` (write
    pulses, energies in pJ, latency in s) for in-situ training.
    """
    for name, v in (("epochs", epochs), ("limit", limit), ("eval_limit", eval_limit)):
        _check_count(name, v)
    text = _nacsim.train(config, out, data, epochs, limit, eval_limit, force, progress)
    return json.loads(text)
