"""Tracker modules inside the files games ship: plain module files and the games' own archives.

Most games install their music as plain ``.mod``/``.xm``/``.s3m``/``.it`` files (Powermanga
names its XMs ``.zik``). Two archive formats hold the rest:

* **Allegro datafiles** (``.dat``; KBall, Kraptor): ``slh.`` + ``ALL.`` + a count of
  objects, each with optional ``prop`` records, a four-letter type (``XM  ``, ``IT  ``...),
  its stored and unpacked sizes (a negative unpacked size: the object is LZSS-packed) and
  its data; ``slh!`` packs the whole file the same way. Allegro's LZSS is Okumura's
  (4096-byte window, 18-byte matches, flag bytes read from the low bit).
* **Jump 'n Bump's** ``.dat``: a little-endian count, then 12-byte names with offset and size.

Only module objects are unpacked: a datafile's pictures are skipped unread.
"""

from __future__ import annotations

import struct

MODULE_SUFFIXES = (".mod", ".xm", ".s3m", ".it", ".stm", ".zik")  # powermanga names its XMs .zik
ARCHIVE_SUFFIXES = (".dat",)
DATAFILE_MODULE_TYPES = {b"XM  ": ".xm", b"IT  ": ".it", b"S3M ": ".s3m", b"MOD ": ".mod"}


class ArchiveError(ValueError):
    """The archive is damaged; the message says where."""


def lzss_unpack(data: bytes) -> bytes:
    """Allegro's LZSS (Okumura): flag bits from the low end, 1 a literal byte, 0 a
    (12-bit position, 4-bit length + 3) reference into a 4096-byte ring."""
    n, f = 4096, 18
    ring = bytearray(n)
    r = n - f
    out = bytearray()
    i, flags, size = 0, 0, len(data)
    while i < size:
        flags >>= 1
        if not flags & 0x100:
            flags = data[i] | 0xFF00
            i += 1
            if i >= size:
                break
        if flags & 1:
            c = data[i]
            i += 1
            out.append(c)
            ring[r] = c
            r = (r + 1) & (n - 1)
        else:
            if i + 1 >= size:
                break
            pos = data[i] | ((data[i + 1] & 0xF0) << 4)
            length = (data[i + 1] & 0x0F) + 3
            i += 2
            for k in range(length):
                c = ring[(pos + k) & (n - 1)]
                out.append(c)
                ring[r] = c
                r = (r + 1) & (n - 1)
    return bytes(out)


def datafile_modules(blob: bytes) -> list[tuple[str, bytes]]:
    """(object name + suffix, module bytes) of an Allegro datafile's module objects."""
    if blob[:4] == b"slh!":
        blob = lzss_unpack(blob[4:])
    elif blob[:4] == b"slh.":
        blob = blob[4:]
    if blob[:4] != b"ALL.":
        return []
    try:
        (count,) = struct.unpack(">i", blob[4:8])
        pos, found = 8, []
        for _ in range(count):
            name = b""
            while blob[pos : pos + 4] == b"prop":
                kind = blob[pos + 4 : pos + 8]
                (size,) = struct.unpack(">i", blob[pos + 8 : pos + 12])
                if kind == b"NAME":
                    name = blob[pos + 12 : pos + 12 + size]
                pos += 12 + size
            kind = blob[pos : pos + 4]
            stored, unpacked = struct.unpack(">ii", blob[pos + 4 : pos + 12])
            pos += 12
            if stored < 0 or pos + stored > len(blob):
                raise ArchiveError(f"an object runs past the end of the file (at byte {pos})")
            if kind in DATAFILE_MODULE_TYPES:
                data = blob[pos : pos + stored]
                found.append((name.decode("latin-1") + DATAFILE_MODULE_TYPES[kind],
                              lzss_unpack(data) if unpacked < 0 else data))
            pos += stored
    except struct.error:
        raise ArchiveError("the datafile is cut short") from None
    return found


def jumpnbump_modules(blob: bytes) -> list[tuple[str, bytes]]:
    """(entry name, module bytes) of a Jump 'n Bump level archive's module entries."""
    if len(blob) < 4:
        return []
    (count,) = struct.unpack("<i", blob[:4])
    if not 0 < count < 10_000 or 4 + 20 * count > len(blob):
        return []
    found = []
    for k in range(count):
        raw = blob[4 + 20 * k : 24 + 20 * k]
        name = raw[:12].split(b"\0", 1)[0].decode("latin-1")
        offset, size = struct.unpack("<ii", raw[12:20])
        if name.lower().endswith(MODULE_SUFFIXES) and 0 <= offset and offset + size <= len(blob):
            found.append((name, blob[offset : offset + size]))
    return found


def modules_in(name: str, blob: bytes) -> list[tuple[str, bytes]]:
    """The modules a file holds: itself if it is one, or those inside a known archive
    (each named ``file#entry``)."""
    lower = name.lower()
    if lower.endswith(MODULE_SUFFIXES):
        return [(name, blob)]
    if lower.endswith(ARCHIVE_SUFFIXES):
        inner = datafile_modules(blob) if blob[:3] == b"slh" else jumpnbump_modules(blob)
        return [(f"{name}#{entry}", data) for entry, data in inner]
    return []
