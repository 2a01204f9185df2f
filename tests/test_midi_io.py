"""MIDI import timing (tempo maps, damaged headers) and the exact length of exported files."""

from __future__ import annotations

import io

import mido
import numpy as np
import pretty_midi
import pytest
import symusic

from composer.music import tokens as T
from composer.errors import CorruptMidiError
from composer.music.grid import Piece
from composer.music.midi_io import TICKS_PER_QUARTER, import_midi, to_midi

TPQ = 480


def _midi(tempi, bars=4, ts=(4, 4), tpq=TPQ) -> bytes:
    """Quarter notes filling ``bars`` bars (lead and bass); ``tempi``: [(quarter, qpm)]."""
    score = symusic.Score(tpq)
    for quarter, qpm in tempi:
        score.tempos.append(symusic.Tempo(int(quarter * tpq), qpm=qpm))
    score.time_signatures.append(symusic.TimeSignature(0, *ts))
    quarters = bars * ts[0] * 4 // ts[1]
    for name, base in (("Melody", 72), ("Bass", 40)):
        track = symusic.Track(name=name, program=0, is_drum=False)
        for q in range(quarters):
            track.notes.append(symusic.Note(q * tpq, tpq, base + q % 5, 90))
        score.tracks.append(track)
    return bytes(score.dumps_midi())


def _true_seconds(data: bytes) -> float:
    """The file's real duration by two independent readers (they must agree)."""
    by_symusic = symusic.Score.from_midi(data).to("second").end()
    by_pretty_midi = pretty_midi.PrettyMIDI(io.BytesIO(data)).get_end_time()
    assert by_symusic == pytest.approx(by_pretty_midi, rel=1e-5)
    return by_pretty_midi


# -- tempo maps ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tempi, bars, ts, expected_tempo",
    [
        # 120 -> 148 on beat 2: the first tempo alone rendered 8.00 s instead of 6.58 s.
        ([(0, 120), (1, 148)], 4, (4, 4), 145.87),
        # Accelerando: 80, 90, ... 150 bpm, one step a bar over 8 bars.
        ([(4 * i, 80 + 10 * i) for i in range(8)], 8, (4, 4), 110.29),
        # No tempo event until bar 2: MIDI plays 120 bpm before it.
        ([(3, 60)], 4, (3, 4), 68.57),
        # A ritardando in 6/8 (tempo in quarter notes).
        ([(0, 132), (9, 66)], 4, (6, 8), 105.6),
    ],
    ids=["120-to-148", "accelerando", "late-first-tempo", "six-eight-ritardando"],
)
def test_tempo_map_keeps_the_real_length(tempi, bars, ts, expected_tempo):
    data = _midi(tempi, bars, ts)
    piece = import_midi(data)
    assert piece.n_bars == bars and piece.time_signature == ts
    assert piece.seconds == pytest.approx(_true_seconds(data), rel=1e-3)
    assert piece.tempo == pytest.approx(expected_tempo, abs=0.01)


def test_constant_tempo_is_unchanged():
    for qpm in (120.0, 133.33, 72.5):
        data = _midi([(0, qpm)])
        piece = import_midi(data)
        assert piece.tempo == qpm
        assert piece.seconds == pytest.approx(_true_seconds(data), rel=1e-5)
    assert import_midi(_midi([])).tempo == 120.0  # no tempo event at all: MIDI's default


def test_cropping_averages_only_the_bars_kept():
    # 4 bars at 100 bpm, then 4 bars at 200 bpm: the first 4 bars play at exactly 100.
    data = _midi([(0, 100), (16, 200)], bars=8)
    assert import_midi(data, crop_bars=4).tempo == 100.0
    whole = import_midi(data)
    assert whole.tempo == pytest.approx(133.33, abs=0.01)
    assert whole.seconds == pytest.approx(_true_seconds(data), rel=1e-4)  # 14.4 s


def test_absurd_tempi_are_ignored_or_clamped():
    zero = _midi([(0, 120)])
    f = mido.MidiFile(file=io.BytesIO(zero))
    for msg in f.tracks[0]:
        if msg.type == "set_tempo":
            msg.tempo = 0  # division by zero in any naive reader
    out = io.BytesIO()
    f.save(file=out)
    assert import_midi(out.getvalue()).tempo == 120.0
    assert import_midi(_midi([(0, 2000)])).tempo == 400.0
    assert import_midi(_midi([(0, 5)])).tempo == 20.0


