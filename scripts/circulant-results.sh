#!/usr/bin/env bash
# Rebuilds the results table of docs/engines/circulant.md: every committed block-circulant model
# on its BPCA design over the full Fashion-MNIST test set (bit-exact engine accuracy, the model's
# own float accuracy, compression, cycles, GOPS, TOPS/W with the paper-calibrated and the derived
# energy), next to the dense float MLP. Needs the release binary and dataset-fashion-mnist:
#   cargo build --release && scripts/circulant-results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./target/release/nacsim
data=${DATA:-/usr/share/datasets/fashion-mnist}
dense=$($bin eval --network models/networks/fmnist-mlp.ron --data "$data" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
echo "dense float fmnist-mlp: $dense"
echo
echo "| model | k | b | design | float (PoT weights) | engine, int8 activations | Δ vs dense float (points) | compression (weights) | cycles/image | GOPS | TOPS/W calibrated | TOPS/W derived 45 nm |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "fmnist-mlp-bc16-pot3 16 3 bpca-qin2019" \
           "fmnist-mlp-bc16-pot4 16 4 bpca-qin2019-bc16-pot4" \
           "fmnist-mlp-bc64-pot4 64 4 bpca-qin2019-bc64-pot4"; do
    set -- $row
    run=$($bin run --design models/designs/$4.ron --network models/networks/$1.ron --data "$data" --json)
    info=$($bin info --design models/designs/$4.ron --network models/networks/$1.ron --json)
    derived=""
    if [ "$2 $3" = "16 3" ]; then
        derived=$($bin run --design models/designs/bpca-derived-45nm.ron --network models/networks/$1.ron --data "$data" --json | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["tops_per_watt"])')
    fi
    python3 - "$1" "$2" "$3" "$4" "$dense" "$derived" "$run" "$info" <<'PY'
import json, sys
name, k, b, design, dense, derived, run, info = sys.argv[1:]
r, i = json.loads(run), json.loads(info)
dense = float(dense)
print(f"| {name} | {k} | {b} | {design} | {r['float_accuracy']:.4f} | {r['accuracy']:.4f} | "
      f"{100*(r['accuracy']-dense):+.2f} | {i['compression_ratio']:.2f}x | {r['cycles']//r['images']} | "
      f"{r['gops']:.1f} | {r['tops_per_watt']:.3f} | {derived or '-'} |")
PY
done
echo
for d in bpca-qin2019 bpca-qin2019-bc256-pot3 bpca-qin2019-bc16-pot4; do
    $bin info --design models/designs/$d.ron --network models/networks/fc4096.ron --json | python3 -c '
import json,sys
v=json.load(sys.stdin); l=[x for x in v["layers"] if x["kind"]=="dense"][0]
print(f"fc4096 on {v[\"design\"]}: peak {v[\"peak_gops\"]} GOPS, {l[\"cycles\"]} cycles, compression {v[\"compression_ratio\"]:.2f}x, {v[\"tops_per_watt\"]:.3f} TOPS/W")'
done
