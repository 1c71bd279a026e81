#!/usr/bin/env bash
# The graph workloads of docs/workloads.md on every engine (#16): each committed graph model
# (the residual ResNet-8 and the separable CNN) through `nacsim eval` (float) and `nacsim run` on
# the systolic, crossbar and hybrid BPCA designs, their stage-2 models with a block-circulant
# classifier (`*-bc16-pot3`) on the hybrid design only, plus the crossbar d2d sweep of the
# ResNet-8; rewrites the block between the `workload-runs` markers of docs/workloads.md
# (and prints it).
#   cargo build --release && scripts/workload-runs.sh [OUT_DIR]
# Environment: NACSIM (binary, default ./target/release/nacsim), DATA (Fashion-MNIST IDX folder,
# default /usr/share/datasets/fashion-mnist), LIMIT (test images, default all 10,000),
# NO_SWEEP=1 (skip the d2d sweep), DESIGNS="crossbar-rram ..." (run only these designs and
# replace only their rows of the committed table, keeping every other row and the sweep: for
# rerunning what a change to one engine moves).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/workload-runs}
bin=${NACSIM:-./target/release/nacsim}
data=${DATA:-/usr/share/datasets/fashion-mnist}
limit=${LIMIT:-}
mkdir -p "$out"
lim=()
[ -n "$limit" ] && lim=(--limit "$limit")

models=(fmnist-resnet8 fmnist-sepcnn fmnist-resnet8-bc16-pot3 fmnist-sepcnn-bc16-pot3)
designs=(systolic-int8 crossbar-rram bpca-hybrid-cnn)
# The stage-2 models exist for the hybrid design (their classifier is on the B-MV's grid).
hybrid_only=(fmnist-resnet8-bc16-pot3 fmnist-sepcnn-bc16-pot3)
only=${DESIGNS:-}
if [ -n "$only" ]; then
    read -r -a designs <<<"$only"
    NO_SWEEP=1
fi
block="$out/block.md"
{
    echo "Produced by \`scripts/workload-runs.sh\` ($(date -u +%Y-%m-%d), ${limit:-10000} test images of"
    echo "Fashion-MNIST; accuracy is top-1; cycles, energy and simulated time over all images;"
    echo "utilization = MACs / (MAC slots × cycles), docs/report-format.md)."
    echo
    echo "| model | design | float accuracy | accuracy | cycles | energy (pJ) | simulated time (s) | utilization | depthwise/grouped layers: cycles share | warnings |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for m in "${models[@]}"; do
        net="models/networks/$m.ron"
        if [ ! -f "$net" ]; then
            echo "scripts/workload-runs.sh: $net does not exist (yet): skipped" >&2
            echo "| $m | — | — | — | — | — | — | — | — | not committed yet: skipped |"
            continue
        fi
        "$bin" eval --network "$net" --data "$data" "${lim[@]}" --json >"$out/$m-eval.json"
        for d in "${designs[@]}"; do
            if [[ " ${hybrid_only[*]} " == *" $m "* && "$d" != bpca-hybrid-cnn ]]; then
                continue
            fi
            if ! "$bin" run --network "$net" --design "models/designs/$d.ron" --data "$data" \
                "${lim[@]}" --json --no-float-reference >"$out/$m-$d.json" 2>"$out/$m-$d.err"; then
                msg=$(tr '\n|' '  ' <"$out/$m-$d.err" | cut -c1-160)
                echo "| $m | $d | | refused | | | | | | $msg |"
                continue
            fi
            python3 - "$out/$m-eval.json" "$out/$m-$d.json" "$m" "$d" "$net" <<'PY'
import json, re, sys
ev, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
m, d, net = sys.argv[3:6]
text = open(net).read()
# Layers with groups > 1 in the network file.
grouped = set(re.findall(r'name: "([^"]+)",\s*op: Conv2d\([^)]*groups: (?!1\b)\d+', text))
layers = r.get("layers", [])
share = ""
if grouped:
    gc = sum(l["cycles"] for l in layers if l["name"] in grouped)
    share = f"{gc / max(r['cycles'], 1):.3f}"
warn = "; ".join(w[:80] for w in r.get("warnings", []))
print(f"| {m} | {d} | {ev['accuracy']:.4f} | {r['accuracy']:.4f} | {r['cycles']:,} | "
      f"{r['energy_pj']:.4e} | {r['time_s']:.4g} | "
      f"{r['utilization']:.3f} | {share} | {warn} |")
PY
        done
    done
    echo
    if [ -z "${NO_SWEEP:-}" ] && [ -f models/networks/fmnist-resnet8.ron ]; then
        n=crossbar-d2d-fmnist-resnet8
        rm -rf "${out:?}/$n"
        "$bin" sweep "models/sweeps/$n.ron" --out "$out/$n" --quiet
        "$bin" merge "$out/$n" --csv "$out/$n.csv" >/dev/null
        echo "**Crossbar d2d sweep of the ResNet-8** (\`models/sweeps/$n.ron\`, full test set):"
        echo
        python3 - "$out/$n.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| d2d σ/G | trials | accuracy mean | std | min | max | energy, all images (pJ) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {float(r['value']):g} | {r['trials']} | {float(r['accuracy_mean']):.4f} | {float(r['accuracy_std']):.4f} | "
          f"{float(r['accuracy_min']):.4f} | {float(r['accuracy_max']):.4f} | {float(r['energy_pj_mean']):.4e} |")
PY
    fi
} >"$block"
cat "$block"
python3 - docs/workloads.md "$block" "$only" <<'PY'
import sys
doc, block, only = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(doc).read()
begin, end = "<!-- workload-runs:begin -->\n", "<!-- workload-runs:end -->\n"
i, j = text.index(begin) + len(begin), text.index(end)
if not only:
    open(doc, "w").write(text[:i] + "\n" + block + "\n" + text[j:])
    sys.exit(0)
# DESIGNS: replace the rows `| model | design |` of the new block in the committed block.
old = text[i:j].split("\n")
for row in block.split("\n"):
    cells = row.split("|")
    if len(cells) < 4 or cells[2].strip() not in only.split():
        continue
    key = "|".join(cells[:3]) + "|"
    hits = [n for n, line in enumerate(old) if line.startswith(key)]
    if not hits:
        # A row the committed table does not have yet (a new model): append it to the table.
        last = max(n for n, line in enumerate(old) if line.startswith("| fmnist"))
        rows = [n for n, line in enumerate(old[: last + 1]) if line.startswith("|")]
        old.insert(rows[-1] + 1, row)
        continue
    if len(hits) != 1:
        sys.exit(f"scripts/workload-runs.sh: {doc} has {len(hits)} rows starting {key!r}; rerun without DESIGNS")
    old[hits[0]] = row
open(doc, "w").write(text[:i] + "\n".join(old) + text[j:])
PY
