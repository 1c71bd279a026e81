#!/usr/bin/env bash
# Reruns the committed design-space explorations (models/sweeps/dse-*.ron) and the DRAM-bandwidth
# sweep of the README, writes their tables, Pareto fronts and plots to docs/dse/ and prints the
# Pareto tables of docs/dse.md.
#   cargo build --release && scripts/dse-sweeps.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results}
bin=${NACSIM:-./target/release/nacsim}
d=docs/dse
mkdir -p "$d" "$out"

table() { # CSV on stdin → markdown table
    python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
short = lambda h: ".".join(h.split(".")[-2:])
print("| " + " | ".join(short(h) for h in rows[0]) + " |")
print("|" + "---|" * len(rows[0]))
for r in rows[1:]:
    print("| " + " | ".join(r) + " |")
'
}

run() { # name
    "$bin" sweep "models/sweeps/$1.ron" --out "$out/$1" --quiet
    "$bin" merge "$out/$1" --csv "$d/$1.csv"
}

n=dse-systolic-resnet50
run $n
"$bin" pareto "$out/$n" --minimize time_s,energy_pj,area_mm2 --csv "$out/$n-marked.csv" >"$d/$n-pareto.csv"
"$bin" pareto "$out/$n" --minimize time_s,energy_pj --svg "$d/$n-pareto.svg" >/dev/null
"$bin" merge "$out/$n" --heatmap "$d/$n-edp.svg" --metric edp_j_s --x cols --y rows >/dev/null
echo "### $n: Pareto front (min time_s, energy_pj, area_mm2)"
echo
table <"$d/$n-pareto.csv"
echo

n=dse-crossbar-adc-d2d-fmnist-mlp
run $n
"$bin" pareto "$out/$n" --minimize energy_pj,area_mm2 --maximize accuracy --csv "$out/$n-marked.csv" >"$d/$n-pareto.csv"
"$bin" pareto "$out/$n" --minimize energy_pj --maximize accuracy --svg "$d/$n-pareto.svg" >/dev/null
"$bin" merge "$out/$n" --svg "$d/$n-accuracy.svg" --metric accuracy --x d2d_sigma_rel \
    --heatmap "$d/$n-heat.svg" --y bits >/dev/null
echo "### $n: Pareto front (min energy_pj, area_mm2; max accuracy)"
echo
table <"$d/$n-pareto.csv"
echo

n=dse-insitu-scheme-device-fmnist-mlp
run $n
"$bin" pareto "$out/$n" --minimize energy_pj,write_latency_s --maximize accuracy --csv "$out/$n-marked.csv" >"$d/$n-pareto.csv"
"$bin" pareto "$out/$n" --minimize energy_pj --maximize accuracy --svg "$d/$n-pareto.svg" >/dev/null
"$bin" merge "$out/$n" --svg "$d/$n-accuracy.svg" --metric accuracy --x preset >/dev/null
echo "### $n: Pareto front (min energy_pj, write_latency_s; max accuracy)"
echo
table <"$d/$n-pareto.csv"
echo

# The README's DRAM-bandwidth sweep: accuracy is flat (a digital array computes exactly); time moves.
n=systolic-dram-bandwidth
run $n
"$bin" merge "$out/$n" --svg "$d/$n.svg" --metric time_s >/dev/null
