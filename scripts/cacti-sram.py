#!/usr/bin/env python3
"""Regenerate the `sram` tables of models/tech/*.ron with CACTI 7.

The SRAM tables give area and leakage of one SRAM macro (a scratchpad: CACTI's `"ram"` cache
type, one bank) by capacity, word width and read/write ports. This script runs CACTI over that
grid and prints the RON `sram: (...)` block for each node, ready to paste into the technology
file; nacsim interpolates between the points (power laws in capacity, log-linear in width).

CACTI is not bundled. The CACTI 7 source with the configuration template of Accelergy's CACTI
plug-in ships in the `hwcomponents-cacti` wheel on PyPI (pure Python wrapper, CACTI C++ inside):

    pip download --no-deps --python-version 3.12 --only-binary=:all: hwcomponents-cacti==1.0.40
    unzip hwcomponents_cacti-1.0.40-py3-none-any.whl -d cacti-whl
    cd cacti-whl/hwcomponents_cacti/cacti && make        # builds ./cacti (g++, about 15 s)
    python3 scripts/cacti-sram.py --cacti cacti-whl/hwcomponents_cacti/cacti

Settings (each is what the committed tables used; see `--help`):
  * cell and periphery flavour: ITRS low operating power (`itrs-lop`) for data and tag arrays
    (the plug-in's template uses `itrs-lstp`; LSTP's standby leakage is ~1000x lower and HP's
    ~20x higher than LOP's at 8 KiB / 45 nm; an accelerator's buffers run, they do not stand by);
  * everything else from the plug-in's template `default_cfg.cfg` (300 K, UCA, one bank, "fast"
    access mode, its design objective and deviation weights);
  * nodes 45 nm and 32 nm are CACTI's own technology files; 40 nm is interpolated linearly
    between them (as the plug-in does between its supported nodes) and tagged inferred.

Only the Python standard library is needed.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile

CAPACITIES = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
WIDTHS = [8, 16, 32, 64]
PORTS = [1, 2]


def run_cacti(cacti_dir, template, flavour, cap, width, ports, node_um):
    """One CACTI run: (area_um2, leakage_uw, read_pj, write_pj) of one macro, or None."""
    cfg = template.rstrip("\n") + "\n"
    for key in (
        "Data array cell type",
        "Data array peripheral type",
        "Tag array cell type",
        "Tag array peripheral type",
    ):
        lines = cfg.split("\n")
        cfg = "\n".join(
            f'-{key} - "{flavour}"' if l.startswith(f"-{key} ") else l for l in lines
        )
    cfg += (
        f"-size (bytes) {cap}\n"
        f"-read-write port  {ports}\n"
        f"-block size (bytes) {width}\n"
        f"-technology (u) {node_um}\n"
        f"-output/input bus width  {width * 8}\n"
        "-UCA bank 1\n"
        '-cache type "ram"\n'
        "-tag size (b) 0\n"
        "-associativity 1\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sram.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        r = subprocess.run(
            ["./cacti", "-infile", path],
            cwd=cacti_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = path + ".out"
        if r.returncode != 0 or not os.path.exists(out):
            return None
        with open(out) as f:
            rows = list(csv.DictReader(f))
    row = {k.strip(): v.strip() for k, v in rows[-1].items() if k}
    return (
        float(row["Area (mm2)"]) * 1e6,
        float(row["Standby leakage per bank(mW)"]) * 1e3,
        float(row["Dynamic read energy (nJ)"]) * 1e3,
        float(row["Dynamic write energy (nJ)"]) * 1e3,
    )


def sweep(cacti_dir, template, flavour, node_um):
    pts = {}
    for ports in PORTS:
        for width in WIDTHS:
            for cap in CAPACITIES:
                r = run_cacti(cacti_dir, template, flavour, cap, width, ports, node_um)
                if r is None:
                    print(
                        f"# CACTI gave no result for {cap} B x {width} B x {ports} ports at {node_um} um",
                        file=sys.stderr,
                    )
                    continue
                pts[(ports, width, cap)] = r
    return pts


def ron_block(pts, source, inferred):
    lines = ["    sram: (", "        points: ["]
    for (ports, width, cap), (area, leak, rd, wr) in sorted(pts.items()):
        lines.append(
            f"            (capacity_bytes: {cap}, width_bytes: {width}, ports: {ports}, "
            f"area_um2: {area:.5g}, leakage_uw: {leak:.5g}),"
            f" // read {rd:.4g} pJ, write {wr:.4g} pJ per access"
        )
    lines.append("        ],")
    lines.append(f'        source: "{source}",')
    lines.append(f"        inferred: {'true' if inferred else 'false'}),")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cacti", required=True, help="folder holding the built ./cacti and its tech_params/")
    ap.add_argument("--flavour", default="itrs-lop", help="CACTI cell/periphery type (default itrs-lop)")
    ap.add_argument("--template", help="CACTI template (default: default_cfg.cfg next to the cacti folder)")
    a = ap.parse_args()
    template_path = a.template or os.path.join(os.path.dirname(os.path.abspath(a.cacti)), "default_cfg.cfg")
    if not os.path.exists(os.path.join(a.cacti, "cacti")):
        sys.exit(f"error: no ./cacti in {a.cacti}: build it with `make` there (see this script's docstring)")
    with open(template_path) as f:
        template = f.read()
    base = (
        f"CACTI 7 (hwcomponents-cacti 1.0.40 sources and default_cfg.cfg template), {a.flavour} cells and periphery, "
        "cache type ram, one bank, 300 K; one macro per point; regenerate with scripts/cacti-sram.py"
    )
    n45 = sweep(a.cacti, template, a.flavour, 0.045)
    n32 = sweep(a.cacti, template, a.flavour, 0.032)
    print("// 45 nm")
    print(ron_block(n45, base + ", 45 nm tech_params/45nm.dat", False))
    print("// 32 nm")
    print(ron_block(n32, base + ", 32 nm tech_params/32nm.dat", False))
    n40 = {}
    for k in n45.keys() & n32.keys():
        n40[k] = tuple(b + (a_ - b) * (40 - 32) / (45 - 32) for a_, b in zip(n45[k], n32[k]))
    print("// 40 nm")
    print(ron_block(n40, base + ", 40 nm interpolated linearly between the 32 nm and 45 nm runs", True))


if __name__ == "__main__":
    main()
