#!/usr/bin/env bash
# Reproduces the "Data loading" table of BENCHMARKS.md: dtrain's loader against torchvision's
# ImageFolder + DataLoader on the same ImageNet-like JPEG folder, same worker counts, batch size
# and number of timed images, interleaved run by run so both sides see the same machine load.
#
#   bench/data-loading.sh --python /path/to/venv/bin/python [--dir DIR] [--count N] [--runs R]
#                         [--workers "1 2"] [--batch-size B] [--batches K] [--passes P]
#
# --python must have torch, torchvision and Pillow (only this script needs them). The folder
# (DIR/train/<class>/<index>.jpg, 500x375, JPEG quality 90) is written by `dtrain dataset write`
# unless it exists. Each run appends one JSON line per side to DIR/results.jsonl; the summary is
# the median over runs of each run's median pass, and of images per CPU second (user + system
# time of all threads and worker processes during the timed passes). A benchmark tool: never run
# by tests or CI.
set -euo pipefail

python=python3
dir="${TMPDIR:-/tmp}/dtrain-bench-500x375"
count=2000
runs=5
workers="1 2"
batch=64
batches=10
passes=3
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --count) count="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --batch-size) batch="$2"; shift 2 ;;
        --batches) batches="$2"; shift 2 ;;
        --passes) passes="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
"$python" -c 'import torch, torchvision, PIL' || { echo "$python lacks torch/torchvision/Pillow; pass --python" >&2; exit 2; }
swift build -c release >&2
dtrain=.build/release/dtrain

if [ ! -d "$dir/train" ]; then
    "$dtrain" dataset write --from synthetic --size 500x375 --count "$count" --split train --quality 90 --output "$dir" >&2
fi

results="$dir/results.jsonl"
: > "$results"
common=(--batch-size "$batch" --batches "$batches" --passes "$passes" --warmup 1)
for run in $(seq 1 "$runs"); do
    for w in $workers; do
        echo "run $run, $w worker(s)" >&2
        line=$("$dtrain" bench-data --data "$dir" --preset imagenet --workers "$w" "${common[@]}" --json)
        echo "{\"side\": \"dtrain\", \"run\": $run, \"result\": $line}" >> "$results"
        line=$("$python" bench/torchvision_loader_bench.py --data "$dir/train" --workers "$w" "${common[@]}" --json)
        echo "{\"side\": \"torchvision\", \"run\": $run, \"result\": $line}" >> "$results"
    done
done

"$python" - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault((r["result"]["workers"], r["side"]), []).append(r["result"])
med = lambda xs, key: statistics.median(x[key] for x in xs)
print("| workers | dtrain images/s | torchvision images/s | dtrain ÷ torchvision "
      "| dtrain images/CPU-s | torchvision images/CPU-s | runs, images/s (dtrain; torchvision) |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for w in sorted({k[0] for k in by}):
    d, t = by[(w, "dtrain")], by[(w, "torchvision")]
    md, mt = med(d, "images_per_second"), med(t, "images_per_second")
    runs = "; ".join(", ".join(f"{x['images_per_second']:.0f}" for x in xs) for xs in (d, t))
    print(f"| {w} | {md:.0f} | {mt:.0f} | {md / mt:.2f} | {med(d, 'images_per_cpu_second'):.0f} "
          f"| {med(t, 'images_per_cpu_second'):.0f} | {runs} |")
EOF
