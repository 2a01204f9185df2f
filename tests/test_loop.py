"""Loops: the seam metric, pieces composed to loop, and audio/MIDI that repeat without a gap."""

from __future__ import annotations

import io
import math

import mido
import numpy as np
import pytest

from composer.music import tokens as T
from composer.analysis.loops import boundary_cost, seam_score
from composer.music.grid import Piece
from composer.render import audio as A
from composer.render import render
from composer.generate.request import GenerationRequest


def _bar(pitches: list[int], fpb: int = 16) -> np.ndarray:
    bar = np.zeros((fpb, T.N_VOICES), np.uint8)
    step = fpb // len(pitches)
    for i, pitch in enumerate(pitches):
        bar[i * step, T.VOICE_INDEX["lead"]] = T.onset(pitch)
        bar[i * step + 1 : (i + 1) * step, T.VOICE_INDEX["lead"]] = T.HOLD
    bar[0, T.VOICE_INDEX["bass"]] = T.onset(48)
    return bar


def test_the_seam_of_a_piece_that_is_its_own_rotation_scores_exactly_one():
    motif = [_bar([60, 64, 67, 72]), _bar([71, 67, 62, 59])]
    piece = Piece(grid=np.concatenate(motif * 4))  # rotating it by two bars gives the same piece
    assert seam_score(piece) == 1.0


def test_an_abrupt_seam_scores_above_one_and_a_smooth_one_near_it():
    rising = [_bar([60 + 2 * b, 62 + 2 * b, 64 + 2 * b, 65 + 2 * b]) for b in range(8)]  # ends an octave+ up
    assert seam_score(Piece(grid=np.concatenate(rising))) > 2.0
    there_and_back = rising[:4] + rising[:4][::-1]
    assert seam_score(Piece(grid=np.concatenate(there_and_back))) < 1.5


def test_boundary_cost_counts_leaps_and_holds():
    before, after = _bar([60, 62, 64, 65]), _bar([72, 71, 69, 67])
    assert boundary_cost(before, after) == pytest.approx((7 + 0) / 2)  # lead 65 -> 72, bass 48 -> 48
    after[0, T.VOICE_INDEX["lead"]] = T.HOLD
    assert boundary_cost(before, after) == 0.0
    assert math.isnan(seam_score(Piece(grid=_bar([60]))))  # one bar: no bar line to compare with


def test_a_looping_piece_only_recomposes_its_end_and_replays(generator):
    request = GenerationRequest(style="doom", bars=6, form="through", seed=4, steps=6)
    plain = generator.generate(request)
    looped = generator.generate(request.replace(loop=True))
    fpb = plain.frames_per_bar
    assert np.array_equal(looped.grid[: 4 * fpb], plain.grid[: 4 * fpb])  # the seam is the last two bars
    assert not np.array_equal(looped.grid, plain.grid)
    assert np.array_equal(generator.generate(request.replace(loop=True)).grid, looped.grid)
    assert looped.extra["loop"] and looped.extra["params"]["loop"]


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_looping_audio_and_midi_last_exactly_the_music_without_a_fade(generator, fmt):
    piece = generator.generate(GenerationRequest(style="doom", bars=4, seed=2, steps=4, loop=True))
    piece.grid[-1, T.VOICE_INDEX["bass"]] = T.onset(40)  # a note sounds at the very end
    rendered = render(piece, formats=(fmt, "mid"))
    x, rate = A.decode(rendered[fmt], fmt)
    assert abs(len(x) / rate - piece.seconds) < 0.002  # no release tail, no encoder padding: no gap
    last = np.sqrt(np.mean(x[-rate // 50 :] ** 2))
    assert last > 0.01  # not faded out: the loop goes on
    midi = mido.MidiFile(file=io.BytesIO(rendered["mid"]))
    assert midi.length == pytest.approx(piece.seconds, abs=1e-6)
