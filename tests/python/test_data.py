"""Data as numpy arrays: the same numbers as the same images read from IDX files."""

from __future__ import annotations

import nacsim
import pytest

from conftest import without_wall

np = pytest.importorskip("numpy")

# Keys that describe where the images came from, not what the simulation computed.
LABELS = ("data", "calibration", "warnings")


def numbers(report: dict) -> dict:
    r = without_wall(report)
    for k in LABELS:
        r.pop(k)
    return r


def test_uint8_arrays_equal_the_bundled_sample(sample):
    images, labels, train = sample
    bundled = nacsim.run(limit=300)
    arrays = nacsim.run(data=(images[:300], labels[:300], train))
    assert numbers(arrays) == numbers(bundled)
    assert arrays["data"] == "arrays (300 images of 1x28x28)"
    assert arrays["calibration"]["split"] == "train"
    assert arrays["warnings"] == bundled["warnings"]
    # A dict, [N, H, W] images, int32 labels and a limit give the same.
    d = nacsim.run(data={"images": images[:, 0], "labels": labels.astype(np.int32), "calibration": train},
                   limit=300)
    assert numbers(d) == numbers(bundled)


def test_float_arrays_in_unit_range_equal_uint8(sample):
    images, labels, train = sample
    u8 = nacsim.run(data=(images[:200], labels[:200], train))
    f32 = nacsim.run(data=(images[:200].astype(np.float32) / 255, labels[:200], train.astype(np.float64) / 255))
    assert numbers(f32) == numbers(u8)


def test_without_calibration_images_the_report_warns(sample):
    images, labels, _ = sample
    r = nacsim.run(data=(images[:100], labels[:100]))
    assert r["calibration"]["split"] == "test"
    assert r["warnings"], "calibrating on the evaluation images must be reported"


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda im, lab: (im, lab + 10), "labels[0]"),
        (lambda im, lab: (im.astype(np.float32) * 2 / 255, lab), "images[0, 0, "),
        (lambda im, lab: (im[:, :, :20, :20], lab), "images.shape"),
        (lambda im, lab: (im, lab[:-1]), "labels"),
        (lambda im, lab: (im.astype(np.int16), lab), "images.dtype"),
    ],
)
def test_bad_arrays_raise_data_errors(sample, change, field):
    images, labels, _ = sample
    im, lab = change(images[:50].copy(), labels[:50].astype(np.int64))
    with pytest.raises(nacsim.DataError) as e:
        nacsim.run(data=(im, lab))
    assert e.value.field.startswith(field), (e.value.field, str(e.value))
    assert e.value.rule and e.value.value is not None
