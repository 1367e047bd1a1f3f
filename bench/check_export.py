"""Loads a .pth written by `dtrain export --format pth` with torch.load(weights_only=True) into the
matching torchvision model, and checks it against the dtrain checkpoint it came from.

    python bench/check_export.py MODEL.pth CHECKPOINT.safetensors resnet34 NUM_CLASSES
"""
import sys

import torch
import torchvision
from safetensors.torch import load_file

pth, checkpoint, name, classes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
state = torch.load(pth, weights_only=True)
model = getattr(torchvision.models, name)(num_classes=classes)
model.load_state_dict(state)  # strict: every key, every shape
reference = {k: v for k, v in load_file(checkpoint).items() if not k.startswith(("optimizer.", "model_ema."))}
assert list(state.keys()) == list(model.state_dict().keys()), "key order differs from torchvision's"
assert set(state) == set(reference)
for k, v in state.items():
    assert v.dtype == reference[k].dtype and torch.equal(v, reference[k]), k
model.eval()
with torch.no_grad():
    logits = model(torch.zeros(1, 3, 64, 64))
print(f"{pth}: torch.load(weights_only=True) loaded {len(state)} tensors into torchvision.models.{name}"
      f"(num_classes={classes}); all equal to {checkpoint}; logits {tuple(logits.shape)}")
