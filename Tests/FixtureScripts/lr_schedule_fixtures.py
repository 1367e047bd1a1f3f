"""Learning rates of torch.optim.lr_scheduler for dtrain's LRSchedule to reproduce (1e-12 relative).

Each configuration builds torchvision's reference-recipe schedule: an optional warmup (LinearLR
with start_factor = decay, or ConstantLR with factor = decay) handed over to the main scheduler
(StepLR, MultiStepLR, CosineAnnealingLR with eta_min, ExponentialLR) by SequentialLR at the
warmup's end. The configurations with one iteration per epoch step the scheduler once per epoch,
as references/classification/train.py does; the others step it every iteration, with every length
in epochs multiplied by the iterations per epoch (as torchvision's detection, segmentation and video
references do), which is how dtrain advances warmup and cosine. The rate used by every iteration
is recorded (the one in effect before that iteration's scheduler.step()).

Writes Tests/DTrainTrainingTests/Fixtures/recipe/lr_schedules.json.

    /work/venv-torch/bin/python Tests/FixtureScripts/lr_schedule_fixtures.py
"""
import json
import os
import warnings

import torch

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainTrainingTests", "Fixtures", "recipe",
                   "lr_schedules.json")

CONFIGS = [
    # name, kind, lr, epochs, iterations per epoch, warmup epochs, method, decay, extra
    dict(name="steplr-linear-warmup-per-epoch", kind="step", lr=0.5, epochs=12, iters=1, warmup=2, method="linear",
         decay=0.01, step=3, gamma=0.1),
    dict(name="cosine-constant-warmup-per-epoch", kind="cosine", lr=0.8, epochs=10, iters=1, warmup=3,
         method="constant", decay=0.1, lr_min=0.001),
    dict(name="exponential-linear-warmup-per-epoch", kind="exponential", lr=0.1, epochs=9, iters=1, warmup=2,
         method="linear", decay=0.25, gamma=0.9),
    dict(name="exponential-per-epoch", kind="exponential", lr=0.3, epochs=6, iters=1, warmup=0, gamma=0.7),
    dict(name="cosine-lr-min-per-iteration", kind="cosine", lr=0.4, epochs=5, iters=7, warmup=0, lr_min=1e-4),
    dict(name="cosine-linear-warmup-per-iteration", kind="cosine", lr=2.0, epochs=6, iters=5, warmup=2,
         method="linear", decay=0.01, lr_min=0.01),
    dict(name="cosine-constant-warmup-per-iteration", kind="cosine", lr=0.1, epochs=4, iters=6, warmup=1,
         method="constant", decay=0.5),
    dict(name="steplr-constant-warmup-per-iteration", kind="step", lr=0.2, epochs=8, iters=4, warmup=1,
         method="constant", decay=0.01, step=2, gamma=0.5),
    dict(name="multistep-linear-warmup-per-iteration", kind="multistep", lr=0.1, epochs=10, iters=3, warmup=2,
         method="linear", decay=0.001, milestones=[3, 5], gamma=0.1),
    dict(name="steplr-fractional-warmup-per-iteration", kind="step", lr=0.3, epochs=7, iters=4, warmup=1.5,
         method="linear", decay=0.05, step=2, gamma=0.3),
]


def schedule(c):
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=c["lr"])
    iters, warmup_iters = c["iters"], round(c["warmup"] * c["iters"])
    assert warmup_iters == c["warmup"] * c["iters"]
    main_iters = c["epochs"] * iters - warmup_iters
    kind = c["kind"]
    if kind == "step":
        main = torch.optim.lr_scheduler.StepLR(opt, step_size=c["step"] * iters, gamma=c["gamma"])
    elif kind == "multistep":
        main = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[m * iters for m in c["milestones"]], gamma=c["gamma"])
    elif kind == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=main_iters, eta_min=c.get("lr_min", 0.0))
    elif kind == "exponential":
        assert iters == 1, "ExponentialLR decays once per step; dtrain's decays once per epoch"
        main = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=c["gamma"])
    else:
        raise ValueError(kind)
    if warmup_iters == 0:
        return opt, main
    if c["method"] == "linear":
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=c["decay"], total_iters=warmup_iters)
    else:
        warm = torch.optim.lr_scheduler.ConstantLR(opt, factor=c["decay"], total_iters=warmup_iters)
    return opt, torch.optim.lr_scheduler.SequentialLR(opt, schedulers=[warm, main], milestones=[warmup_iters])


out = []
for c in CONFIGS:
    opt, sched = schedule(c)
    rates = []
    for _ in range(c["epochs"] * c["iters"]):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    entry = {k: v for k, v in c.items()}
    entry.setdefault("method", "linear")
    entry.setdefault("decay", 0.01)
    entry.setdefault("lr_min", 0.0)
    entry.setdefault("gamma", 0.1)
    entry.setdefault("step", 30)
    entry.setdefault("milestones", [])
    entry["warmup"] = float(c["warmup"])
    entry["rates"] = rates
    out.append(entry)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "schedules": out}, f, indent=1)
print(f"wrote {len(out)} schedules to {OUT}")
