"""Writes the reference state_dict of every zoo model: one line per entry, `name dtype dim0xdim1...`,
after a header line `# params P macs M resolution R` (P = sum of numel over parameters(), M = conv and
linear multiply-accumulates per image at resolution R).

torchvision's models come from torchvision itself; the CIFAR ResNets and ResNeXt-29 are defined here
after the seed tutorials (torchvision-style names for the ResNets; the ResNeXt seed's names).
Run once with a PyTorch install (never in CI):  python zoo_state_dicts.py OUTPUT_DIR
"""
import os, sys
import torch, torch.nn as nn, torch.nn.functional as F
import torchvision.models as tvm


class PadShortcut(nn.Module):
    def __init__(self, extra, stride):
        super().__init__(); self.extra, self.stride = extra, stride
    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class CifarBlock(nn.Module):
    def __init__(self, i, o, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(o); self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(o)
        self.downsample = None
        if stride != 1 or i != o:
            self.downsample = PadShortcut(o - i, stride) if option == "A" else \
                nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)


class CifarResNet(nn.Module):
    def __init__(self, n, option="A", num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16); self.relu = nn.ReLU()
        i = 16
        for s, o in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                blocks.append(CifarBlock(i, o, 2 if (b == 0 and s > 0) else 1, option)); i = o
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1); self.fc = nn.Linear(64, num_classes)
    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNeXtBottleneck(nn.Module):  # the ResNeXt seed's block
    def __init__(self, in_channels, out_channels, stride, cardinality, base_width, widen_factor):
        super().__init__()
        width_ratio = out_channels / (widen_factor * 64.)
        D = cardinality * int(base_width * width_ratio)
        self.conv_reduce = nn.Conv2d(in_channels, D, 1, 1, 0, bias=False); self.bn_reduce = nn.BatchNorm2d(D)
        self.conv_conv = nn.Conv2d(D, D, 3, stride, 1, groups=cardinality, bias=False); self.bn = nn.BatchNorm2d(D)
        self.conv_expand = nn.Conv2d(D, out_channels, 1, 1, 0, bias=False); self.bn_expand = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if in_channels != out_channels:
            self.shortcut.add_module('shortcut_conv', nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False))
            self.shortcut.add_module('shortcut_bn', nn.BatchNorm2d(out_channels))
    def forward(self, x):
        b = F.relu(self.bn_reduce(self.conv_reduce(x)))
        b = F.relu(self.bn(self.conv_conv(b)))
        b = self.bn_expand(self.conv_expand(b))
        return F.relu(self.shortcut(x) + b)


class CifarResNeXt(nn.Module):  # the ResNeXt seed's network
    def __init__(self, cardinality, depth, nlabels, base_width, widen_factor=4):
        super().__init__()
        self.block_depth = (depth - 2) // 9
        self.stages = [64, 64 * widen_factor, 128 * widen_factor, 256 * widen_factor]
        self.conv_1_3x3 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); self.bn_1 = nn.BatchNorm2d(64)
        for s in range(1, 4):
            blk = nn.Sequential()
            for b in range(self.block_depth):
                i = self.stages[s - 1] if b == 0 else self.stages[s]
                blk.add_module(f"stage_{s}_bottleneck_{b}", ResNeXtBottleneck(
                    i, self.stages[s], (1 if s == 1 else 2) if b == 0 else 1, cardinality, base_width, widen_factor))
            setattr(self, f"stage_{s}", blk)
        self.classifier = nn.Linear(self.stages[3], nlabels)
    def forward(self, x):
        x = F.relu(self.bn_1(self.conv_1_3x3(x)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def cifar_models():
    out = {}
    for n in [3, 5, 7, 9, 18, 200]:
        out[f"resnet{6 * n + 2}"] = (lambda n=n: CifarResNet(n, "A"), 32)
        out[f"resnet{6 * n + 2}_b"] = (lambda n=n: CifarResNet(n, "B"), 32)
    out["resnext29_8x64d"] = (lambda: CifarResNeXt(8, 29, 10, 64), 32)
    out["resnext29_16x64d"] = (lambda: CifarResNeXt(16, 29, 10, 64), 32)
    return out


TORCHVISION = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
               "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "vgg16", "vgg16_bn", "mobilenet_v2"]


def macs(model, res):
    total = [0]
    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += m.in_features * m.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, res, res))
    for h in hs: h.remove()
    return total[0]


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    models = {name: (lambda name=name: getattr(tvm, name)(), 224) for name in TORCHVISION}
    models.update(cifar_models())
    for name, (make, res) in models.items():
        m = make()
        params = sum(p.numel() for p in m.parameters())
        m_macs = macs(m, res) if name != "resnet1202" else macs(m, res)
        with open(os.path.join(outdir, f"{name}.txt"), "w") as f:
            f.write(f"# params {params} macs {m_macs} resolution {res}\n")
            for k, v in m.state_dict().items():
                dtype = "int64" if v.dtype == torch.int64 else "float32"
                f.write(f"{k} {dtype} {'x'.join(map(str, v.shape))}\n")
        print(name, params, m_macs)


if __name__ == "__main__":
    main(sys.argv[1])
