"""Reference outputs of torchvision's auto-augment operations, for dtrain's uint8 ops.

Writes Tests/DTrainDataTests/Fixtures/augment_fixtures.json:
  images:   {name: {"width", "height", "hex"}}: the inputs, uint8 HWC RGB as a hex string
            ("photo": a 24x20 gradient with noise; "dull": a low-contrast image with one constant
            channel and few distinct values, for the colour ops' edge cases).
  ops:      [{"op", "magnitude", "interpolation", "image", "hex"}]: torchvision's
            `autoaugment._apply_op` (what AutoAugment, RandAugment, TrivialAugmentWide and AugMix
            call, fill=None as in train.py) on the image as a uint8 CHW tensor, result as HWC hex; the geometric ops with nearest
            and bilinear interpolation on "photo", the colour ops on both images.
  erase:    Normalize(ConvertImageDtype(photo)) then `F.erase(i, j, h, w, v=0)`, as floats (CHW
            flattened HWC), with the parameters.
  mix:      AugMix's mixing of an image and three chains with fixed weights, in torch's float32
            arithmetic, truncated to uint8 as `.to(torch.uint8)` does.
  spaces:   each policy's `_augmentation_space` for a 24x20 image and a 224x224 one: per op,
            the magnitudes (float32 values as Python floats) and whether they are signed.
  policies: AutoAugment's IMAGENET and CIFAR10 sub-policies.

The tests need neither torch nor torchvision; run once and commit the output:
  /path/to/venv/bin/python Tests/FixtureScripts/augment_fixtures.py
"""
import json
import os

import torch
import torchvision
from torchvision.transforms import InterpolationMode, autoaugment
from torchvision.transforms import functional as F

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainDataTests", "Fixtures",
                                    "augment_fixtures.json"))
W, H = 24, 20


def hwc_hex(chw):
    return chw.permute(1, 2, 0).contiguous().numpy().tobytes().hex()


def photo():
    g = torch.Generator().manual_seed(3)
    y = torch.arange(H, dtype=torch.float64).view(H, 1) / (H - 1)
    x = torch.arange(W, dtype=torch.float64).view(1, W) / (W - 1)
    r = 30 + 190 * x + 20 * y
    gr = 200 - 150 * y + 30 * x * y
    b = 80 + 120 * (1 - x) * y
    img = torch.stack([r, gr, b]) + torch.randn(3, H, W, generator=g, dtype=torch.float64) * 18
    # A few saturated pixels so Solarize, Invert and the blends clip.
    img[:, 2, 3] = 255
    img[:, 15, 20] = 0
    return img.round().clamp(0, 255).to(torch.uint8)


def dull():
    g = torch.Generator().manual_seed(5)
    r = torch.randint(100, 112, (H, W), generator=g)
    gr = torch.full((H, W), 77)
    b = torch.where(torch.rand(H, W, generator=g) < 0.9, 40, 41)
    return torch.stack([r, gr, b]).to(torch.uint8)


IMAGES = {"photo": photo(), "dull": dull()}

GEOMETRIC = {
    "ShearX": [0.3, -0.3, 0.99, -0.57],
    "ShearY": [0.3, -0.3, 0.99, -0.57],
    "TranslateX": [10.87, -5.0, 3.2, -32.0],
    "TranslateY": [9.06, -4.0, 2.7, 32.0],
    "Rotate": [30.0, -30.0, 135.0, -13.5, 90.0],
}
COLOUR = {
    "Identity": [0.0],
    "Brightness": [-0.9, -0.33, 0.5, 0.99],
    "Color": [-0.9, -0.33, 0.5, 0.99],
    "Contrast": [-0.9, -0.33, 0.5, 0.99],
    "Sharpness": [-0.9, -0.33, 0.5, 0.99],
    "Posterize": [8.0, 6.0, 4.0, 2.0, 1.0, 0.0],
    "Solarize": [255.0, 170.0, 127.5, 100.5, 0.0],
    "AutoContrast": [0.0],
    "Equalize": [0.0],
    "Invert": [0.0],
}


