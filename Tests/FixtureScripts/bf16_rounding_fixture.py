"""Prints the table of MixedPrecisionTests.torchRounding: float32 bit patterns and the bfloat16
bit patterns PyTorch's `.bfloat16()` gives them (round to nearest even; every NaN to 0xFFFF).

    python Tests/FixtureScripts/bf16_rounding_fixture.py
"""
import struct

import torch

bits = [
    0x00000000, 0x80000000,              # ±0
    0x3F800000, 0x3F808000, 0x3F818000,  # 1; ties to even: 1 + 2^-8 (down), 1 + 3·2^-8 (up)
    0x3F807FFF, 0x3F808001,              # just below / above a tie
    0xBF808000, 0xBF818000,              # negative ties
    0x3F7FFFFF, 0x3F7F8000,              # just below 1: rounds up to 1
    0x00000001, 0x00008000, 0x00018000,  # denormals, including ties
    0x007FFFFF, 0x00800000,              # largest denormal, smallest normal
    0x7F7FFFFF, 0x7F7F7FFF, 0xFF7FFFFF,  # FLT_MAX rounds to inf; just below stays finite
    0x7F800000, 0xFF800000,              # ±inf
    0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF,  # NaNs: quiet, signalling, negative, payload
    0x40490FDB, 0xC02DF854, 0x3DCCCCCD,  # pi, -e, 0.1
]
rows = []
for b in bits:
    x = torch.tensor([struct.unpack("<f", struct.pack("<I", b))[0]], dtype=torch.float32)
    h = x.bfloat16().view(torch.int16).item() & 0xFFFF
    rows.append(f"(0x{b:08X}, 0x{h:04X})")
print("[" + ", ".join(rows) + "]")
