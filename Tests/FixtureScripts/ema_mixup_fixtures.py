"""Reference tensors for dtrain's model EMA, MixUp/CutMix and soft-target cross-entropy,
computed by PyTorch 2.15 and torchvision 0.29.2.

Writes small safetensors files into Tests/DTrainTrainingTests/Fixtures/ema_mixup/:

- ema.safetensors: a tiny torchvision-style module (conv with bias, BatchNorm2d with its running
  statistics and num_batches_tracked, linear head) whose weights and buffers are set to a given
  sequence; after each one, references/classification/utils.py's ExponentialMovingAverage
  (AveragedModel with use_buffers=True) takes update_parameters, with n_averaged reset to 0 after
  the updates of the first steps, as train.py does during lr warmup epochs. The decay is train.py's
  adjusted one (adjust = world_size * batch_size * model_ema_steps / epochs).
- mixup.safetensors, cutmix.safetensors: torchvision.transforms.v2 MixUp and CutMix on a small
  NCHW batch with a fixed lambda (and, for CutMix, a fixed box centre; its box and adjusted lambda
  are torchvision's own computation), labels one-hot and mixed with the batch rolled by 1.
- soft_ce.safetensors: torch.nn.CrossEntropyLoss(label_smoothing=eps) on the mixed (soft) targets,
  with and without smoothing, and its gradient, in float64; the argmax of each target row (what
  references/classification/utils.py's accuracy compares against for soft targets).

    /work/venv-torch/bin/python Tests/FixtureScripts/ema_mixup_fixtures.py
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torchvision.transforms import v2

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainTrainingTests", "Fixtures", "ema_mixup")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(20261201)


def save(name, tensors):
    path = os.path.join(OUT, name + ".safetensors")
    out = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(out, path)
    print(path, ", ".join(f"{k}{list(v.shape)}" for k, v in list(out.items())[:6]), f"... ({len(out)} tensors)")


class ExponentialMovingAverage(torch.optim.swa_utils.AveragedModel):
    """references/classification/utils.py, verbatim in substance."""

    def __init__(self, model, decay, device="cpu"):
        def ema_avg(avg_model_param, model_param, num_averaged):
            return decay * avg_model_param + (1 - decay) * model_param

        super().__init__(model, device, ema_avg, use_buffers=True)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, bias=True)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 4)


def ema_fixture():
    # train.py's decay adjustment, with settings that make the decay visible in a few steps.
    world_size, batch_size, model_ema_steps, epochs, model_ema_decay = 2, 4, 3, 480, 0.9
    adjust = world_size * batch_size * model_ema_steps / epochs
    alpha = 1.0 - model_ema_decay
    alpha = min(1.0, alpha * adjust)
    decay = 1.0 - alpha
    model = Tiny()
    ema = ExponentialMovingAverage(model, decay=decay)
    steps, warmup_steps = 7, 2
    t = {"settings": torch.tensor([world_size, batch_size, model_ema_steps, epochs, steps, warmup_steps], dtype=torch.int64),
         "model_ema_decay": torch.tensor([model_ema_decay], dtype=torch.float64),
         "decay": torch.tensor([decay], dtype=torch.float64)}
    # The EMA starts as a copy of the model (deepcopy), before any update.
    for name, v in ema.module.state_dict().items():
        t[f"initial.{name}"] = v.clone()
    nbt = 0
    for s in range(steps):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.randn_like(p) * (1 + s) * 0.5)
            model.bn.running_mean.copy_(torch.randn(3))
            model.bn.running_var.copy_(torch.rand(3) + 0.5)
            nbt += 37 * (s + 1)
            model.bn.num_batches_tracked.fill_(nbt)
        for name, v in model.state_dict().items():
            t[f"step{s}.model.{name}"] = v.clone()
        ema.update_parameters(model)
        if s < warmup_steps:
            ema.n_averaged.fill_(0)
        for name, v in ema.module.state_dict().items():
            t[f"step{s}.ema.{name}"] = v.clone()
        t[f"step{s}.n_averaged"] = ema.n_averaged.clone().reshape(1)
    save("ema", t)


def mixup_fixture(x, labels, num_classes):
    lam = 0.3125
    m = v2.MixUp(alpha=0.2, num_classes=num_classes)
    m.make_params = lambda flat_inputs: dict(lam=lam)
    mixed, target = m(x.clone(), labels.clone())
    # lambda 0.5 makes every mixed pair a tie, for the argmax that accuracy takes.
    m.make_params = lambda flat_inputs: dict(lam=0.5)
    _, tied = m(x.clone(), labels.clone())
    save("mixup", {"x": x, "labels": labels, "lam": torch.tensor([lam], dtype=torch.float64),
                   "mixed": mixed, "target": target, "tied_target": tied, "tied_argmax": tied.max(dim=1)[1]})
    return target


def cutmix_fixture(x, labels, num_classes):
    c = v2.CutMix(alpha=1.0, num_classes=num_classes)
    lam, r_x, r_y = 0.55, 5, 1

    class FixedBeta:
        def sample(self, shape):
            return torch.tensor(lam)

    c._dist = FixedBeta()
    draws = iter([torch.tensor([r_x]), torch.tensor([r_y])])
    real_randint = torch.randint
    torch.randint = lambda *a, **k: next(draws)
    try:
        params = c.make_params([x])
    finally:
        torch.randint = real_randint
    c.make_params = lambda flat_inputs: params
    mixed, target = c(x.clone(), labels.clone())
    x1, y1, x2, y2 = params["box"]
    save("cutmix", {"x": x, "labels": labels, "draws": torch.tensor([r_x, r_y], dtype=torch.int64),
                    "lam": torch.tensor([lam], dtype=torch.float64),
                    "box": torch.tensor([x1, y1, x2, y2], dtype=torch.int64),
                    "lam_adjusted": torch.tensor([params["lam_adjusted"]], dtype=torch.float64),
                    "mixed": mixed, "target": target})


def soft_ce_fixture(target):
    n, k = target.shape
    logits = (torch.randn(n, k, dtype=torch.float64) * 2).to(torch.float32)
    t = {"logits": logits, "target": target, "argmax": target.max(dim=1)[1]}
    for eps, name in [(0.0, "plain"), (0.1, "smooth")]:
        z = logits.to(torch.float64).clone().requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)(z, target.to(torch.float64))
        loss.backward()
        t[f"{name}.eps"] = torch.tensor([eps], dtype=torch.float64)
        t[f"{name}.loss"] = loss.detach().reshape(1)
        t[f"{name}.dlogits"] = z.grad
    save("soft_ce", t)


if __name__ == "__main__":
    ema_fixture()
    num_classes = 5
    x = torch.randn(4, 3, 5, 7)   # N, C, H, W: H != W, so a swapped axis shows
    labels = torch.tensor([3, 0, 4, 3], dtype=torch.int64)
    target = mixup_fixture(x, labels, num_classes)
    cutmix_fixture(x, labels, num_classes)
    soft_ce_fixture(target)
