"""Small .pth files written by torch.save, and the tensors they must give, for dtrain's .pth reader.

Writes into Tests/DTrainWeightsTests/Fixtures/pth/:
  two_layer.pth          state_dict of nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
  dtypes.pth             float16, bfloat16 and int64 entries (a 0-d num_batches_tracked, negative
                         and large int64 values) and a tensor saved as an nn.Parameter
  views.pth              a transposed (non-contiguous) tensor, two tensors sharing one storage at
                         offsets, a permuted 3-d view and an expanded (stride 0) view
  protocol4.pth          two_layer's state_dict saved with pickle_protocol=4 (STACK_GLOBAL, MEMOIZE, FRAME)
  wrapped_checkpoint.pth a training script's checkpoint: {"epoch", "state_dict" (two_layer's, keys
                         prefixed "module." as DistributedDataParallel saves them), "optimizer"
                         (SGD with momentum after one step), "best_acc"}
  NAME.safetensors       for each of the above, the same tensors made contiguous: the expected values
  float64.pth            a float64 tensor (a dtype dtrain refuses)
  malicious_global.pth   torch.save's layout with a data.pkl that calls os.system via GLOBAL + REDUCE
  malicious_stack_global.pth  the same via STACK_GLOBAL (protocol 4)
  malicious_builtins.pth builtins.eval via GLOBAL, hidden inside a tensor's argument tuple
  expand_bomb.pth        three stride-0 views of one float, each 1 GiB when copied out: 3 GiB from
                         a 4-byte storage in a file of about 1 KB

    /path/to/python Tests/FixtureScripts/pth_fixtures.py
"""
import collections
import io
import os
import pickle
import zipfile

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainWeightsTests", "Fixtures", "pth")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(20261123)


def save(name, state, **kwargs):
    torch.save(state, os.path.join(OUT, name + ".pth"), **kwargs)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, os.path.join(OUT, name + ".safetensors"))
    print(name, {k: (tuple(v.shape), str(v.dtype), v.stride(), v.storage_offset()) for k, v in state.items()})


net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
save("two_layer", net.state_dict())
save("protocol4", net.state_dict(), pickle_protocol=4)


def save_wrapped_checkpoint():
    """A checkpoint as training scripts write it, around two_layer's weights."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model.load_state_dict(torch.load(os.path.join(OUT, "two_layer.pth"), weights_only=True))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    optimizer_state = opt.state_dict()
    # The weights saved are two_layer's again, so the expected tensors are two_layer.safetensors.
    model.load_state_dict(torch.load(os.path.join(OUT, "two_layer.pth"), weights_only=True))
    wrapped = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save({"epoch": 3, "state_dict": wrapped, "optimizer": optimizer_state, "best_acc": 0.5},
               os.path.join(OUT, "wrapped_checkpoint.pth"))
    print("wrapped_checkpoint", list(wrapped))


save_wrapped_checkpoint()

dtypes = collections.OrderedDict()
dtypes["half"] = torch.randn(2, 3).half()
dtypes["bfloat"] = torch.randn(5).bfloat16()
dtypes["bn.num_batches_tracked"] = torch.tensor(12345, dtype=torch.int64)
dtypes["ints"] = torch.tensor([-1, 0, 7, -(2**40), 2**62], dtype=torch.int64)
dtypes["param"] = torch.nn.Parameter(torch.randn(2, 2))
save("dtypes", dtypes)

base = torch.randn(4, 5)
cube = torch.randn(2, 3, 4)
views = collections.OrderedDict()
views["transposed"] = base.t()
views["rows"] = base[1:3]
views["tail"] = base.view(-1)[13:]
views["permuted"] = cube.permute(2, 0, 1)
views["expanded"] = torch.randn(3, 1).expand(3, 4)
views["column"] = base[:, 2]
assert not views["transposed"].is_contiguous() and views["rows"].storage_offset() == 5
save("views", views)

torch.save({"x": torch.randn(3, dtype=torch.float64)}, os.path.join(OUT, "float64.pth"))


class Exploit:
    """Unpickling this runs os.system: what a restricted reader must never do."""

    def __reduce__(self):
        return (os.system, ("echo dtrain-must-not-run-this",))


def with_pickle(name, payload):
    """two_layer.pth with its data.pkl replaced by `payload`."""
    src = zipfile.ZipFile(os.path.join(OUT, "two_layer.pth"))
    with zipfile.ZipFile(os.path.join(OUT, name + ".pth"), "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            data = payload if info.filename.endswith("data.pkl") else src.read(info.filename)
            z.writestr(info.filename, data)
    print(name, payload[:60])


with_pickle("malicious_global", pickle.dumps(collections.OrderedDict(w=Exploit()), protocol=2))
with_pickle("malicious_stack_global", pickle.dumps(collections.OrderedDict(w=Exploit()), protocol=4))
# builtins.eval reached only through a nested tuple: refused when the GLOBAL is read.
evil = (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
        b"cbuiltins\neval\nX\x07\x00\x00\x00print()\x85Rtu.")
with_pickle("malicious_builtins", evil)


def save_expand_bomb():
    one = torch.zeros(1)
    torch.save({k: one.expand(1 << 28) for k in ("a", "b", "c")}, os.path.join(OUT, "expand_bomb.pth"))


save_expand_bomb()
