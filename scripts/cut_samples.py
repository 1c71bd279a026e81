#!/usr/bin/env python3
"""Cut the small dataset samples that ship in the repository (crates/nn/data/).

    crates/nn/data/fmnist-sample/   Fashion-MNIST: the first 2,000 test images (the default run's
                                    evaluation set, embedded in the binary) and the first 1,000
                                    training images (its calibration set, also embedded)
    crates/nn/data/mnist-sample/    MNIST: the first 2,000 test images (for the tests; MNIST's
                                    training images are not needed)

Each folder gets valid IDX files (magic 2051 / 2049, counts rewritten) compressed with gzip
level 9, no file name and mtime 0, so a rerun with the same zlib gives identical bytes, plus a
README.md (source, checksums, how it was cut) and the dataset's licence notice.

Python 3 standard library only. Usage (from anywhere):

    python3 scripts/cut_samples.py fmnist [--src DIR] [--test N] [--train M]
    python3 scripts/cut_samples.py mnist --src DIR [--test N]

DIR holds the original IDX files (`t10k-*` and `train-*`, gzip). Fashion-MNIST defaults to the
Debian package's folder (`apt-get install dataset-fashion-mnist`).
"""

import argparse
import gzip
import hashlib
import io
import os
import struct
import sys
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "crates", "nn", "data")

FMNIST_LICENSE = """\
The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included
in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

MNIST_LICENSE = """\
The MNIST database of handwritten digits
Yann LeCun (Courant Institute, NYU), Corinna Cortes (Google Labs, New York),
Christopher J. C. Burges (Microsoft Research, Redmond).

