"""PyTorch's results for dtrain's torchvision recipe options (--clip-grad-norm, --norm-weight-decay,
--bias-weight-decay, --ra-sampler).

- clip_grad_norm.json: a few float32 parameters with gradients, the total norm returned by
  torch.nn.utils.clip_grad_norm_ and the gradients after it, for a max norm below the total
  (clipped) and one above it (unchanged).
- weight_decay_sgd.json: a conv (no bias), BatchNorm, linear (with bias) model trained two steps
  by torch.optim.SGD (momentum 0.9) with parameter groups made as torchvision's reference recipe
  makes them from --weight-decay, --norm-weight-decay and --bias-weight-decay (a parameter named
  "bias" takes the bias decay when given; otherwise a normalization layer's parameters take the
  norm decay when given; everything else the weight decay); given gradients, no data.
- ../../DTrainDataTests/Fixtures/ra_sampler.json: every rank's indices from torchvision's
  repeated-augmentation sampler (references/classification/sampler.py, RASampler) for a few dataset
  sizes, world sizes, repetitions, seeds and epochs, shuffled (torch.randperm with a generator
  seeded seed + epoch) and not.

    /work/venv-torch/bin/python Tests/FixtureScripts/recipe_fixtures.py
"""
import json
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.join(HERE, "..", "DTrainTrainingTests", "Fixtures", "recipe")
DATA = os.path.join(HERE, "..", "DTrainDataTests", "Fixtures")


def write(directory, name, value):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        json.dump(value, f)
    print("wrote", name)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# clip_grad_norm_
g = torch.Generator().manual_seed(3)
shapes = [[6, 5], [5], [3, 2, 2], [7]]
cases = []
for max_norm in [0.75, 1000.0]:
    params = [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]
    for p in params:
        p.grad = torch.randn(*p.shape, generator=g) * 0.6
    before = [flat(p.grad) for p in params]
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    cases.append({"max_norm": max_norm, "shapes": shapes, "grads": before, "total_norm": float(total),
                  "clipped": [flat(p.grad) for p in params]})
write(TRAINING, "clip_grad_norm.json", {"torch": torch.__version__, "cases": cases})


# SGD with weight-decay parameter groups
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 4)


def groups(model, weight_decay, norm_decay, bias_decay):
    """Parameter groups by the reference recipe's rule (see the module docstring)."""
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
    found = {"other": [], "norm": [], "bias": []}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if bias_decay is not None and name == "bias":
                found["bias"].append(p)
            elif norm_decay is not None and isinstance(module, norm_types):
                found["norm"].append(p)
            else:
                found["other"].append(p)
    decay = {"other": weight_decay, "norm": norm_decay, "bias": bias_decay}
    return [{"params": ps, "weight_decay": decay[k]} for k, ps in found.items() if ps]


runs = []
for norm_decay, bias_decay in [(0.0, None), (0.05, None), (None, 0.02), (0.05, 0.0), (0.0, 0.0), (None, None)]:
    torch.manual_seed(11)
    model = Net()
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.5, 0.5)
    named = list(model.named_parameters())
    start = {n: flat(p) for n, p in named}
    opt = torch.optim.SGD(groups(model, 0.01, norm_decay, bias_decay), lr=0.5, momentum=0.9)
    grads = []
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        step = {}
        for n, p in named:
            p.grad = torch.randn(*p.shape, generator=gen) * 0.1
            step[n] = flat(p.grad)
        grads.append(step)
        opt.step()
    runs.append({"weight_decay": 0.01, "norm_weight_decay": norm_decay, "bias_weight_decay": bias_decay,
                 "lr": 0.5, "momentum": 0.9, "shapes": {n: list(p.shape) for n, p in named},
                 "start": start, "grads": grads, "end": {n: flat(p) for n, p in named}})
write(TRAINING, "weight_decay_sgd.json", {"torch": torch.__version__, "runs": runs})


# RASampler, written out from its definition in references/classification/sampler.py
def ra_indices(n, world, rank, reps, seed, epoch, shuffle):
    num_samples = int(math.ceil(n * float(reps) / world))
    total = num_samples * world
    selected = int(math.floor(n // 256 * 256 / world))
    if shuffle:
        gen = torch.Generator()
        gen.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=gen).tolist()
    else:
        order = list(range(n))
    repeated = [i for i in order for _ in range(reps)]
    repeated += repeated[: total - len(repeated)]
    return repeated[rank:total:world][:selected]


samplers = []
for n, world, reps, seed, epoch, shuffle in [(300, 1, 3, 0, 0, True), (1000, 4, 3, 7, 2, True), (1797, 3, 3, 0, 5, True),
                                             (600, 2, 2, 42, 1, True), (777, 5, 4, 3, 0, True), (513, 2, 3, 0, 0, False),
                                             (2000, 8, 3, 1, 9, True)]:
    samplers.append({"size": n, "world": world, "reps": reps, "seed": seed, "epoch": epoch, "shuffle": shuffle,
                     "ranks": [ra_indices(n, world, r, reps, seed, epoch, shuffle) for r in range(world)]})
write(DATA, "ra_sampler.json", {"torch": torch.__version__, "samplers": samplers})
