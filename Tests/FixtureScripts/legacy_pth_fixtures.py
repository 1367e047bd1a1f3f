"""Weight files in torch.save's two pre-zip formats, and what dtrain must read from them.

Writes into Tests/DTrainWeightsTests/Fixtures/legacy/:
  resnet20_legacy.pth     the CIFAR resnet20 (zoo_state_dicts.py's definition, random weights and
                          BatchNorm statistics) saved by torch.save(..., _use_new_zipfile_serialization=False):
                          PyTorch 0.4-1.5's format (magic number, sys info, pickle, raw storages)
  mobilenet_v2_legacy.pth torchvision's mobilenet_v2 with a 10-class head (random weights) in float16
                          (HalfStorage; half the size), same format
  resnet20_tar.pth.tar    resnet20's state_dict in PyTorch 0.3's tar format (members sys_info, pickle,
                          tensors, storages), written here the way torch/serialization.py's `_legacy_load`
                          reads it; torch.load(weights_only=False) reads it back to the same tensors
  views_tar.pth           pth_fixtures.py's strided views and shared storages in the tar format, one of
                          them through a storage view
  views_legacy.pth        the same views in the legacy format (one through a storage view as well)
  resnet20_module.th      a training script's checkpoint as the 2017-2020 CIFAR repositories wrote it:
                          {"epoch", "state_dict" with DataParallel's "module." keys and no
                          num_batches_tracked (PyTorch 0.4.0 had none), "best_prec1"}, legacy format
  resnet20.safetensors    the tensors torch.load returns from resnet20_legacy.pth and resnet20_tar.pth.tar,
                          made contiguous (the expected values; resnet20_module.th holds them without
                          num_batches_tracked)
  mobilenet_v2_legacy.safetensors, views.safetensors  the same for those files (views_* both)
  resnet18_legacy.pth     torchvision's resnet18 (10-class head, float16) in the legacy format, with
                          resnet18_subset.safetensors (six of its tensors as torch.load returns them)
  NAME_logits.safetensors for resnet20, mobilenet_v2 and resnet18: "input" (NHWC images) and "logits" PyTorch
                          computes from them in eval mode (mobilenet_v2's with its float16 weights
                          widened to float32)

    /path/to/python Tests/FixtureScripts/legacy_pth_fixtures.py
"""
import collections
import io
import os
import pickle
import struct
import sys
import tarfile

import torch
import torchvision
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_state_dicts import CifarResNet  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainWeightsTests", "Fixtures", "legacy")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(20261201)


def randomize(model):
    """Weights and BatchNorm statistics that are not the initialisation's."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(1234)
    return model.eval()


def expected(name, state):
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, os.path.join(OUT, name + ".safetensors"))


def check_same(path, state):
    back = torch.load(path, weights_only=False)
    back = back.get("state_dict", back)
    assert list(back) == list(state), (path, list(back)[:3], list(state)[:3])
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), (path, k)


def logits(name, model, resolution, n=3):
    x = torch.rand(n, 3, resolution, resolution) * 2 - 1
    with torch.no_grad():
        y = model.eval()(x)
    save_file({"input": x.permute(0, 2, 3, 1).contiguous(), "logits": y.contiguous()}, os.path.join(OUT, name + "_logits.safetensors"))


def legacy(name, state):
    path = os.path.join(OUT, name)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x02", "not the legacy pickle stream"
    print(name, os.path.getsize(path), "bytes")
    return path


# resnet20 and mobilenet_v2 in the legacy format, with PyTorch's logits.
resnet20 = randomize(CifarResNet(3))
path = legacy("resnet20_legacy.pth", resnet20.state_dict())
check_same(path, resnet20.state_dict())
expected("resnet20", resnet20.state_dict())
logits("resnet20", resnet20, 32)

mobilenet = randomize(torchvision.models.mobilenet_v2(num_classes=10)).half()
path = legacy("mobilenet_v2_legacy.pth", mobilenet.state_dict())
check_same(path, mobilenet.state_dict())
expected("mobilenet_v2_legacy", mobilenet.state_dict())
logits("mobilenet_v2", mobilenet.float(), 64, n=2)

# A 2018 training script's checkpoint: DataParallel keys, no num_batches_tracked.
old = collections.OrderedDict(("module." + k, v) for k, v in resnet20.state_dict().items() if not k.endswith("num_batches_tracked"))
path = legacy("resnet20_module.th", {"epoch": 182, "state_dict": old, "best_prec1": 91.73})
check_same(path, old)


# Views and shared storages (pth_fixtures.py's), in both old formats.
base = torch.randn(4, 5)
cube = torch.randn(2, 3, 4)
views = collections.OrderedDict()
views["transposed"] = base.t()
views["rows"] = base[1:3]
views["tail"] = base.view(-1)[13:]
views["permuted"] = cube.permute(2, 0, 1)
views["expanded"] = torch.randn(3, 1).expand(3, 4)
views["column"] = base[:, 2]
views["half"] = torch.randn(2, 3).half()
views["count"] = torch.tensor(77, dtype=torch.int64)
expected("views", views)


def legacy_with_view(path, state, view_name, view_offset, view_size):
    """torch.save's legacy stream (as _legacy_save writes it), with one tensor reaching its storage
    through a storage view (view metadata in its persistent id), as PyTorch 0.4 wrote sliced storages."""
    keys = {}
    def pid(obj):
        if isinstance(obj, torch.storage.TypedStorage):
            ptr = obj._untyped_storage.data_ptr()
            key = keys.setdefault(ptr, (str(len(keys)), obj))[0]
            return ("storage", getattr(torch, obj._pickle_storage_type()), key, "cpu", obj._size(), None)
        return None

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__view__":
                t = state[obj[1]]
                storage = t.untyped_storage()
                typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=t.dtype, _internal=True)
                key = keys.setdefault(storage.data_ptr(), (str(len(keys)), typed))[0]
                return ("storage", getattr(torch, typed._pickle_storage_type()), key, "cpu", typed._size(),
                        (key + "v", view_offset, view_size))
            return pid(obj)

    class ViewTensor:
        """Pickles as _rebuild_tensor_v2 over a storage view."""
        def __init__(self, name):
            self.name = name
        def __reduce__(self):
            t = state[self.name]
            return (torch._utils._rebuild_tensor_v2,
                    (("__view__", self.name), t.storage_offset() - view_offset, tuple(t.size()), t.stride(), False, collections.OrderedDict()))

    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(header, out, protocol=2)
    body = collections.OrderedDict((k, ViewTensor(k) if k == view_name else v) for k, v in state.items())
    Pickler(out, protocol=2).dump(body)
    ordered = sorted(keys.values(), key=lambda kv: int(kv[0]))
    pickle.dump([k for k, _ in ordered], out, protocol=2)
    for _, typed in ordered:
        raw = typed._untyped_storage
        out.write(struct.pack("<q", typed._size()))
        out.write(raw_bytes(raw))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def raw_bytes(storage):
    """An untyped storage's bytes."""
    return torch.empty(0, dtype=torch.uint8).set_(storage, 0, (storage.nbytes(),), (1,)).numpy().tobytes()


