#!/usr/bin/env bash
# Reruns the committed training-under-variation sweeps (models/sweeps/insitu-*.ron: in-situ
# training of the Fashion-MNIST MLP on Ag:a-Si, fixed-voltage vs approximately linear update),
# writes their plots to docs/engines/plots/ and prints the tables of docs/engines/crossbar.md.
#   cargo build --release && scripts/insitu-sweeps.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
mkdir -p docs/engines/plots
for knob in d2d c2c vprog device; do
    for scheme in fixed linear; do
        n=insitu-$knob-$scheme-fmnist-mlp
        path=$(sed -n 's/.*parameter: (path: "\([^"]*\)".*/\1/p' "models/sweeps/$n.ron")
        ./target/release/nacsim sweep "models/sweeps/$n.ron" --out "$out/$n" --quiet
        ./target/release/nacsim merge "$out/$n" --csv "$out/$n.csv" \
            --svg "docs/engines/plots/$n.svg" --title "$n" --xlabel "$path"
    done
    echo "### $knob ($path)"
    echo
    python3 - "$out/insitu-$knob-fixed-fmnist-mlp.csv" "$out/insitu-$knob-linear-fmnist-mlp.csv" <<'PY'
import csv, sys
fixed = list(csv.DictReader(open(sys.argv[1])))
linear = list(csv.DictReader(open(sys.argv[2])))
print("| value | trials | fixed voltage: accuracy mean ± std (min–max) | approx. linear: accuracy mean ± std (min–max) | write energy fixed / linear (pJ) |")
print("|---|---|---|---|---|")
cell = lambda r: f"{float(r['accuracy_mean']):.4f} ± {float(r['accuracy_std']):.4f} ({float(r['accuracy_min']):.4f}–{float(r['accuracy_max']):.4f})"
for f, l in zip(fixed, linear):
    print(f"| {f['value']} | {f['trials']} | {cell(f)} | {cell(l)} | {float(f['energy_pj_mean']):.3e} / {float(l['energy_pj_mean']):.3e} |")
PY
    echo
    echo "Plots: [fixed voltage](plots/insitu-$knob-fixed-fmnist-mlp.svg), [approximately linear](plots/insitu-$knob-linear-fmnist-mlp.svg)."
    echo
done
