#!/usr/bin/env bash
# Rebuilds the results table of docs/engines/circulant.md: every committed block-circulant model
# on its BPCA design over the full Fashion-MNIST test set (bit-exact engine accuracy, the model's
# own float accuracy, compression, cycles, GOPS, TOPS/W with the paper-calibrated and the derived
# energy), next to the dense float MLP, and the fc4096 figures. Needs the release binary and
# dataset-fashion-mnist:
#   cargo build --release && scripts/circulant-results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./target/release/nacsim
data=${DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$bin eval --network models/networks/fmnist-mlp.ron --data "$data" --json > "$tmp/dense.json"
dense=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$tmp/dense.json")
echo "dense float fmnist-mlp (784-256-128-10): $dense"
echo
echo "| model | hidden | training | k | b | design | model's float accuracy | engine (bit-exact, int8 activations) | Δ vs dense float (points) | compression (weights) | cycles/image | GOPS | TOPS/W calibrated | TOPS/W derived 45 nm |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
while read -r name hidden training k b design; do
    $bin run --design "models/designs/$design.ron" --network "models/networks/$name.ron" --data "$data" --json > "$tmp/run.json"
    $bin info --design "models/designs/$design.ron" --network "models/networks/$name.ron" --json > "$tmp/info.json"
    derived=-
    if [ "$name" = fmnist-mlp-bc16-pot3 ]; then
        $bin run --design models/designs/bpca-derived-45nm.ron --network "models/networks/$name.ron" --data "$data" --json > "$tmp/derived.json"
        derived=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["tops_per_watt"])' "$tmp/derived.json")
    fi
    python3 - "$name" "$hidden" "$training" "$k" "$b" "$design" "$dense" "$derived" "$tmp/run.json" "$tmp/info.json" <<'PY'
import json, sys
name, hidden, training, k, b, design, dense, derived, run, info = sys.argv[1:]
r, i = json.load(open(run)), json.load(open(info))
dense = float(dense)
print(f"| {name} | {hidden} | {training} | {k} | {b} | {design} | {r['float_accuracy']:.4f} | {r['accuracy']:.4f} | "
      f"{100 * (r['accuracy'] - dense):+.2f} | {i['compression_ratio']:.2f}x | {r['cycles'] // r['images']} | "
      f"{r['gops']:.1f} | {r['tops_per_watt']:.3f} | {derived} |")
PY
done <<'ROWS'
fmnist-mlp-bc16-pot3 1024-1024 BC+PoT3 16 3 bpca-qin2019
fmnist-mlp256-bc16-pot3 256-128 BC+PoT3 16 3 bpca-qin2019
fmnist-mlp-bc16 256-128 BC-float 16 3 bpca-qin2019
fmnist-mlp-bc16-pot4 256-128 BC+PoT4 16 4 bpca-qin2019-bc16-pot4
fmnist-mlp-bc64-pot4 256-128 BC+PoT4 64 4 bpca-qin2019-bc64-pot4
ROWS
echo
for d in bpca-qin2019 bpca-qin2019-bc256-pot3 bpca-qin2019-bc16-pot4 bpca-derived-45nm; do
    $bin info --design "models/designs/$d.ron" --network models/networks/fc4096.ron --json > "$tmp/fc.json"
    python3 - "$tmp/fc.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
l = [x for x in v["layers"] if x["kind"] == "dense"][0]
print(f"- fc4096 on {v['design']}: peak {v['peak_gops']} GOPS, {l['cycles']} cycles, "
      f"compression {v['compression_ratio']:.2f}x, {v['tops_per_watt']:.3f} TOPS/W")
PY
done
