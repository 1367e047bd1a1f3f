"""Reference tensors for dtrain's non-convolution layers and loss, computed by PyTorch.

Writes small safetensors files into Tests/DTrainNNTests/Fixtures/. Everything is computed in
float64 with autograd and stored as float32 (labels as int64), in torch's layouts (x is
[N, C, H, W]). dy is a random upstream gradient: the loss is sum(y * dy).

    /path/to/python Tests/FixtureScripts/layer_fixtures.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainNNTests", "Fixtures")
torch.manual_seed(20240611)
D = torch.float64


def save(name, tensors):
    path = os.path.join(OUT, name + ".safetensors")
    out = {}
    for k, v in tensors.items():
        v = v.detach()
        out[k] = v.contiguous() if v.dtype == torch.int64 else v.to(torch.float32).contiguous()
    save_file(out, path)
    print(path, ", ".join(f"{k}{list(v.shape)}" for k, v in out.items()))


def leaf(t):
    return t.to(D).clone().requires_grad_(True)


def batchnorm(train):
    n, c, h, w = 3, 4, 5, 3
    x = leaf(torch.randn(n, c, h, w) * torch.tensor([1.0, 2.0, 0.5, 3.0]).view(1, c, 1, 1)
             + torch.tensor([0.5, -1.0, 2.0, 0.0]).view(1, c, 1, 1))
    bn = torch.nn.BatchNorm2d(c).to(D)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c) + 0.5)
        bn.bias.copy_(torch.randn(c) * 0.5)
        bn.running_mean.copy_(torch.randn(c) * 0.3)
        bn.running_var.copy_(torch.rand(c) + 0.5)
    t = {"weight": bn.weight, "bias": bn.bias,
         "running_mean_before": bn.running_mean.clone(), "running_var_before": bn.running_var.clone()}
    bn.train(train)
    y = bn(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    t.update({"x": x, "y": y, "dy": dy, "dx": x.grad, "dweight": bn.weight.grad, "dbias": bn.bias.grad,
              "running_mean": bn.running_mean, "running_var": bn.running_var})
    save("bn_train" if train else "bn_eval", t)


def maxpool(name, x, k, s, p):
    x = leaf(x)
    y = F.max_pool2d(x, k, s, p)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    save(name, {"x": x, "y": y, "dy": dy, "dx": x.grad, "params": torch.tensor([k, s, p], dtype=D)})


def avgpool(name, x, o):
    x = leaf(x)
    y = F.adaptive_avg_pool2d(x, o)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    save(name, {"x": x, "y": y, "dy": dy, "dx": x.grad, "output_size": torch.tensor([o], dtype=D)})


def linear(name, x, out_features, flatten):
    x = leaf(x)
    lin = torch.nn.Linear(x[0].numel(), out_features).to(D)
    y = lin(torch.flatten(x, 1) if flatten else x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    save(name, {"x": x, "weight": lin.weight, "bias": lin.bias, "y": y, "dy": dy, "dx": x.grad,
                "dweight": lin.weight.grad, "dbias": lin.bias.grad})


def cross_entropy(name, n, k, smoothing):
    logits = leaf(torch.randn(n, k) * 2)
    labels = torch.randint(0, k, (n,), dtype=torch.int64)
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    loss.backward()
    save(name, {"logits": logits, "labels": labels, "loss": loss, "dlogits": logits.grad,
                "label_smoothing": torch.tensor([smoothing], dtype=D)})


def main():
    os.makedirs(OUT, exist_ok=True)
    batchnorm(train=True)
    batchnorm(train=False)
    maxpool("maxpool_k3s2p1", torch.randn(2, 3, 7, 7), 3, 2, 1)
    maxpool("maxpool_k2s2", torch.randn(2, 3, 7, 6), 2, 2, 0)
    # Integer values in a small range: many ties, which torch gives to the first maximum.
    # Ten channels: dtrain handles eight at a time, then the rest one by one.
    maxpool("maxpool_ties", torch.randint(0, 3, (2, 10, 6, 6)).to(D), 3, 2, 1)
    avgpool("avgpool_to1", torch.randn(2, 3, 4, 4), 1)
    avgpool("avgpool_5x7to3", torch.randn(2, 3, 5, 7), 3)
    linear("linear", torch.randn(3, 6), 4, flatten=False)
    linear("linear_flatten", torch.randn(2, 3, 2, 2), 5, flatten=True)
    cross_entropy("ce_plain", 5, 7, 0.0)
    cross_entropy("ce_smooth", 6, 5, 0.1)


if __name__ == "__main__":
    main()
