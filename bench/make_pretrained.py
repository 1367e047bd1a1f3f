"""Writes torchvision weights with torch.save, standing in for a downloaded torchvision file
(resnet34-b627a593.pth) where there is no network: the same model, the same state_dict keys and
torch.save's zip format, but seeded random initialisation instead of ImageNet training. The
BatchNorm running statistics are then measured on random images (train-mode forwards with a
cumulative average), as trained weights carry statistics of their data: with the initial ones
(mean 0, variance 1) a frozen backbone's activations grow layer after layer.

    python bench/make_pretrained.py resnet34 OUT.pth [--seed 0] [--calibration-batches 8] [--resolution 64]

Needs torch and torchvision (a venv of your own; dtrain never depends on PyTorch).
"""
import argparse

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("model", help="a torchvision.models constructor name, e.g. resnet34")
parser.add_argument("output", help="the .pth to write")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--calibration-batches", type=int, default=8, help="batches of 32 random images for the BatchNorm statistics (0: keep the initial ones)")
parser.add_argument("--resolution", type=int, default=64, help="side of the calibration images")
args = parser.parse_args()

torch.manual_seed(args.seed)
model = getattr(torchvision.models, args.model)(weights=None)
if args.calibration_batches > 0:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative moving average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(args.calibration_batches):
            model(torch.randn(32, 3, args.resolution, args.resolution))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
state = model.state_dict()
torch.save(state, args.output)
print(f"wrote {args.output}: {args.model}, {len(state)} tensors, "
      f"{sum(v.numel() for k, v in state.items() if not k.endswith('num_batches_tracked'))} values, seed {args.seed}")
