#!/usr/bin/env python3
"""How far a 3×3 convolution computed by Winograd with bf16 products lands from the exact one.

A numerics experiment for BENCHMARKS.md (the bf16 Winograd lever); never run by tests or CI.

dtrain's bf16 convolutions round x and w to bf16 and accumulate in float32, as PyTorch's CPU
autocast does. Its Winograd kernels transform the rounded operands and multiply the transformed
values in float32. Multiplying them in bf16 (VDPBF16PS) would need the transformed input V and
weights U rounded to bf16 as well. This computes, for post-ReLU inputs and He-initialised
weights, the relative error against the float64 convolution of the unrounded operands:

  direct, bf16 operands       what autocast's convolution computes (exact sums)
  F(m×m), float32 products    dtrain today
  F(m×m), bf16 V and U        the bf16-product lever

as ‖y − y_ref‖ / ‖y_ref‖ and max |y − y_ref| / max |y_ref|, for m = 4 and 2.
Usage: winograd_bf16_error.py (needs torch).
"""
import torch

BT4 = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
G4 = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
AT4 = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
BT2 = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
G2 = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
AT2 = [[1, 1, 1, 0], [0, 1, -1, -1]]


def bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


def winograd(x, w, m, round_products):
    """Winograd F(m×m, 3×3), stride 1, padding 1, in float32; V and U rounded to bf16 if asked."""
    bt, g, at = (torch.tensor(t, dtype=torch.float32) for t in ((BT4, G4, AT4) if m == 4 else (BT2, G2, AT2)))
    n, c, h, wd = x.shape
    o = w.shape[0]
    a = m + 2
    th, tw = (h + m - 1) // m, (wd + m - 1) // m
    xp = torch.nn.functional.pad(x, (1, 1 + th * m - wd, 1, 1 + th * m - h))
    patches = xp.unfold(2, a, m).unfold(3, a, m)            # n c th tw a a
    v = bt @ patches @ bt.T
    u = g @ w @ g.T                                          # o c a a
    if round_products:
        v, u = bf16(v), bf16(u)
    mm = torch.einsum('nctwij,ocij->notwij', v, u)
    y = at @ mm @ at.T                                       # n o th tw m m
    return y.permute(0, 1, 2, 4, 3, 5).reshape(n, o, th * m, tw * m)[:, :, :h, :wd]


def main():
    torch.manual_seed(0)
    print("| channels | computation | relative L2 error | relative max error |")
    print("| ---: | --- | ---: | ---: |")
    for c in (16, 64, 256):
        x = torch.relu(torch.randn(4, c, 16, 16, dtype=torch.float64))
        w = torch.randn(c, c, 3, 3, dtype=torch.float64) * (2 / (9 * c)) ** 0.5
        ref = torch.nn.functional.conv2d(x, w, padding=1)
        xb, wb = bf16(x.float()), bf16(w.float())
        rows = [("direct, bf16 operands (autocast)", torch.nn.functional.conv2d(xb.double(), wb.double(), padding=1))]
        for m in (4, 2):
            rows.append((f"F({m}×{m}), float32 products (dtrain)", winograd(xb, wb, m, False)))
            rows.append((f"F({m}×{m}), bf16 V and U", winograd(xb, wb, m, True)))
        for name, y in rows:
            d = y.double() - ref
            print(f"| {c} | {name} | {(d.norm() / ref.norm()).item():.4f} | "
                  f"{(d.abs().max() / ref.abs().max()).item():.4f} |")


if __name__ == "__main__":
    main()