def storage_type(dtype):
    return {torch.float32: torch.FloatStorage, torch.float16: torch.HalfStorage, torch.int64: torch.LongStorage}[dtype]


def tensor_type(dtype):
    return {torch.float32: torch.FloatTensor, torch.float16: torch.HalfTensor, torch.int64: torch.LongTensor}[dtype]


def save_tar(path, state, wrap=None, view=None):
    """PyTorch 0.3's tar format: what `_legacy_load`'s legacy_load reads. Storages are keyed by
    ints; `view` = (tensor name, offset, numel) makes that tensor reach its storage through a
    storage view (the storages member's view list)."""
    storage_keys, storages = {}, []
    for v in state.values():
        ptr = v.untyped_storage().data_ptr()
        if ptr not in storage_keys:
            storage_keys[ptr] = 1000 + len(storage_keys)
            storages.append((storage_keys[ptr], v))
    s = io.BytesIO()
    pickle.dump(len(storages), s, protocol=2)
    for key, v in storages:
        pickle.dump((key, "cpu", storage_type(v.dtype)), s, protocol=2)
        raw = raw_bytes(v.untyped_storage())
        s.write(struct.pack("<q", len(raw) // v.element_size()))
        s.write(raw)
    views = []
    if view:
        name, offset, numel = view
        views.append((9000, storage_keys[state[name].untyped_storage().data_ptr()], offset, numel))
    pickle.dump(views, s, protocol=2)

    t = io.BytesIO()
    pickle.dump(len(state), t, protocol=2)
    tensor_keys = {}
    for i, (name, v) in enumerate(state.items()):
        key = 5000 + i
        tensor_keys[name] = key
        storage_key = storage_keys[v.untyped_storage().data_ptr()]
        offset = v.storage_offset()
        if view and name == view[0]:
            storage_key, offset = 9000, offset - view[1]
        pickle.dump((key, storage_key, tensor_type(v.dtype)), t, protocol=2)
        t.write(struct.pack("<i", v.dim()) + b"\0\0\0\0")
        t.write(struct.pack(f"<{v.dim()}q", *v.size()))
        t.write(struct.pack(f"<{v.dim()}q", *v.stride()))
        t.write(struct.pack("<q", offset))

    class Ref:
        def __init__(self, key):
            self.key = key

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return str(obj.key) if isinstance(obj, Ref) else None

    p = io.BytesIO()
    body = collections.OrderedDict((k, Ref(tensor_keys[k])) for k in state)
    Pickler(p, protocol=2).dump(body if wrap is None else wrap(body))

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("sys_info", pickle.dumps(dict(protocol_version=1000, little_endian=True, type_sizes=dict(short=2, int=4, long=8)), protocol=2)),
                           ("pickle", p.getvalue()), ("tensors", t.getvalue()), ("storages", s.getvalue())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(os.path.basename(path), os.path.getsize(path), "bytes")


path = os.path.join(OUT, "resnet20_tar.pth.tar")
save_tar(path, resnet20.state_dict())
check_same(path, resnet20.state_dict())

path = os.path.join(OUT, "views_tar.pth")
save_tar(path, views, view=("tail", 10, 10))
check_same(path, views)

path = os.path.join(OUT, "views_legacy.pth")
legacy_with_view(path, views, "tail", 10, 10)
check_same(path, views)

# torchvision's resnet18 (the architecture of resnet18-5c106cde.pth) in the legacy format, in
# float16 with a 10-class head to keep the file at 22 MB; a few of its tensors as torch.load
# returns them, and PyTorch's logits (float16 weights widened to float32).
resnet18 = randomize(torchvision.models.resnet18(num_classes=10)).half()
path = legacy("resnet18_legacy.pth", resnet18.state_dict())
check_same(path, resnet18.state_dict())
subset = ["conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight", "layer4.1.bn2.num_batches_tracked", "fc.weight", "fc.bias"]
expected("resnet18_subset", collections.OrderedDict((k, resnet18.state_dict()[k]) for k in subset))
logits("resnet18", resnet18.float(), 64, n=2)