def ops():
    out = []
    for name, img in IMAGES.items():
        for op, mags in GEOMETRIC.items() if name == "photo" else ():
            for interp in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
                for m in mags:
                    res = autoaugment._apply_op(img, op, m, interpolation=interp, fill=None)
                    out.append({"op": op, "magnitude": m, "interpolation": interp.value, "image": name, "hex": hwc_hex(res)})
        for op, mags in COLOUR.items():
            for m in mags:
                res = autoaugment._apply_op(img, op, m, interpolation=InterpolationMode.NEAREST, fill=None)
                out.append({"op": op, "magnitude": m, "interpolation": "nearest", "image": name, "hex": hwc_hex(res)})
    return out


def erase():
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    t = F.normalize(F.convert_image_dtype(IMAGES["photo"], torch.float), mean, std)
    i, j, h, w = 3, 5, 7, 11
    erased = F.erase(t, i, j, h, w, torch.tensor([0.0])[:, None, None])
    return {"i": i, "j": j, "h": h, "w": w, "mean": mean, "std": std,
            "values": [float(v) for v in erased.permute(1, 2, 0).reshape(-1)]}


def mix():
    img = IMAGES["photo"]
    chains = [autoaugment._apply_op(img, "Rotate", 20.0, InterpolationMode.BILINEAR, None),
              autoaugment._apply_op(img, "Equalize", 0.0, InterpolationMode.BILINEAR, None),
              autoaugment._apply_op(img, "Solarize", 120.0, InterpolationMode.BILINEAR, None)]
    m = torch.tensor([[0.3719, 0.6281]])
    weights = torch.tensor([[0.2, 0.45, 0.35]]) * m[:, 1].view([1, -1])
    batch = img.view([1, 3, H, W])
    out = m[:, 0].view([1, 1, 1, 1]) * batch
    for k, aug in enumerate(chains):
        out.add_(weights[:, k].view([1, 1, 1, 1]) * aug.view([1, 3, H, W]))
    out = out.view([3, H, W]).to(torch.uint8)
    return {"original": float(m[0, 0]), "weights": [float(v) for v in weights[0]],
            "chains": [hwc_hex(c) for c in chains], "hex": hwc_hex(out)}


def space(table):
    """The ops in the order they are drawn (dictionary order), each with its magnitudes (none for
    the ops without) and whether a random sign applies."""
    return [{"op": op, "signed": bool(signed), "magnitudes": [float(v) for v in mags.reshape(-1)] if mags.ndim > 0 else []}
            for op, (mags, signed) in table.items()]


def spaces():
    out = {}
    for h, w in ((H, W), (224, 224)):
        key = f"{w}x{h}"
        out[key] = {
            "ra": space(autoaugment.RandAugment()._augmentation_space(31, (h, w))),
            "ta_wide": space(autoaugment.TrivialAugmentWide()._augmentation_space(31)),
            "augmix": space(autoaugment.AugMix()._augmentation_space(10, (h, w))),
            "autoaugment": space(autoaugment.AutoAugment()._augmentation_space(10, (h, w))),
        }
    return out


def policies():
    out = {}
    for p in (autoaugment.AutoAugmentPolicy.IMAGENET, autoaugment.AutoAugmentPolicy.CIFAR10):
        out[p.value] = [[[name, prob, mag] for name, prob, mag in sub] for sub in autoaugment.AutoAugment(p).policies]
    return out


def main():
    data = {
        "torchvision": torchvision.__version__,
        "images": {k: {"width": W, "height": H, "hex": hwc_hex(v)} for k, v in IMAGES.items()},
        "ops": ops(),
        "erase": erase(),
        "mix": mix(),
        "spaces": spaces(),
        "policies": policies(),
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"wrote {OUT}: {len(data['ops'])} op cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
