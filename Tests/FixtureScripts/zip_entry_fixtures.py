#!/usr/bin/env python3
"""Writes Tests/DTrainWeightsTests/Fixtures/pth/zip64_entry_offset_overflow.pth: two_layer.pth
(a torch.save zip) whose first central-directory entry gives its local header's offset in a
ZIP64 extra field as 2^63 + 5, beyond any off_t. dtrain must refuse it with a one-line error
naming the file (ZipDirectoryBounds) instead of trapping in the zip library. Standard library only.
"""
import pathlib
import struct

here = pathlib.Path(__file__).resolve().parent
fixtures = here.parent / "DTrainWeightsTests" / "Fixtures" / "pth"
data = bytearray((fixtures / "two_layer.pth").read_bytes())

end = data.rfind(b"PK\x05\x06")
record = data.rfind(b"PK\x06\x06")  # torch.save writes a ZIP64 end record and its locator
locator = data.rfind(b"PK\x06\x07")
assert record != -1 and locator != -1
cd_size, cd_offset = struct.unpack_from("<QQ", data, record + 40)
entry = cd_offset
assert data[entry:entry + 4] == b"PK\x01\x02"
name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, entry + 28)
extra_at = entry + 46 + name_len + extra_len
struct.pack_into("<I", data, entry + 42, 0xFFFFFFFF)
struct.pack_into("<H", data, entry + 30, extra_len + 12)
data[extra_at:extra_at] = struct.pack("<HHQ", 0x0001, 8, (1 << 63) + 5)
# Everything after the directory moved 12 bytes: the records, and the locator's pointer.
record, locator, end = record + 12, locator + 12, end + 12
struct.pack_into("<Q", data, record + 40, cd_size + 12)
struct.pack_into("<Q", data, locator + 8, struct.unpack_from("<Q", data, locator + 8)[0] + 12)
plain_size = struct.unpack_from("<I", data, end + 12)[0]
if plain_size != 0xFFFFFFFF:
    struct.pack_into("<I", data, end + 12, plain_size + 12)
(fixtures / "zip64_entry_offset_overflow.pth").write_bytes(bytes(data))
print("wrote", len(data), "bytes")
