"""Photo-like JPEG and PNG files with torchvision's evaluation preprocessing and a ResNet-18's
logits on them, for DTrainTrainingTests/PhotoFidelityTests (dtrain's eval/predict against
torchvision on real-world-shaped inputs, including an exact 2x downscale: 512x512 -> Resize(256)).

Run with a Python that has torch, torchvision, Pillow, numpy and safetensors; the outputs are
committed under Tests/DTrainTrainingTests/Fixtures/photos, so the tests need none of them.

The model is the committed fixture Tests/DTrainWeightsTests/Fixtures/legacy/resnet18_legacy.pth
(torchvision's resnet18 with a 10-class head and random float16 weights), run in float32.

expected.safetensors holds:
  logits_bilinear, logits_bicubic  [files, 10]: the model's logits after
      Resize(256, interpolation) + CenterCrop(224) + ToTensor + Normalize(ImageNet), one row per
      file in the order of `files` (stored in the metadata, comma-separated);
  pixels_<stem>  uint8 [224, 224, 3]: the bilinear Resize + CenterCrop output (before ToTensor)
      of two files;
  input_<stem>   float32 [224, 224, 3]: the normalised tensor (HWC) of one file;
  bicubic_<stem> uint8 [h, w, 3]: PIL's bicubic resize of one file to Resize(64)'s size.
"""
import os
import numpy as np
import torch
import torchvision
from torchvision import transforms as T
from PIL import Image
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "DTrainTrainingTests", "Fixtures", "photos")
WEIGHTS = os.path.join(HERE, "..", "DTrainWeightsTests", "Fixtures", "legacy", "resnet18_legacy.pth")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20261202)


def photo(width, height):
    """Smooth colour gradients, a few soft blobs, fine texture, edges and sensor-like noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    img = np.zeros((height, width, 3))
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 120 + 70 * (a * u + b * v) + 30 * np.sin(2 * np.pi * (p + 0.7 * u * (c + 1)))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.3) * min(width, height)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-60, 60, 3)
    # A hard-edged rectangle (the ringing and aliasing cases of a resize).
    x0, y0 = int(width * 0.6), int(height * 0.2)
    img[y0:y0 + height // 5, x0:x0 + width // 6] += rng.uniform(-80, 80, 3)
    # Texture at several frequencies, and noise.
    img += 12 * np.sin(x * 0.9 + y * 0.35)[..., None] + 8 * np.sin(x * 2.3 - y * 1.7)[..., None]
    img += rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


# (width, height, formats): every size as JPEG quality 90, three also as PNG.
sizes = [(512, 512, ("jpg", "png")), (500, 375, ("jpg",)), (333, 480, ("jpg", "png")),
         (256, 256, ("jpg",)), (97, 140, ("jpg", "png"))]
files = []
for w, h, formats in sizes:
    img = photo(w, h)
    for f in formats:
        name = f"photo_{w}x{h}.{f}"
        if f == "jpg":
            img.save(os.path.join(OUT, name), quality=90)
        else:
            img.save(os.path.join(OUT, name), optimize=True)
        files.append(name)

model = torchvision.models.resnet18(num_classes=10)
state = torch.load(WEIGHTS, weights_only=False)
model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
model.eval()

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def load(name):
    with open(os.path.join(OUT, name), "rb") as f:
        return Image.open(f).convert("RGB")  # torchvision's pil_loader


def geometry(interpolation):
    return T.Compose([T.Resize(256, interpolation=interpolation), T.CenterCrop(224)])


normalise = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
tensors = {}
for mode, interpolation in [("bilinear", T.InterpolationMode.BILINEAR), ("bicubic", T.InterpolationMode.BICUBIC)]:
    batch = torch.stack([normalise(geometry(interpolation)(load(n))) for n in files])
    with torch.no_grad():
        tensors["logits_" + mode] = model(batch).contiguous()

for name in ["photo_512x512.jpg", "photo_333x480.png"]:
    cropped = geometry(T.InterpolationMode.BILINEAR)(load(name))
    tensors["pixels_" + name.replace(".", "_")] = torch.from_numpy(np.asarray(cropped).copy())
name = "photo_512x512.jpg"
tensors["input_" + name.replace(".", "_")] = normalise(geometry(T.InterpolationMode.BILINEAR)(load(name))).permute(1, 2, 0).contiguous()
name = "photo_97x140.png"
small = T.Resize(64, interpolation=T.InterpolationMode.BICUBIC)(load(name))
tensors["bicubic_" + name.replace(".", "_")] = torch.from_numpy(np.asarray(small).copy())

save_file(tensors, os.path.join(OUT, "expected.safetensors"), metadata={"files": ",".join(files)})
total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print("files:", files)
print("logit range:", float(tensors["logits_bilinear"].abs().max()), "total bytes:", total)
