#!/usr/bin/env python3
"""PyTorch's training-step throughput for one model, measured the way `dtrain bench` measures dtrain's.

A benchmark tool for BENCHMARKS.md (see bench/compare-pytorch); never run by tests or CI.

One SGD step (momentum 0.9, weight decay 1e-4) of forward, cross-entropy, backward and update on
a random batch, channels_last (PyTorch's faster CPU layout for these models; --format nchw for
the other), with --precision bf16 under torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's
CPU mixed precision, as dtrain's --precision bf16), after --warmup untimed steps; the median of --steps timed steps is reported, with
this process's peak RSS. The CIFAR ResNets are He et al.'s option A (parameter-free shortcut),
as dtrain's resnet20/56 are. One model per process, so the peak RSS is that model's.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision.models as tvm


class PadShortcut(nn.Module):
    """Option A: subsample by 2 and zero-pad the new channels."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.shortcut = nn.Identity() if stride == 1 and i == o else PadShortcut(o - i)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def cifar_resnet(n, classes=10):
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    i = 16
    for o, stride in [(16, 1), (32, 2), (64, 2)]:
        for k in range(n):
            layers.append(BasicBlock(i, o, stride if k == 0 else 1))
            i = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


MODELS = {
    "resnet20": (lambda: cifar_resnet(3), 32),
    "resnet56": (lambda: cifar_resnet(9), 32),
    "resnet18": (lambda: tvm.resnet18(), 224),
    "resnet50": (lambda: tvm.resnet50(), 224),
    "resnext50_32x4d": (lambda: tvm.resnext50_32x4d(), 224),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--resolution", type=int)
    p.add_argument("--format", choices=["nhwc", "nchw"], default="nhwc")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    make, res = MODELS[a.model]
    res = a.resolution or res
    fmt = torch.channels_last if a.format == "nhwc" else torch.contiguous_format
    model = make().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch_size, 3, res, res).to(memory_format=fmt)
    classes = model(x[:1]).shape[1]
    y = torch.randint(0, classes, (a.batch_size,))
    loss = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            value = loss(model(x), y)
        value.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(json.dumps({
        "model": a.model, "batch_size": a.batch_size, "resolution": res, "threads": a.threads,
        "format": a.format, "precision": a.precision, "steps": a.steps, "median_step_seconds": median,
        "images_per_second": a.batch_size / median,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
