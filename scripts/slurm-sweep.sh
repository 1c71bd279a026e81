#!/usr/bin/env bash
# A real Slurm run of a sharded sweep: starts a one-node Slurm cluster (munged, slurmctld and
# slurmd of Debian's slurm-wlm and munge, configured in a temporary folder), submits the sweep
# as a job array of 4 tasks (`sbatch --array=0-3`, task i runs `nacsim sweep … --shard i/4`),
# waits for it, merges the points and checks the CSV byte for byte against an unsharded run.
# Everything it starts is stopped and its folder removed on exit (trap), however it exits.
#
#   scripts/slurm-sweep.sh [NACSIM_BINARY] [SWEEP.ron]
#
# Defaults: target/release/nacsim (else target/debug/nacsim) and
# tests/fixtures/sweeps/tiny-shape.ron. Needs root (slurmd launches the tasks as their user);
# installs slurm-wlm and munge with apt-get when they are missing. docs/cluster.md says what it
# does and what it printed here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${1:-}
if [ -z "$bin" ]; then
    if [ -x target/release/nacsim ]; then bin=target/release/nacsim; else bin=target/debug/nacsim; fi
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
sweep=$(cd "$(dirname "${2:-tests/fixtures/sweeps/tiny-shape.ron}")" && pwd)/$(basename "${2:-tests/fixtures/sweeps/tiny-shape.ron}")
[ -x "$bin" ] || { echo "slurm-sweep: no nacsim binary at $bin; cargo build --release first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "slurm-sweep: run as root (a throw-away one-node cluster)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/nacsim-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    local status=$?
    # Stop the daemons this script started (by their process ids), then remove the folder.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    if [ "$status" != 0 ]; then
        for f in "$work"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

mkdir -p "$work"/{munge,state,spool,log,out}
chmod 755 "$work/munge"

# munge: a fresh key, its own socket; --force because it runs as root here.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --foreground --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/munge.seed" >>"$work/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$work/munge/munge.sock" ] || { echo "slurm-sweep: munged did not start" >&2; exit 1; }

# Ports in the dynamic range, different per run (two runs at once do not collide).
port=$((20000 + RANDOM % 20000))
host=$(hostname -s)
cpus=$(nproc)
cat >"$work/slurm.conf" <<EOF
ClusterName=nacsim
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/munge.sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool/%n
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
NodeName=nacsim1 NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=nacsim1 Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" >>"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N nacsim1 -f "$SLURM_CONF" >>"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
    sleep 0.2
done
sinfo -h -o '%P %D %T %c' | grep -qE 'idle|mixed' || { echo "slurm-sweep: the node did not come up" >&2; sinfo >&2 || true; exit 1; }
echo "slurm-sweep: one-node cluster up: $(sinfo -h -o '%P %D %T %c cpus') (slurm $(sinfo -V | cut -d' ' -f2))"

# The job array: task i runs shard i/4 of the sweep into one shared folder.
cat >"$work/array.sh" <<EOF
#!/bin/bash
#SBATCH --job-name=nacsim-sweep
#SBATCH --array=0-3
#SBATCH --cpus-per-task=1
#SBATCH --output=$work/log/task-%a.log
"$bin" sweep "$sweep" --out "$work/out/sharded" \\
    --shard "\${SLURM_ARRAY_TASK_ID}/4" --threads "\${SLURM_CPUS_PER_TASK}" --quiet
EOF
start=$(date +%s)
job=$(cd "$root" && sbatch --parsable --wait "$work/array.sh")
echo "slurm-sweep: job array $job finished in $(($(date +%s) - start)) s"
# Every task must have completed (sbatch --wait returns the highest exit code, checked too).
states=$(sacct -j "$job" -n -X -o State 2>/dev/null | sort | uniq -c | tr -s ' ' || true)
grep -h "shard" "$work"/log/task-*.log | sed 's/^/  /'
[ "$(grep -l 'points run' "$work"/log/task-*.log | wc -l)" = 4 ] || { echo "slurm-sweep: not every task finished ($states)" >&2; exit 1; }

"$bin" merge "$work/out/sharded" --csv "$work/out/sharded.csv"
"$bin" sweep "$sweep" --out "$work/out/whole" --quiet 2>/dev/null
"$bin" merge "$work/out/whole" --csv "$work/out/whole.csv"
if cmp "$work/out/sharded.csv" "$work/out/whole.csv"; then
    echo "slurm-sweep: OK: the merged CSV of the 4 Slurm tasks equals the unsharded run byte for byte ($(wc -l <"$work/out/whole.csv") lines, sha256 $(sha256sum "$work/out/whole.csv" | cut -c1-16))"
else
    echo "slurm-sweep: FAILED: the sharded and unsharded CSVs differ" >&2
    diff "$work/out/sharded.csv" "$work/out/whole.csv" | head >&2
    exit 1
fi
