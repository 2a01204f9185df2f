"""Damaged MIDI files: every one imports into a valid Piece or raises a MozartError.

Uploads to /remix and folders given to the corpus builder are arbitrary bytes. Before this
test, about one mutant in thirty crashed the importer (a zero time division reached the
reduction as infinite note times and failed with an IndexError).
"""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
import symusic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.music import tokens as T
from composer.errors import MozartError
from composer.music.grid import Piece
from composer.music.midi_io import TICKS_PER_QUARTER, import_midi, to_midi


def _our_export() -> bytes:
    """What Mozart writes: one named track per voice, drums included, 3/4."""
    piece = Piece.empty(2, (3, 4), tempo=96.0)
    for f in range(0, piece.n_frames, 3):
        piece.grid[f, 0] = T.onset(67 + f % 7)
        piece.grid[f, 3] = T.onset(43)
        piece.grid[f, T.DRUM_VOICE] = T.drum_token("kick" if f % 6 else "snare")
    return to_midi(piece)


def _game_midi() -> bytes:
    """A type-1 game-style file: tempo changes, pitch bends, sysex, text, four tracks."""
    f = mido.MidiFile(type=1, ticks_per_beat=96)
    conductor = mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=4, denominator=4),
        mido.MetaMessage("set_tempo", tempo=500_000),
        mido.MetaMessage("set_tempo", tempo=405_405, time=96),
        mido.MetaMessage("marker", text="loop", time=96),
    ])
    f.tracks.append(conductor)
    for channel, name, pitches in ((0, "Melody", (72, 74, 79)), (1, "Bass", (36, 43)), (9, "Drums", (36, 42))):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name),
                                mido.Message("program_change", channel=channel, program=33),
                                mido.Message("sysex", data=(0x7E, 0x7F, 0x09, 0x01))])
        for i in range(8):
            pitch = pitches[i % len(pitches)]
            track += [mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=0 if i == 0 else 24),
                      mido.Message("pitchwheel", channel=channel, pitch=512, time=1),
                      mido.Message("note_off", channel=channel, note=pitch, time=47)]
        f.tracks.append(track)
    out = io.BytesIO()
    f.save(file=out)
    return out.getvalue()


def _running_status_type0() -> bytes:
    """A hand-written type-0 file using running status (velocity-0 note-ons as offs)."""
    events = bytes([0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20])  # tempo 500,000 us
    events += bytes([0x00, 0x90, 60, 100])
    for pitch in (62, 64, 65, 67, 69):  # running status: no status byte after the first
        events += bytes([0x60, pitch - 2, 0, 0x00, pitch, 100])
    events += bytes([0x60, 69, 0, 0x00, 0xFF, 0x2F, 0x00])
    header = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0x01, 0xE0])
    return header + b"MTrk" + len(events).to_bytes(4, "big") + events


SEEDS = [_our_export(), _game_midi(), _running_status_type0()]
INTERESTING_16 = [0, 1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xFFFF]
INTERESTING_32 = [0, 1, 6, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]

position = st.integers(0, 1 << 16)  # taken modulo the file's length
flip = st.tuples(st.just("flip"), position, st.integers(0, 255))
bit = st.tuples(st.just("bit"), position, st.integers(0, 7))
truncate = st.tuples(st.just("truncate"), position, st.just(0))
insert = st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16))
delete = st.tuples(st.just("delete"), position, st.integers(1, 32))
duplicate = st.tuples(st.just("duplicate"), position, st.integers(1, 64))
header = st.tuples(st.just("header"), st.sampled_from([8, 10, 12]),  # format, ntracks, division
                   st.sampled_from(INTERESTING_16) | st.integers(0, 0xFFFF))
chunk_length = st.tuples(st.just("length"), st.integers(0, 7),  # MThd's, or the n-th MTrk's
                         st.sampled_from(INTERESTING_32) | st.integers(0, 0xFFFFFFFF))
mutation = st.one_of(flip, bit, truncate, insert, delete, duplicate, header, chunk_length)


def mutate(data: bytes, mutations) -> bytes:
    d = bytearray(data)
    for kind, where, what in mutations:
        i = where % (len(d) + 1)
        if kind == "flip" and i < len(d):
            d[i] = what
        elif kind == "bit" and i < len(d):
            d[i] ^= 1 << what
        elif kind == "truncate":
            del d[i:]
        elif kind == "insert":
            d[i:i] = what
        elif kind == "delete":
            del d[i : i + what]
        elif kind == "duplicate":
            d[i:i] = d[i : i + what]
        elif kind == "header":
            d[where : where + 2] = what.to_bytes(2, "big")
        elif kind == "length":
            starts = [4] + [k + 4 for k in range(len(d)) if d.startswith(b"MTrk", k)]
            at = starts[where % len(starts)]
            d[at : at + 4] = what.to_bytes(4, "big")
    return bytes(d)


def check_import(data: bytes, crop_bars: int | None) -> None:
    try:
        piece = import_midi(data, crop_bars=crop_bars)
    except MozartError as e:
        assert len(str(e)) > 10, repr(e)  # a sentence for the user, not a bare code
        return
    n, voices = piece.grid.shape
    assert voices == T.N_VOICES and n > 0 and n % piece.frames_per_bar == 0
    assert crop_bars is None or piece.n_bars <= crop_bars
    assert np.isfinite(piece.tempo) and 20 <= piece.tempo <= 400
    assert 0 < piece.seconds < 1e5
    # ...and what was imported exports to a file exactly n_bars long.
    ends = [sum(m.time for m in t) for t in mido.MidiFile(file=io.BytesIO(to_midi(piece))).tracks]
    assert set(ends) == {piece.n_bars * piece.frames_per_bar * TICKS_PER_QUARTER // T.FRAMES_PER_QUARTER}


def test_seeds_are_valid_midi():
    for data in SEEDS:
        assert symusic.Score.from_midi(data).note_num() > 0
        assert import_midi(data).note_count() > 0


@settings(max_examples=4000, deadline=250, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(mutation, min_size=1, max_size=4),
       crop_bars=st.none() | st.integers(1, 8))
@pytest.mark.slow
def test_mutated_midi_imports_or_raises_a_mozart_error(seed, mutations, crop_bars):
    check_import(mutate(seed, mutations), crop_bars)
