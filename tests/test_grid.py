"""The multi-voice grid: import, role reduction, export, transposition, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from composer.music import tokens as T
from composer.errors import (
    CorruptMidiError,
    DrumsOnlyError,
    EmptyMidiError,
    MidiTooLargeError,
    TranspositionError,
)
from composer.music.grid import Piece, estimate_key, frames_per_bar, parse_key
from composer.music.midi_io import import_midi, to_midi


def _score(tracks, tpq=480, ts=(4, 4), qpm=120.0) -> bytes:
    """tracks: list of (name, is_drum, [(start_quarters, dur_quarters, pitch), ...])."""
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, qpm=qpm))
    score.time_signatures.append(symusic.TimeSignature(0, *ts))
    for name, is_drum, notes in tracks:
        track = symusic.Track(name=name, program=0, is_drum=is_drum)
        for start, dur, pitch in notes:
            track.notes.append(symusic.Note(int(start * tpq), int(dur * tpq), pitch, 90))
        score.tracks.append(track)
    return bytes(score.dumps_midi())


@pytest.fixture(scope="module")
def chorale():
    from music21 import corpus

    return corpus.parse("bach/bwv66.6")


def test_bach_chorale_round_trips_through_midi(chorale):
    from composer.music.music21_io import from_stream

    piece = from_stream(chorale, composer="bach")
    # Every part's notes land in its own voice at the right 16th (the chorale has a
    # one-beat pickup, padded so bar lines fall on the grid's bars).
    pickup = piece.frames_per_bar - 4
    for voice, part in enumerate(chorale.parts):
        expected = [
            (int(round(float(n.offset) * 4)) + pickup, n.pitch.midi)
            for n in part.stripTies().flatten().notes
        ]
        got = [(n.start, n.pitch) for n in piece.notes(voice)]
        assert got == expected, part.partName
    again = import_midi(to_midi(piece))
    assert np.array_equal(again.grid, piece.grid)
    assert again.time_signature == (4, 4)
    assert again.n_bars == piece.n_bars


def test_game_midi_roles_drums_lead_bass():
    bass = [(i, 1, 36 + (i % 2) * 7) for i in range(8)]
    melody = [(i * 0.5, 0.5, 72 + (i % 5)) for i in range(16)]
    pad = [(0, 4, 60), (4, 4, 62)]
    drums = [(i, 0.25, 36 if i % 2 == 0 else 38) for i in range(8)] + [(i + 0.5, 0.25, 42) for i in range(8)]
    data = _score([("Bass", False, bass), ("Drums", True, drums), ("Melody", False, melody), ("Pad", False, pad)])
    piece = import_midi(data)
    lead = [n.pitch for n in piece.notes(T.VOICE_INDEX["lead"])]
    low = [n.pitch for n in piece.notes(T.VOICE_INDEX["bass"])]
    assert lead == [p for _, _, p in melody]
    assert low == [p for _, _, p in bass]
    assert [n.pitch for n in piece.notes(T.VOICE_INDEX["counter"])] == [60, 62]
    drum_column = piece.grid[:, T.DRUM_VOICE]
    assert drum_column[0] == T.drum_token("kick")
    assert drum_column[4] == T.drum_token("snare")
    assert drum_column[2] == T.drum_token("hat")
    assert piece.n_bars == 2 and piece.tempo == 120.0


def test_chord_tones_of_a_single_piano_part_are_spread_over_voices():
    chords = [(0, 2, p) for p in (48, 60, 64, 67)] + [(2, 2, p) for p in (43, 59, 62, 67)]
    piece = import_midi(_score([("Piano", False, chords)]))
    tops = [n.pitch for n in piece.notes(T.VOICE_INDEX["lead"])]
    bottoms = [n.pitch for n in piece.notes(T.VOICE_INDEX["bass"])]
    assert tops == [67, 67] and bottoms == [48, 43]
    middle = sorted(n.pitch for v in ("counter", "harmony") for n in piece.notes(T.VOICE_INDEX[v]))
    assert middle == [59, 60, 62, 64]


def test_three_four_keeps_twelve_frames_a_bar():
    notes = [(i, 1, 60 + i % 3) for i in range(9)]
    piece = import_midi(_score([("Lead", False, notes)], ts=(3, 4)))
    assert piece.time_signature == (3, 4)
    assert piece.frames_per_bar == 12
    assert piece.n_frames == 3 * 12
    assert frames_per_bar((6, 8)) == 12


def test_transposition_stays_in_range_or_refuses():
    piece = Piece.empty(1)
    piece.grid[0, 0] = T.onset(100)
    piece.grid[0, 3] = T.onset(30)
    piece.key = "C major"
    up = piece.transpose(5)
    assert up.pitch_range() == (35, 105) and up.key == "F major"
    lo, hi = piece.transposition_range()
    assert (lo, hi) == (T.PITCH_MIN - 30, T.PITCH_MAX - 100)
    with pytest.raises(TranspositionError, match="Allowed shifts"):
        piece.transpose(hi + 1)
    with pytest.raises(TranspositionError, match=f"Cannot transpose by {lo - 1:+d} semitones"):
        piece.transpose(lo - 1)


def test_serialisation_round_trip():
    piece = import_midi(_score([("A", False, [(0, 1, 60), (1, 3, 64)])]), game="doom")
    piece.sections = ["A"]
    piece.extra["seed"] = 7
    again = Piece.from_bytes(piece.to_bytes())
    assert again == piece
    again.grid[0, 0] = T.REST
    assert again != piece


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", EmptyMidiError),
        (b"RIFF....WAVEfmt ", CorruptMidiError),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff\xff", CorruptMidiError),
    ],
    ids=["empty", "not-midi", "truncated"],
)
def test_bad_files_raise_clear_errors(data, error):
    with pytest.raises(error) as info:
        import_midi(data)
    assert str(info.value)  # a message a user can read


def test_zero_note_and_drums_only_files():
    with pytest.raises(EmptyMidiError, match="no notes"):
        import_midi(_score([("Empty", False, [])]))
    with pytest.raises(DrumsOnlyError, match="only drums"):
        import_midi(_score([("Kit", True, [(0, 1, 36), (1, 1, 38)])]))


def test_enormous_files_are_refused_before_work():
    with pytest.raises(MidiTooLargeError, match="limit"):
        import_midi(b"MThd" + bytes(5_000_000))
    many = [(i * 0.25, 0.25, 60 + i % 12) for i in range(3000)]
    with pytest.raises(MidiTooLargeError, match="notes"):
        import_midi(_score([("Lead", False, many)]), max_notes=1000)
    long = [(0, 1, 60), (40_000, 1, 62)]  # 10,000 bars
    with pytest.raises(MidiTooLargeError, match="bars"):
        import_midi(_score([("Lead", False, long)]))
    # Cropping keeps the beginning instead of refusing.
    assert import_midi(_score([("Lead", False, long)]), crop_bars=16).n_bars == 16


def test_key_estimation_and_parsing():
    piece = Piece.empty(2)
    for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72]):
        piece.grid[i * 4, 0] = T.onset(p)
        piece.grid[i * 4 + 1 : i * 4 + 4, 0] = T.HOLD
    assert estimate_key(piece) == "C major"
    assert parse_key("f#") == (6, "minor")
    assert parse_key("Bb major") == (10, "major")
