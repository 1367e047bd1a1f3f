"""Generates the small image fixtures of DTrainDataTests and the pixels Pillow decodes them to.

Run once with a Python that has Pillow and numpy; the outputs are committed, so the tests need
neither. `expected.json` maps each file to {"width", "height", "rgb": [...]}: what
`Image.open(f).convert("RGB")` gives (torchvision ImageFolder's loader), except for 16-bit files,
where it holds round(v / 257), libpng's 16-to-8-bit scaling (Pillow clips 16-bit grey to 255 and
takes the high byte of 16-bit colour, both within 1 level or meaningless).
"""
import io, json, os
import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
W, H = 5, 4
rng = np.random.default_rng(7)
expected = {}


def save(name, img, rgb=None, **kw):
    path = os.path.join(here, name)
    img.save(path, **kw)
    if rgb is None:
        rgb = np.asarray(Image.open(path).convert("RGB"))
    expected[name] = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                      "rgb": [int(v) for v in np.asarray(rgb, dtype=np.uint8).reshape(-1)]}


rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
alpha = rng.integers(0, 256, (H, W), dtype=np.uint8)
alpha[0, 0] = 0  # a fully transparent pixel keeps its colour when alpha is dropped

save("rgb8.png", Image.fromarray(rgb))
save("gray8.png", Image.fromarray(gray))
save("graya8.png", Image.fromarray(np.dstack([gray, alpha])))
save("rgba8.png", Image.fromarray(np.dstack([rgb, alpha])))

pal = Image.fromarray(rgb).quantize(colors=6)
save("palette.png", pal)
pal_t = pal.copy()
pal_t.info["transparency"] = 2
save("palette_trns.png", pal_t, transparency=2)

# 16-bit files are written by hand (Pillow cannot write 16-bit colour PNGs).
import struct, zlib


def png16(path, arr):  # arr: H x W [x C] uint16, C = 1 (grey), 3 (RGB) or 4 (RGBA)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    ctype = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


gray16 = rng.integers(0, 65536, (H, W), dtype=np.uint16)
png16(os.path.join(here, "gray16.png"), gray16)
expected["gray16.png"] = {"width": W, "height": H, "rgb": [
    int(v) for v in np.repeat(np.rint(gray16 / 257.0)[:, :, None], 3, axis=2).astype(np.uint8).reshape(-1)]}
rgb16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
png16(os.path.join(here, "rgb16.png"), rgb16)
expected["rgb16.png"] = {"width": W, "height": H,
                         "rgb": [int(v) for v in np.rint(rgb16 / 257.0).astype(np.uint8).reshape(-1)]}
rgba16 = np.dstack([rgb16, (alpha.astype(np.uint16) * 257)])
png16(os.path.join(here, "rgba16.png"), rgba16)
expected["rgba16.png"] = dict(expected["rgb16.png"])

# JPEGs: a CMYK one (Pillow writes Adobe-inverted CMYK) and a greyscale one, smooth content so
# JPEG error stays small; expected is Pillow's decode, compared with a tolerance.
yy, xx = np.mgrid[0:12, 0:16]
smooth = np.dstack([xx * 12, yy * 16, 255 - xx * 8]).astype(np.uint8)
cmyk = Image.fromarray(smooth).convert("CMYK")
save("cmyk.jpg", cmyk, quality=95)
save("gray.jpg", Image.fromarray((xx * 10 + yy * 5).astype(np.uint8)), quality=95)

with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(expected, f, sort_keys=True, separators=(",", ":"))
    f.write("\n")
