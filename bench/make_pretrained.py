"""Writes torchvision weights with torch.save, standing in for a downloaded torchvision file
(resnet34-b627a593.pth) where there is no network: the same model, the same state_dict keys and
torch.save's zip format, but seeded random initialisation instead of ImageNet training.

    python bench/make_pretrained.py resnet34 OUT.pth [--seed 0]

Needs torch and torchvision (a venv of your own; dtrain never depends on PyTorch).
"""
import argparse

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("model", help="a torchvision.models constructor name, e.g. resnet34")
parser.add_argument("output", help="the .pth to write")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.manual_seed(args.seed)
model = getattr(torchvision.models, args.model)(weights=None)
state = model.state_dict()
torch.save(state, args.output)
print(f"wrote {args.output}: {args.model}, {len(state)} tensors, "
      f"{sum(v.numel() for k, v in state.items() if not k.endswith('num_batches_tracked'))} values, seed {args.seed}")
