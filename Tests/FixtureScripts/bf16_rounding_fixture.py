"""float32 → bfloat16 rounding as PyTorch does it, for dtrain's bf16 conversion and GEMM packing.

Writes Tests/DTrainNNTests/Fixtures/bf16_rounding.txt: one line per value, the float32 bit
pattern and the bit pattern of `torch.Tensor.bfloat16()` applied to it, both in hex. The values
cover round-to-nearest-even ties with an even and an odd last kept bit, values one unit above and
below ties, ±0, denormals (including ones that round up to the smallest normal), ±inf, NaNs with
payloads in the high and in the low half only, FLT_MAX and the ties just below it (which round to
inf), and random bit patterns over the whole finite range.

PyTorch's CPU conversion kernel writes every NaN as 0xffff (its scalar c10::BFloat16 writes
0x7fc0); dtrain keeps the sign and high payload and sets the quiet bit, as VCVTNEPS2BF16 does, so
the test compares NaNs only for being NaN.

    /work/venv-torch/bin/python Tests/FixtureScripts/bf16_rounding_fixture.py
"""
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "DTrainNNTests", "Fixtures", "bf16_rounding.txt")


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


special = [
    # ±0, ±1, small integers.
    0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x40400000,
    # Ties: the dropped half is exactly 0x8000. Last kept bit even (round down) / odd (round up).
    0x3F808000, 0xBF808000, 0x3F818000, 0xBF818000, 0x40008000, 0x40018000, 0x47FF8000, 0x477F8000,
    # One unit above / below those ties.
    0x3F808001, 0x3F807FFF, 0x3F818001, 0x3F817FFF, 0xBF808001, 0xBF807FFF, 0xBF818001, 0xBF817FFF,
    # Carries that ripple into the exponent.
    0x3FFFFFFF, 0x3FFF8000, 0x3FFF7FFF, 0x3F7F8000, 0x3F7FFFFF,
    # Denormals: smallest, ties even/odd, largest (rounds up to the smallest normal), negatives.
    0x00000001, 0x00007FFF, 0x00008000, 0x00008001, 0x00018000, 0x00010000, 0x00400000, 0x007F7FFF,
    0x007F8000, 0x007FFFFF, 0x80000001, 0x80018000, 0x807FFFFF,
    # Smallest normals.
    0x00800000, 0x00808000, 0x00818000, 0x80800000,
    # ±inf and the largest finite values: FLT_MAX rounds to inf, as does the tie below it
    # (odd last kept bit); one unit below that tie stays finite.
    0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0xFF7F8000, 0x7F7F7FFF, 0x7F7F0000,
    0x7F7E8000,
    # NaNs: quiet, negative quiet, signalling with the payload in the high half, signalling with the
    # payload only in the low half (truncation would make it inf), all ones.
    0x7FC00000, 0xFFC00000, 0x7FA00000, 0x7F800001, 0xFF800001, 0x7F80FFFF, 0x7FBFFFFF, 0x7FFFFFFF,
    0xFFFFFFFF, 0x7FC0FFFF,
]
# Some decimal values people write.
special += [f32_bits(x) for x in (0.1, -0.1, 1.0 / 3.0, 3.14159265, 1e-3, 65504.0, 1e30, -2.5e-38)]

gen = torch.Generator().manual_seed(20261202)
random_bits = torch.randint(0, 2**32, (200,), generator=gen, dtype=torch.int64).tolist()
values = special + random_bits

x = torch.tensor(values, dtype=torch.int64).to(torch.int32).view(torch.float32)
y = x.bfloat16().view(torch.int16).tolist()
with open(OUT, "w") as f:
    f.write("# float32 bits, torch.Tensor.bfloat16() bits (Tests/FixtureScripts/bf16_rounding_fixture.py, torch %s)\n"
            % torch.__version__.split("+")[0])
    for v, h in zip(values, y):
        f.write("%08x %04x\n" % (v & 0xFFFFFFFF, h & 0xFFFF))
print(OUT, len(values), "values")