The MNIST page publishes the data without stating a licence. It is redistributed
widely, and dataset catalogues (e.g. TensorFlow Datasets) list it under the
Creative Commons Attribution-Share Alike 3.0 licence
(https://creativecommons.org/licenses/by-sa/3.0/). This sample is offered on
those terms, with the attribution above: it is a verbatim excerpt (the first
images and labels of the test set, headers rewritten with the new counts).
"""

DATASETS = {
    "fmnist": {
        "title": "Fashion-MNIST",
        "out": os.path.join(DATA, "fmnist-sample"),
        "src": "/usr/share/datasets/fashion-mnist",
        "test": 2000,
        "train": 1000,
        "license": FMNIST_LICENSE,
        "origin": (
            "Fashion-MNIST by Zalando Research, upstream "
            "<https://github.com/zalandoresearch/fashion-mnist>, as shipped by the Debian package "
            "`dataset-fashion-mnist` (version 0.0~git20200523.55506a9-1)"
        ),
        "licence_line": "Fashion-MNIST is distributed under the MIT (Expat) licence",
        "use": (
            "This folder is embedded in the `nacsim-nn` library with `include_bytes!`: the test\n"
            "images are `Dataset::bundled_sample()` (what `nacsim run` evaluates without `--data`),\n"
            "the training images are `Dataset::bundled_calibration()` (what sets its int8 scales, so\n"
            "no evaluation image is used for calibration). `cargo run` works on a fresh clone with no\n"
            "dataset installed; use the full dataset (`--data DIR`) for real training and accuracy."
        ),
    },
    "mnist": {
        "title": "MNIST",
        "out": os.path.join(DATA, "mnist-sample"),
        "src": None,
        "test": 2000,
        "train": 0,
        "license": MNIST_LICENSE,
        "origin": (
            "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, \"The MNIST database of handwritten "
            "digits\", from a byte-for-byte copy of the original IDX files (test images mean pixel "
            "33.791, first labels 7, 2, 1, 0, 4)"
        ),
        "licence_line": "MNIST is published without a stated licence and redistributed under CC BY-SA 3.0",
        "use": (
            "The tests read this folder (`crates/nn/data/mnist-sample`) to check the IDX reader on a\n"
            "second real dataset and to train and evaluate a small network on digits, so the test\n"
            "suite needs nothing outside the repository. Pass the full MNIST folder with `--data DIR`\n"
            "for real numbers."
        ),
    },
}


def die(msg):
    sys.stderr.write("cut_samples: " + msg + "\n")
    sys.exit(1)


def read_idx(path, magic, ndims):
    """Return (dims, payload) of a gzip IDX file, checking magic and size."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        die(f"{path} not found; pass --src DIR naming the folder of the original IDX files")
    head = 4 + 4 * ndims
    if len(data) < head:
        die(f"{path}: only {len(data)} bytes, shorter than an IDX header")
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        die(f"{path}: magic {got}, expected {magic}")
    dims = struct.unpack(">" + "I" * ndims, data[4:head])
    size = 1
    for d in dims:
        size *= d
    if len(data) - head != size:
        die(f"{path}: header says {dims} = {size} bytes, file has {len(data) - head}")
    return dims, data[head:]


def write_gz(path, raw):
    buf = io.BytesIO()
    # filename='' keeps the name out of the gzip header; mtime=0 makes the output reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(raw)
    out = buf.getvalue()
    with open(path, "wb") as f:
        f.write(out)
    return out


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def cut_split(src, out, prefix, k):
    """Cut the first k images and labels of split `prefix` (t10k / train); returns table rows."""
    images, labels = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    (n, rows, cols), pixels = read_idx(os.path.join(src, images), 2051, 3)
    (nl,), labs = read_idx(os.path.join(src, labels), 2049, 1)
    if n != nl:
        die(f"{prefix}: {n} images but {nl} labels")
    if not 0 < k <= n:
        die(f"{prefix}: count must be in 1..={n}, got {k}")
    img_raw = struct.pack(">IIII", 2051, k, rows, cols) + pixels[: k * rows * cols]
    lab_raw = struct.pack(">II", 2049, k) + labs[:k]
    img_gz = write_gz(os.path.join(out, images), img_raw)
    lab_gz = write_gz(os.path.join(out, labels), lab_raw)
    counts = [0] * 10
    for lab in labs[:k]:
        counts[lab] += 1
    src_sums = [(name, sha256(open(os.path.join(src, name), "rb").read())) for name in (images, labels)]
    contents = [
        (images, len(img_gz), sha256(img_gz), sha256(img_raw)),
        (labels, len(lab_gz), sha256(lab_gz), sha256(lab_raw)),
    ]
    split = "test" if prefix == "t10k" else "training"
    per_class = ", ".join(f"{c}: {counts[c]}" for c in range(10))
    summary = f"- {split} (`{prefix}`): the first {k} images of {rows}×{cols} grey pixels and their labels; per class {per_class}."
    return src_sums, contents, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=sorted(DATASETS), help="which sample to cut")
    ap.add_argument("--src", help="folder of the original IDX files (.gz)")
    ap.add_argument("--out", help="output folder (default crates/nn/data/<dataset>-sample)")
    ap.add_argument("--test", type=int, help="leading test images to keep")
    ap.add_argument("--train", type=int, help="leading training images to keep (0: none)")
    args = ap.parse_args()
    ds = DATASETS[args.dataset]
    src = args.src or ds["src"]
    if src is None:
        die(f"{args.dataset}: pass --src DIR naming the folder of the original IDX files")
    out = args.out or ds["out"]
    k_test = ds["test"] if args.test is None else args.test
    k_train = ds["train"] if args.train is None else args.train
    os.makedirs(out, exist_ok=True)

    src_sums, contents, summaries = [], [], []
    for prefix, k in (("t10k", k_test), ("train", k_train)):
        if k == 0:
            continue
        s, c, line = cut_split(src, out, prefix, k)
        src_sums += s
        contents += c
        summaries.append(line)
    with open(os.path.join(out, "LICENSE"), "w") as f:
        f.write(ds["license"])

    src_table = "\n".join(f"| `{n}` | `{h}` |" for n, h in src_sums)
    content_table = "\n".join(f"| `{n}` | {b:,} | `{h}` | `{r}` |" for n, b, h, r in contents)
    flags = f"--test {k_test} --train {k_train}"
    src_flag = f" --src {ds['src']}" if ds["src"] else " --src DIR"
    readme = f"""# {ds['title']} sample

{ds['use']}

## Source

{ds['origin']}:

| source file | sha256 |
| --- | --- |
{src_table}

## How it was cut

```sh
python3 scripts/cut_samples.py {args.dataset}{src_flag} {flags}
```

The script keeps the first images and labels of each split in their original order, rewrites
the IDX headers with the new counts (images: magic 2051; labels: magic 2049) and compresses each
file with gzip level 9, no file name and mtime 0 (zlib {zlib.ZLIB_RUNTIME_VERSION}). Pixel and
label bytes are unchanged.

## Contents

{chr(10).join(summaries)}

| file | bytes | sha256 (file) | sha256 (decompressed) |
| --- | --- | --- | --- |
{content_table}

A different zlib build may compress to other `.gz` bytes; the decompressed checksums are stable.

## Licence

{ds['licence_line']}; the notice, also in `LICENSE`:

```text
{ds['license']}```
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(readme)
    for n, b, h, _ in contents:
        print(f"  {n}  {b} bytes  sha256 {h}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