@pytest.mark.parametrize("division", [0x0000, 0xE728], ids=["zero", "smpte"])
def test_unusable_time_division_is_a_corrupt_file(division):
    data = bytearray(_midi([(0, 120)]))
    data[12:14] = division.to_bytes(2, "big")
    with pytest.raises(CorruptMidiError, match="could not be read as MIDI"):
        import_midi(bytes(data))


def test_notes_past_int32_ticks_are_dropped_or_refused():
    """Delta times summing past 2**31 ticks wrap to negative times in symusic."""
    f = mido.MidiFile(type=1, ticks_per_beat=1)
    track = mido.MidiTrack()
    f.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=4)]
    for _ in range(5):
        track += [mido.Message("note_on", note=62, velocity=90, time=0x0FFFFFFF),
                  mido.Message("note_off", note=62, time=0x0FFFFFFF)]
    out = io.BytesIO()
    f.save(file=out)
    piece = import_midi(out.getvalue(), crop_bars=2)
    assert piece.n_bars == 2 and [(n.start, n.pitch) for n in piece.notes()] == [(0, 60)]


# -- exported length -------------------------------------------------------------------
def _piece(bars, ts=(4, 4), last_note_frame=None, drums=False, tempo=120.0, frames=None) -> Piece:
    """A lead line of quarter notes ending at ``last_note_frame`` (default: the very end,
    the last note held to the final frame)."""
    piece = Piece.empty(bars, ts, tempo=tempo)
    if frames is not None:
        piece.grid = piece.grid[:frames]
    end = piece.n_frames if last_note_frame is None else last_note_frame
    for start in range(0, end, 4):
        piece.grid[start, 0] = T.onset(60 + start % 12)
        piece.grid[start + 1 : min(start + 4, end), 0] = T.HOLD
        piece.grid[start, 3] = T.onset(40)
        if drums:
            piece.grid[start, T.DRUM_VOICE] = T.drum_token("kick")
    return piece


def _end_ticks(data: bytes) -> list[int]:
    return [sum(msg.time for msg in track) for track in mido.MidiFile(file=io.BytesIO(data)).tracks]


LENGTH_CASES = {
    "held-to-the-end": _piece(32),
    "two-silent-bars": _piece(8, last_note_frame=6 * 16),
    "ends-mid-bar": _piece(4, last_note_frame=16 * 3 + 4, drums=True),
    "three-four-rests": _piece(6, (3, 4), last_note_frame=4 * 12, tempo=90.0),
    "six-eight-held": _piece(5, (6, 8), drums=True, tempo=132.5),
    "silent": _piece(3, last_note_frame=0),
    "partial-last-bar": _piece(3, frames=40),
}


@pytest.mark.parametrize("piece", LENGTH_CASES.values(), ids=LENGTH_CASES.keys())
def test_exported_midi_ends_exactly_on_the_last_bar_line(piece):
    data = to_midi(piece)
    ticks_per_bar = piece.frames_per_bar * TICKS_PER_QUARTER // T.FRAMES_PER_QUARTER
    # Every track ends there (a DAW or game engine loops at the longest one).
    assert set(_end_ticks(data)) == {piece.n_bars * ticks_per_bar}
    bar_seconds = piece.frames_per_bar / T.FRAMES_PER_QUARTER * 60 / piece.tempo
    length = mido.MidiFile(file=io.BytesIO(data)).length
    assert length == pytest.approx(piece.n_bars * bar_seconds, rel=1e-6)
    if piece.n_frames % piece.frames_per_bar == 0:
        assert length == pytest.approx(piece.seconds, rel=1e-6)


def test_note_held_to_the_end_ends_with_the_file():
    piece = LENGTH_CASES["held-to-the-end"]
    data = to_midi(piece)
    assert pretty_midi.PrettyMIDI(io.BytesIO(data)).get_end_time() == pytest.approx(piece.seconds)  # 64 s
    again = import_midi(data)
    assert np.array_equal(again.grid, piece.grid) and again.tempo == piece.tempo


def test_three_four_round_trip_keeps_notes_and_tempo():
    piece = LENGTH_CASES["three-four-rests"]
    again = import_midi(to_midi(piece))
    # The importer sizes the grid from the notes, so the two silent bars are not restored.
    assert np.array_equal(again.grid, piece.grid[: again.n_frames])
    assert again.n_bars == 4 and again.tempo == 90.0
