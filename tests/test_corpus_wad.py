"""WAD lump extraction (Freedoom's music lives in MIDI lumps named D_*)."""

from __future__ import annotations

import struct

import pytest

from composer.corpus.wad import WadError, build_wad, midi_lumps, read_directory, unique_midi_lumps

MIDI_A = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60" + b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00"
MIDI_B = MIDI_A.replace(b"\x00\x60", b"\x00\x78", 1)
MUS = b"MUS\x1a" + bytes(12)


def tiny_wad() -> bytes:
    return build_wad(
        [
            ("PLAYPAL", bytes(48)),
            ("D_E1M1", MIDI_A),
            ("D_INTRO", MUS),  # DMX MUS, not MIDI: skipped
            ("DEMO1", MIDI_B),  # MIDI but not a music lump name
            ("D_RUNNIN", MIDI_B),
        ],
        magic=b"IWAD",
    )


def test_directory_matches_the_format():
    wad = tiny_wad()
    magic, count, offset = struct.unpack_from("<4sii", wad)
    assert (magic, count) == (b"IWAD", 5)
    entries = read_directory(wad)
    assert [name for name, _, _ in entries] == ["PLAYPAL", "D_E1M1", "D_INTRO", "DEMO1", "D_RUNNIN"]
    name, start, size = entries[1]
    assert wad[start : start + size] == MIDI_A and offset == 12 + 48 + len(MIDI_A) + len(MUS) + 2 * len(MIDI_B)


def test_midi_lumps_keeps_only_d_lumps_starting_with_mthd(tmp_path):
    path = tmp_path / "tiny.wad"
    path.write_bytes(tiny_wad())
    lumps = midi_lumps(path)
    assert [(l.name, l.data) for l in lumps] == [("D_E1M1", MIDI_A), ("D_RUNNIN", MIDI_B)]
    assert midi_lumps(tiny_wad()) == lumps


def test_identical_lumps_across_wads_are_kept_once():
    other = build_wad([("D_E1M1", MIDI_A), ("D_DM2TTL", MIDI_A + b"\x00")])
    lumps, dropped = unique_midi_lumps([("freedoom1.wad", tiny_wad()), ("freedoom2.wad", other)])
    assert dropped == 1
    assert [(w, l.name) for w, l in lumps] == [
        ("freedoom1.wad", "D_E1M1"),
        ("freedoom1.wad", "D_RUNNIN"),
        ("freedoom2.wad", "D_DM2TTL"),
    ]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PWAD", "too short"),
        (b"ZWAD" + bytes(8), "bad magic"),
        (struct.pack("<4sii", b"PWAD", 3, 12), "outside the file"),
        (struct.pack("<4sii", b"PWAD", 1, 12) + struct.pack("<ii8s", 12, 999, b"D_X"), "lump 0 .*outside"),
    ],
    ids=["short", "magic", "directory", "lump"],
)
def test_malformed_wads_raise_wad_error(data, message):
    with pytest.raises(WadError, match=message):
        read_directory(data)
