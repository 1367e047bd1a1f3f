#!/usr/bin/env python3
"""torchvision's data-loading throughput, measured the way `dtrain bench-data` measures dtrain's.

A benchmark tool for BENCHMARKS.md (see bench/data-loading.sh); it is never run by the tests or CI
and needs a Python with torch, torchvision and Pillow.

Pipeline: torchvision.datasets.ImageFolder (PIL decode, convert("RGB")) + DataLoader with
num_workers = --workers and transforms.Compose([RandomResizedCrop(R), RandomHorizontalFlip(),
ToTensor(), Normalize(ImageNet mean, std)]).

Timing, as in dtrain's LoaderBenchmark: one iterator over the dataset's indices in order
(wrapping around when it is smaller than the run); --warmup untimed batches, then --passes timed
passes of --batches batches each. A pass's clock runs from the batch before it being handed out
to its own last batch being handed out. The median pass is reported, and the CPU time (user +
system) of the main process and the worker processes over the timed passes (from /proc, Linux).
"""
import argparse
import json
import os
import statistics
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def cpu_seconds(pids):
    """User + system CPU seconds of the processes `pids` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="ImageFolder root: DIR/<class>/<image> (e.g. a dtrain dataset's train/)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader num_workers (0 loads in the main process)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=10, help="batches per timed pass")
    p.add_argument("--passes", type=int, default=3, help="timed passes; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches before the first pass")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()

    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.resolution),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(args.data, transform=transform)
    total = (args.warmup + args.passes * args.batches) * args.batch_size
    indices = [i % len(dataset) for i in range(total)]
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=indices, num_workers=args.workers,
                        shuffle=False, pin_memory=False, drop_last=False)

    rates, images, seconds = [], 0, 0.0
    handed_out, in_pass = 0, 0
    iterator = iter(loader)  # starts the worker processes
    pids = [os.getpid()] + [w.pid for w in getattr(iterator, "_workers", [])]
    pass_start, cpu_start, cpu = time.perf_counter(), cpu_seconds(pids), 0.0
    for x, _ in iterator:
        handed_out += 1
        if handed_out <= args.warmup:
            if handed_out == args.warmup:
                pass_start, cpu_start = time.perf_counter(), cpu_seconds(pids)
            continue
        in_pass += x.shape[0]
        if (handed_out - args.warmup) % args.batches == 0:
            now = time.perf_counter()
            rates.append(in_pass / (now - pass_start))
            images += in_pass
            seconds += now - pass_start
            in_pass, pass_start = 0, now
            if len(rates) == args.passes:
                cpu = cpu_seconds(pids) - cpu_start

    result = {"images_per_second": statistics.median(rates), "pass_images_per_second": rates, "images": images,
              "seconds": seconds, "cpu_seconds": cpu, "images_per_cpu_second": images / cpu if cpu > 0 else 0,
              "workers": args.workers, "batch_size": args.batch_size, "batches": args.batches,
              "warmup_batches": args.warmup, "source_images": len(dataset),
              "torch": torch.__version__, "torchvision": __import__("torchvision").__version__,
              "pillow": __import__("PIL").__version__}
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"{result['images_per_second']:.1f} images/s decoded and augmented "
              f"(median of {args.passes} passes: {', '.join(f'{r:.1f}' for r in rates)})")
        print(f"{images} images in {seconds:.2f} s, {args.workers} worker{'' if args.workers == 1 else 's'}, "
              f"batch {args.batch_size}, {args.batches} batches per pass after {args.warmup} warm-up, "
              f"torchvision RandomResizedCrop({args.resolution}) at {args.resolution} px")
        print(f"{cpu:.2f} CPU seconds: {result['images_per_cpu_second']:.1f} images per CPU second")


if __name__ == "__main__":
    main()
