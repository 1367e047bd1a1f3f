#!/usr/bin/env bash
# Reproduces the data-parallel table of BENCHMARKS.md: the same global batch trained as one rank
# with T threads against T ranks of one thread each under mpirun (gradients averaged with the
# overlapped allreduce), alternated round by round so both see the same machine load.
#
#   bench/data-parallel.sh [--model M] [--global-batch B] [--ranks T] [--rounds R] [--steps S]
#
# Defaults: resnet50, global batch 32, 2 ranks, 3 rounds, 3 timed steps after 1 warm-up. Each
# line is one `dtrain bench` result; the multi-rank lines also give the blocking allreduce time
# of all gradients and the share of it hidden behind backward. A benchmark tool: never run by
# tests or CI.
set -euo pipefail

model=resnet50
global=32
ranks=2
rounds=3
steps=3
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --global-batch) global="$2"; shift 2 ;;
        --ranks) ranks="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ $((global % ranks)) -eq 0 ] || { echo "--global-batch must be a multiple of --ranks" >&2; exit 2; }

cd "$(dirname "$0")/.."
swift build -c release >&2
dtrain=.build/release/dtrain
common=(--steps "$steps" --warmup 1 --peak-size 0 --no-profile)
for round in $(seq 1 "$rounds"); do
    echo "round $round: 1 rank x $ranks threads, batch $global"
    "$dtrain" bench "$model" --batch-size "$global" --threads "$ranks" "${common[@]}" 2>/dev/null
    echo "round $round: $ranks ranks x 1 thread, batch $((global / ranks)) each"
    launch/train --np "$ranks" -- bench "$model" --batch-size "$((global / ranks))" --threads 1 "${common[@]}" 2>/dev/null
done
