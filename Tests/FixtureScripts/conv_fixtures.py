"""Reference tensors for dtrain's Conv2d, computed with PyTorch.

Writes Tests/DTrainNNTests/Fixtures/conv_<case>.safetensors, each holding, in torch's layouts:
  x [N, C, H, W], weight [O, C/groups, K, K], bias [O], y [N, O, OH, OW] (forward output),
  dy [N, O, OH, OW] (a random upstream gradient), and from autograd of (y * dy).sum():
  dx, dweight, dbias. The convolution's hyper-parameters are in __metadata__ (strings).
The reference is computed in float64 and stored as float32.

Run once and commit the files (torch is not needed to run the tests):
  python Tests/FixtureScripts/conv_fixtures.py
"""
import os

import torch
from safetensors.torch import save_file

# name: (N, C, H, W, O, K, stride, padding, dilation, groups)
CASES = {
    "plain": (2, 3, 6, 5, 4, 3, 1, 1, 1, 1),
    "stride2": (2, 4, 7, 7, 6, 3, 2, 1, 1, 1),
    "dilation2": (2, 3, 7, 6, 4, 3, 1, 2, 2, 1),
    "groups4": (2, 8, 6, 6, 8, 3, 2, 1, 1, 4),
    "depthwise": (2, 6, 6, 5, 6, 3, 1, 1, 1, 6),
    "pointwise": (2, 8, 5, 4, 6, 1, 1, 0, 1, 1),
    "pointwise_stride2": (2, 8, 7, 6, 12, 1, 2, 0, 1, 1),
    "stem7x7s2": (2, 3, 12, 11, 8, 7, 2, 3, 1, 1),
}

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainNNTests", "Fixtures"))


def make(name, n, c, h, w, o, k, stride, padding, dilation, groups, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c // groups, k, k, generator=g, dtype=torch.float64) * (2.0 / (c // groups * k * k)) ** 0.5
    bias = torch.rand(o, generator=g, dtype=torch.float64) - 0.5
    # Round the inputs to float32 first so the float64 reference is exact for what the tests load.
    x, weight, bias = (t.float().double().requires_grad_() for t in (x, weight, bias))
    y = torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64).float().double()
    (y * dy).sum().backward()
    tensors = {
        "x": x, "weight": weight, "bias": bias, "y": y, "dy": dy,
        "dx": x.grad, "dweight": weight.grad, "dbias": bias.grad,
    }
    tensors = {key: t.detach().float().contiguous() for key, t in tensors.items()}
    metadata = {
        "in_channels": str(c), "out_channels": str(o), "kernel_size": str(k), "stride": str(stride),
        "padding": str(padding), "dilation": str(dilation), "groups": str(groups), "bias": "true",
    }
    path = os.path.join(OUT, f"conv_{name}.safetensors")
    save_file(tensors, path, metadata=metadata)
    print(f"{path}: y {list(y.shape)}, {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, spec) in enumerate(CASES.items()):
        make(name, *spec, seed=1000 + i)


if __name__ == "__main__":
    main()
