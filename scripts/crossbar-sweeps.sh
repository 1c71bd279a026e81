#!/usr/bin/env bash
# Reruns every committed crossbar sweep and prints the tables of docs/engines/crossbar.md.
#   cargo build --release && scripts/crossbar-sweeps.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
for f in models/sweeps/crossbar-*.ron; do
    n=$(basename "$f" .ron)
    ./target/release/nacsim sweep "$f" --out "$out/$n" --quiet
    ./target/release/nacsim merge "$out/$n" --csv "$out/$n.csv" --svg "$out/$n.svg"
    echo "### $n"
    echo
    python3 - "$out/$n.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| value | trials | accuracy mean | std | min | max | energy, all images (pJ) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {float(r['value']):g} | {r['trials']} | {float(r['accuracy_mean']):.4f} | {float(r['accuracy_std']):.4f} | "
          f"{float(r['accuracy_min']):.4f} | {float(r['accuracy_max']):.4f} | {float(r['energy_pj_mean']):.4e} |")
PY
    echo
done
