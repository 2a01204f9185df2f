"""Musical statistics: exact numbers on one tiny known piece, and the MGEval overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from composer.music import tokens as T
from composer.analysis import metrics as M
from composer.music.grid import Piece


@pytest.fixture
def scale_piece() -> Piece:
    """Two 4/4 bars: the lead walks up C D E F G A B in quarter notes, then rests a beat;
    the bass holds C3 through bar 1; kick on every beat of bar 1 and a hat on its 3rd 16th."""
    grid = np.zeros((32, T.N_VOICES), np.uint8)
    for k, pitch in enumerate([60, 62, 64, 65, 67, 69, 71]):
        grid[4 * k, 0] = T.onset(pitch)
        grid[4 * k + 1 : 4 * k + 4, 0] = T.HOLD
    grid[0, 3] = T.onset(48)
    grid[1:16, 3] = T.HOLD
    grid[[0, 4, 8, 12], 4] = T.drum_token("kick")
    grid[2, 4] = T.drum_token("hat")
    return Piece(grid)


def test_every_metric_on_a_known_piece(scale_piece):
    m = M.piece_metrics(scale_piece)
    # pitch classes: C twice (C4, C3), D E F G A B once -> 8 notes
    assert m["pitch_class_entropy"] == pytest.approx(-(2 / 8) * math.log2(2 / 8) - 6 * (1 / 8) * math.log2(1 / 8))
    assert m["pitch_class_entropy"] == pytest.approx(2.75)
    assert m["scale_consistency"] == 1.0
    assert m["pitch_range"] == 71 - 48
    assert m["polyphony"] == pytest.approx((16 * 2 + 12 * 1) / 28)  # 2 voices in bar 1, 1 until the rest
    assert m["note_density"] == 8 * 16 / 32
    assert m["drum_density"] == 5 * 16 / 32
    assert m["groove_consistency"] == 1 - 2 / 16  # bar 1 {0,2,4,8,12} vs bar 2 {0,4,8}
    assert m["empty_beat_rate"] == 1 / 8  # only the last beat is silent
    steps = {2: 5, 1: 1}  # C-D-E-F-G-A-B
    assert m["pitch_interval_entropy"] == pytest.approx(-sum(c / 6 * math.log2(c / 6) for c in steps.values()))
    assert m["rest_rate"] == (4 + 32 + 32 + 16) / 128
    assert m["mean_ioi"] == 4.0
    # each public function agrees with the all-at-once version
    for name, fn in M.METRICS.items():
        assert fn(scale_piece) == pytest.approx(m[name]), name


def test_random_grid_has_near_uniform_pitch_class_entropy():
    rng = np.random.default_rng(0)
    grid = np.zeros((8192, T.N_VOICES), np.uint8)
    grid[:, :4] = rng.integers(T.PITCH_OFFSET, T.PITCHED_VOCAB, (8192, 4))
    assert M.pitch_class_entropy(Piece(grid)) == pytest.approx(math.log2(12), abs=0.02)


def test_undefined_metrics_are_nan():
    silent = Piece(np.zeros((32, T.N_VOICES), np.uint8))
    values = M.piece_metrics(silent)
    for name in ("pitch_class_entropy", "scale_consistency", "pitch_range", "polyphony", "pitch_interval_entropy",
                 "mean_ioi"):
        assert math.isnan(values[name]), name
    assert values["note_density"] == 0 and values["drum_density"] == 0 and values["empty_beat_rate"] == 1.0
    assert math.isnan(M.groove_consistency(Piece(np.zeros((16, T.N_VOICES), np.uint8))))  # one bar


def test_muspy_music_mirrors_the_grid(scale_piece):
    music = M.to_muspy(scale_piece)
    assert music.resolution == 4 and len(music.tracks) == T.N_VOICES
    assert [t.is_drum for t in music.tracks] == [False] * 4 + [True]
    lead = music.tracks[0].notes
    assert [(n.time, n.pitch, n.duration) for n in lead[:2]] == [(0, 60, 4), (4, 62, 4)]
    assert music.tracks[3].notes[0].duration == 16
    assert music.tracks[4].notes[0].pitch == T.DRUM_EXPORT_KEY["kick"]


def test_vectorised_notes_match_piece_notes():
    rng = np.random.default_rng(3)
    grid = np.zeros((200, T.N_VOICES), np.uint8)
    for v in range(4):
        f = 0
        while f < 200:
            n = int(rng.integers(1, 6))
            if rng.random() < 0.7:
                grid[f, v] = T.onset(int(rng.integers(40, 90)))
                grid[f + 1 : f + n, v] = T.HOLD
            f += n
    grid[::3, 4] = T.drum_token("snare")
    piece = Piece(grid)
    for v in range(T.N_VOICES):
        starts, ends, pitches = M.voice_notes(grid, v)
        notes = piece.notes(v)
        assert list(starts) == [n.start for n in notes] and list(ends) == [n.end for n in notes]
        if v < 4:
            assert list(pitches) == [n.pitch for n in notes]


def test_overlap_of_identical_and_disjoint_samples():
    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    assert M.mgeval_overlap(a, a) == pytest.approx(1.0, abs=1e-3)
    assert M.mgeval_overlap(a, a + 100) < 1e-3
    b = rng.normal(size=300)
    assert 0.8 < M.mgeval_overlap(a, b) < 1.0
    assert M.mgeval_overlap([2.0] * 5, [2.0] * 7) == 1.0  # constant and equal
    assert M.mgeval_overlap([0.0] * 5, [1.0] * 5) < 1e-3  # constant and different
    assert 0.0 < M.mgeval_overlap([0.0] * 5, rng.normal(size=200)) < 1.0  # a spike inside a spread
    assert M.mgeval_overlap([1.0, math.nan], [1.0]) == 1.0  # NaNs are dropped
    assert math.isnan(M.mgeval_overlap([], [1.0, 2.0]))


def test_weights_select_part_of_a_sample():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    mixed = np.concatenate([rng.normal(size=200), rng.normal(size=200) + 50])
    weights = np.concatenate([np.ones(200), np.zeros(200)])  # only the first component counts
    assert M.mgeval_overlap(a, mixed) < 0.6
    assert M.mgeval_overlap(a, mixed, wb=weights) > 0.85
    assert math.isnan(M.mgeval_overlap(a, mixed, wb=np.zeros(400)))
