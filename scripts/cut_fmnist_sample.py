#!/usr/bin/env python3
"""Cut the bundled Fashion-MNIST sample that nacsim-nn embeds with `include_bytes!`.

Takes the first COUNT images and labels of the Fashion-MNIST *test* set (IDX, gzip) and writes

    crates/nn/data/fmnist-sample/t10k-images-idx3-ubyte.gz
    crates/nn/data/fmnist-sample/t10k-labels-idx1-ubyte.gz
    crates/nn/data/fmnist-sample/README.md
    crates/nn/data/fmnist-sample/LICENSE

The outputs are valid IDX files (magic 2051 / 2049, counts rewritten to COUNT) compressed with
gzip level 9, no file name and mtime 0, so a rerun with the same zlib gives identical bytes.

Python 3 standard library only. Usage (from anywhere):

    python3 scripts/cut_fmnist_sample.py [--src DIR] [--out DIR] [--count N]
"""

import argparse
import gzip
import hashlib
import io
import os
import struct
import sys
import zlib

DEFAULT_SRC = "/usr/share/datasets/fashion-mnist"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "crates", "nn", "data", "fmnist-sample")
IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"

LICENSE = """\
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


def die(msg):
    sys.stderr.write("cut_fmnist_sample: " + msg + "\n")
    sys.exit(1)


def read_idx(path, magic, ndims):
    """Return (dims, payload) of an IDX file, checking magic and size."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        die(f"{path} not found; install it with `apt-get install dataset-fashion-mnist` or pass --src DIR")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=DEFAULT_SRC, help=f"Fashion-MNIST IDX folder (default {DEFAULT_SRC})")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default crates/nn/data/fmnist-sample)")
    ap.add_argument("--count", type=int, default=2000, help="number of leading test images to keep (default 2000)")
    args = ap.parse_args()

    (n, rows, cols), pixels = read_idx(os.path.join(args.src, IMAGES), 2051, 3)
    (nl,), labels = read_idx(os.path.join(args.src, LABELS), 2049, 1)
    if n != nl:
        die(f"{n} images but {nl} labels")
    k = args.count
    if not 0 < k <= n:
        die(f"--count must be in 1..={n}, got {k}")

    img_raw = struct.pack(">IIII", 2051, k, rows, cols) + pixels[: k * rows * cols]
    lab_raw = struct.pack(">II", 2049, k) + labels[:k]

    os.makedirs(args.out, exist_ok=True)
    img_gz = write_gz(os.path.join(args.out, IMAGES), img_raw)
    lab_gz = write_gz(os.path.join(args.out, LABELS), lab_raw)
    with open(os.path.join(args.out, "LICENSE"), "w") as f:
        f.write(LICENSE)

    counts = [0] * 10
    for lab in labels[:k]:
        counts[lab] += 1
    per_class = ", ".join(f"{c}: {counts[c]}" for c in range(10))
    src_files = {name: sha256(open(os.path.join(args.src, name), "rb").read()) for name in (IMAGES, LABELS)}

    readme = f"""# Fashion-MNIST sample (first {k} test images)

This folder is embedded in the `nacsim-nn` library with `include_bytes!` and decoded by
`Dataset::bundled_sample()`, so `cargo run` works on a fresh clone with no dataset installed.
Use the full dataset (`--data DIR`) for real training and accuracy numbers.

## Source

Fashion-MNIST by Zalando Research, upstream <https://github.com/zalandoresearch/fashion-mnist>,
as shipped by the Debian package `dataset-fashion-mnist` (version 0.0~git20200523.55506a9-1),
installed at `{DEFAULT_SRC}`:

| source file | sha256 |
| --- | --- |
| `{IMAGES}` | `{src_files[IMAGES]}` |
| `{LABELS}` | `{src_files[LABELS]}` |

## How it was cut

```sh
python3 scripts/cut_fmnist_sample.py --src {args.src} --count {k}
```

The script keeps the first {k} images and the first {k} labels of the **test** (`t10k`) split in
their original order, rewrites the IDX headers with the new count (images: magic 2051,
{k} × {rows} × {cols}; labels: magic 2049, {k}) and compresses each file with gzip level 9, no
file name and mtime 0 (zlib {zlib.ZLIB_RUNTIME_VERSION}). The pixel and label bytes are
unchanged: the `nacsim-nn` tests check that they equal the first {k} items of the full test set
byte for byte whenever the Debian package is installed.

## Contents

| file | bytes | sha256 (file) | sha256 (decompressed) |
| --- | --- | --- | --- |
| `{IMAGES}` | {len(img_gz):,} | `{sha256(img_gz)}` | `{sha256(img_raw)}` |
| `{LABELS}` | {len(lab_gz):,} | `{sha256(lab_gz)}` | `{sha256(lab_raw)}` |

{k} images of {rows}×{cols} grey pixels, {k} labels in 0..=9. Images per class: {per_class}.
A different zlib build may compress to other `.gz` bytes; the decompressed checksums are stable.

## Licence

Fashion-MNIST is distributed under the MIT (Expat) licence; the full text, also in `LICENSE`:

```text
{LICENSE}```
"""
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)

    print(f"wrote {k} images {rows}x{cols} and labels to {args.out}")
    print(f"  {IMAGES}  {len(img_gz)} bytes  sha256 {sha256(img_gz)}")
    print(f"  {LABELS}  {len(lab_gz)} bytes  sha256 {sha256(lab_gz)}")


if __name__ == "__main__":
    main()
