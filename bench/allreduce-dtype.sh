#!/usr/bin/env bash
# Reproduces the --allreduce-dtype table of BENCHMARKS.md: the gradient allreduce sent as float32
# against bf16, 2 ranks of one thread under mpirun, over shared memory (Open MPI's vader) and over
# TCP on the loopback interface, alternated round by round so both see the same machine load.
#
#   bench/allreduce-dtype.sh [--model M] [--batch B] [--rounds R] [--steps S] [--tcp-rate RATE]
#
# Defaults: resnet50, batch 2 per rank, 3 rounds, 2 timed steps after 1 warm-up. --tcp-rate (e.g.
# 5gbit; needs root and tc) shapes the loopback interface with a token bucket for the TCP rows, as
# a stand-in for a network between nodes, and removes the shaping on exit. Each row gives the
# bytes each rank sends per step, the blocking allreduce of all gradients (dtrain bench's
# allreduce_seconds: median of 3) and the allreduce time per step left after backward
# (exposed_allreduce_seconds), as median and range over rounds. A benchmark tool: never run by
# tests or CI.
set -euo pipefail

model=resnet50
batch=2
rounds=3
steps=2
rate=""
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --tcp-rate) rate="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
swift build -c release >&2
dtrain=$PWD/.build/release/dtrain
results=$(mktemp)
trap 'rm -f "$results"; [ -n "$rate" ] && tc qdisc del dev lo root 2>/dev/null || true' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

run() {  # transport dtype
    local btl=vader,self
    [ "$1" = tcp ] && btl=tcp,self
    mpirun -np 2 --bind-to none --mca btl "$btl" --mca btl_tcp_if_include lo "$dtrain" bench "$model" \
        --batch-size "$batch" --threads 1 --steps "$steps" --warmup 1 --peak-size 0 --no-profile --json \
        --allreduce-dtype "$2" 2>/dev/null | grep '^{' | sed "s/^{/{\"transport\":\"$1\",/" >> "$results"
}

for round in $(seq 1 "$rounds"); do
    for dtype in fp32 bf16; do
        echo "round $round: shared memory, $dtype" >&2
        run shm "$dtype"
    done
    if [ -n "$rate" ]; then tc qdisc add dev lo root tbf rate "$rate" burst 1mb latency 50ms; fi
    for dtype in fp32 bf16; do
        echo "round $round: TCP over loopback${rate:+ shaped to $rate}, $dtype" >&2
        run tcp "$dtype"
    done
    if [ -n "$rate" ]; then tc qdisc del dev lo root; fi
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -o -w 'avx2\|fma\|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
python3 - "$results" "$model" "$batch" "$cpu" "$flags" "$rate" <<'PY'
import json, statistics, sys
path, model, batch, cpu, flags, rate = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
print(f"{model}, batch {batch} per rank, 2 ranks x 1 thread; CPU: {cpu} ({flags.strip()}); {len(rows) // 4} rounds")
print()
print("| transport | allreduce dtype | MiB per rank per step | blocking allreduce, ms (median, range) | exposed after backward, ms per step | step, s |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for transport in ["shm", "tcp"]:
    name = "shared memory (vader)" if transport == "shm" else "TCP over loopback" + (f", shaped to {rate}" if rate else "")
    for dtype in ["fp32", "bf16"]:
        r = [x for x in rows if x["transport"] == transport and x["allreduce_dtype"] == dtype]
        if not r:
            continue
        def cell(key, scale=1e3, digits=1):
            v = [x[key] * scale for x in r]
            return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}–{max(v):.{digits}f})"
        print(f"| {name} | {dtype} | {r[0]['allreduce_bytes'] / 1048576:.1f} | {cell('allreduce_seconds')} | "
              f"{cell('exposed_allreduce_seconds')} | {cell('median_step_seconds', 1, 3)} |")
PY
