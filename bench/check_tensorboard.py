"""Loads a dtrain run's TensorBoard event files with TensorBoard's own reader (EventAccumulator)
and checks that the scalars dtrain writes are there, with increasing steps and finite values.

    python3 -m venv .venv-tb && .venv-tb/bin/pip install tensorboard
    .venv-tb/bin/python bench/check_tensorboard.py runs/digits-resnet20

Exits non-zero, naming what is missing, if a check fails. Prints each tag with its number of
points and its last value.
"""
import math
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EXPECTED = ["train/loss", "train/top1", "train/lr", "train/images_per_s",
            "epoch/train_loss", "epoch/train_top1", "epoch/val_loss", "epoch/val_top1", "epoch/val_top5",
            "epoch/lr", "epoch/images_per_s"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    logdir = os.path.join(sys.argv[1], "tensorboard")
    files = [f for f in os.listdir(logdir) if "tfevents" in f] if os.path.isdir(logdir) else []
    if not files:
        sys.exit(f"{logdir}: no event files")
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    problems = [f"missing tag {t}" for t in EXPECTED if t not in tags]
    if not any(t.startswith("time/compute_share_rank") for t in tags):
        problems.append("missing per-rank time shares (time/compute_share_rankN)")
    for tag in sorted(tags):
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        if steps != sorted(steps):
            problems.append(f"{tag}: steps not increasing")
        if not all(math.isfinite(e.value) for e in events):
            problems.append(f"{tag}: non-finite value")
        print(f"{tag:40s} {len(events):5d} points  last step {steps[-1]:7d}  value {events[-1].value:.6g}")
    print(f"{len(files)} event file(s), {len(tags)} scalar tags")
    if problems:
        sys.exit("tensorboard check failed: " + "; ".join(problems))
    print("tensorboard check: ok")


if __name__ == "__main__":
    main()
