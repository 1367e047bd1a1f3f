#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (Fuzzing/Corpus/<target>/) from dtrain's test fixtures
and a few small hand-made files. Plain Python 3, no torch: the .pth seeds are the torch-written
fixtures under Tests/. Run from anywhere; it replaces the corpus folders it writes."""
import io
import json
import pickle
import pickletools
import shutil
import struct
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzzing" / "Corpus"
WEIGHTS = ROOT / "Tests" / "DTrainWeightsTests" / "Fixtures"
IMAGES = ROOT / "Tests" / "DTrainDataTests" / "Fixtures"


def folder(name):
    path = CORPUS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def pickles(data):
    """The (start, end) byte ranges of the pickles one after another at the start of `data`."""
    out, stream = [], io.BytesIO(data)
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            for op, _, _ in pickletools.genops(stream):
                if op.name == "STOP":
                    break
        except Exception:
            break
        out.append((start, stream.tell()))
    return out


def safetensors(tensors, metadata=None):
    """A safetensors file of name → (dtype, shape, bytes)."""
    header, payload = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(payload), len(payload) + len(raw)]}
        payload += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + payload


def checkpoint_info():
    return {"formatVersion": 1, "dtrainVersion": "0.1", "model": "resnet20", "numClasses": 10,
            "zeroInitResidual": False, "cifarShortcut": "A", "epoch": 3, "globalStep": 1200,
            "samplesIntoEpoch": 512, "seed": 7, "worldSize": 2, "classNames": ["a", "b"],
            "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "resolution": 32, "preset": "cifar",
            "bestTop1": 0.91, "optimizer": "sgd", "optimizerSteps": 1200, "settings": {"lr": "0.1"}}


# Unpickler: first byte 0 = zip storages, 1 = legacy storages, 2 = no persistent ids.
out = folder("FuzzUnpickler")
for name in ["two_layer", "views", "wrapped_checkpoint", "protocol4"]:
    with zipfile.ZipFile(WEIGHTS / "pth" / f"{name}.pth") as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        (out / f"zip_{name}").write_bytes(b"\x00" + z.read(pkl))
legacy = (WEIGHTS / "legacy" / "views_legacy.pth").read_bytes()
for i, (start, end) in enumerate(pickles(legacy)[:5]):
    (out / f"legacy_{i}").write_bytes(b"\x01" + legacy[start:end])
plain = {"epoch": 3, "names": ["a", "b"], "lr": 0.1, "nested": [(1, None, True), {"k": b"\x00\x01"}], "big": 1 << 80}
for protocol in (2, 4):
    (out / f"plain_p{protocol}").write_bytes(b"\x02" + pickle.dumps(plain, protocol=protocol))

# Weights files through WeightsFile.read: every .pth layout and safetensors.
out = folder("FuzzWeightsFile")
for path in ["pth/two_layer.pth", "pth/views.pth", "pth/wrapped_checkpoint.pth", "pth/protocol4.pth",
             "legacy/views_legacy.pth", "legacy/views_tar.pth", "pth/two_layer.safetensors"]:
    shutil.copy(WEIGHTS / path, out / Path(path).name)
(out / "checkpoint.safetensors").write_bytes(safetensors(
    {"fc.weight": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "steps": ("I64", [1], struct.pack("<q", 5))},
    {"dtrain": json.dumps(checkpoint_info())}))

# safetensors from bytes.
out = folder("FuzzSafeTensors")
for path in ["pth/dtypes.safetensors", "pth/views.safetensors", "pth/two_layer.safetensors"]:
    shutil.copy(WEIGHTS / path, out / Path(path).name)
(out / "mixed.safetensors").write_bytes(safetensors({
    "a": ("F16", [3], struct.pack("<3e", 1.0, -2.0, 0.5)), "b": ("BF16", [1], b"\x80\x3f"),
    "c": ("I64", [2], struct.pack("<2q", -1, 9)), "empty": ("F32", [0, 4], b""), "d": ("U8", [2], b"\x01\x02"),
}, {"note": "seed"}))

# Images: the codec fixtures (JPEG gray/CMYK, PNG of every colour type and depth).
out = folder("FuzzImage")
for path in sorted(IMAGES.iterdir()):
    if path.suffix in (".jpg", ".png"):
        shutil.copy(path, out / path.name)

# Annotation lists.
out = folder("FuzzAnnotationList")
(out / "path_label.txt").write_text("imgs/cat/1.jpg;0\nimgs/dog/2.jpg ; 1\r\n# comment\n\n/abs/emu.png;2\n")
(out / "label_path.txt").write_text("0;/data/train/cat/1.jpg\n1;/data/train/dog/2.jpg\n2;relative;with;semicolons.png\n")
(out / "names.txt").write_text("cat\ndog\nemu\n")

# Metadata: 0 = checkpoint JSON, 1 = CIFAR-10 records, 2 = CIFAR-100 records (also its name file).
out = folder("FuzzMetadata")
(out / "checkpoint.json").write_bytes(b"\x00" + json.dumps(checkpoint_info()).encode())
(out / "checkpoint_minimal.json").write_bytes(b"\x00" + b'{"model":"resnet18","numClasses":1000}')
(out / "cifar10.bin").write_bytes(b"\x01" + bytes([3]) + bytes(range(256)) * 12 + bytes([9]) + bytes(3072))
names = b"".join(b"class%d\n" % i for i in range(100))
(out / "cifar100.bin").write_bytes(b"\x02" + bytes([1, 2]) + (names * 8)[:3072])

total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
print(f"{sum(1 for p in CORPUS.rglob('*') if p.is_file())} seeds, {total} bytes")
