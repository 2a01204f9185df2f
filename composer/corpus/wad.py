"""Doom WAD files: find the music lumps (plain MIDI) inside an IWAD/PWAD.

A WAD is a 12-byte header (``b"IWAD"`` or ``b"PWAD"``, then the lump count and the
directory offset, both little-endian int32) and a directory of 16-byte entries (lump
offset, lump size, 8-byte NUL-padded name). Freedoom's music lumps are named ``D_*``;
most are standard MIDI files (they start with ``MThd``), which is all we keep — DMX
``MUS`` lumps would need a converter.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("<4sii")
ENTRY = struct.Struct("<ii8s")
MAGICS = (b"IWAD", b"PWAD")


class WadError(ValueError):
    """The file is not a well-formed WAD."""


@dataclass(frozen=True)
class Lump:
    name: str  # upper-case, NULs stripped
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_directory(data: bytes) -> list[tuple[str, int, int]]:
    """(name, offset, size) of every lump, in directory order; raises ``WadError``."""
    if len(data) < HEADER.size:
        raise WadError(f"too short for a WAD header ({len(data)} bytes)")
    magic, count, dir_offset = HEADER.unpack_from(data, 0)
    if magic not in MAGICS:
        raise WadError(f"bad magic {magic!r}: expected IWAD or PWAD")
    if count < 0 or dir_offset < HEADER.size or dir_offset + count * ENTRY.size > len(data):
        raise WadError(f"directory ({count} lumps at offset {dir_offset}) lies outside the file")
    entries = []
    for i in range(count):
        offset, size, raw = ENTRY.unpack_from(data, dir_offset + i * ENTRY.size)
        name = raw.split(b"\0", 1)[0].decode("ascii", "replace").upper()
        if size < 0 or offset < 0 or offset + size > len(data):
            raise WadError(f"lump {i} ({name}) lies outside the file")
        entries.append((name, offset, size))
    return entries


def midi_lumps(source: bytes | str | Path, prefix: str = "D_") -> list[Lump]:
    """The lumps whose name starts with ``prefix`` and whose data is a MIDI file."""
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    lumps = []
    for name, offset, size in read_directory(bytes(data)):
        if not name.startswith(prefix):
            continue
        body = bytes(data[offset : offset + size])
        if body.startswith(b"MThd"):
            lumps.append(Lump(name, body))
    return lumps


def unique_midi_lumps(wads: list[tuple[str, bytes | str | Path]]) -> tuple[list[tuple[str, Lump]], int]:
    """MIDI lumps of several WADs (``(wad name, wad)`` pairs), identical lumps kept once.

    Returns ``([(wad name, lump), ...], number of duplicates dropped)``; the first WAD
    that holds a lump wins, so list the WADs in a fixed order.
    """
    seen: set[str] = set()
    out, dropped = [], 0
    for wad_name, wad in wads:
        for lump in midi_lumps(wad):
            if lump.sha256 in seen:
                dropped += 1
                continue
            seen.add(lump.sha256)
            out.append((wad_name, lump))
    return out, dropped


def build_wad(lumps: list[tuple[str, bytes]], magic: bytes = b"PWAD") -> bytes:
    """A WAD holding ``lumps`` (name, data): for tests and tools."""
    body = b"".join(data for _, data in lumps)
    directory = b""
    offset = HEADER.size
    for name, data in lumps:
        directory += ENTRY.pack(offset, len(data), name.encode("ascii")[:8].ljust(8, b"\0"))
        offset += len(data)
    return HEADER.pack(magic, len(lumps), HEADER.size + len(body)) + body + directory
