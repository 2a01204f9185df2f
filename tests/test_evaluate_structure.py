"""Structure: theme return and self-similarity on constructed pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from composer.music import tokens as T
from composer.evaluate.plots import plot_self_similarity
from composer.analysis.structure import bar_repetition, self_similarity, theme_return, theme_return_detail
from composer.music.grid import Piece


def _melody(rng, bars, fpb=16, low=60, high=80) -> np.ndarray:
    grid = np.zeros((bars * fpb, T.N_VOICES), np.uint8)
    f = 0
    while f < len(grid):
        length = int(rng.choice([1, 2, 2, 4]))
        if rng.random() < 0.85:
            grid[f, 0] = T.onset(int(rng.integers(low, high)))
            grid[f + 1 : f + length, 0] = T.HOLD
        f += length
    grid[::4, 4] = T.drum_token("kick")
    return grid


def test_a_piece_made_of_exact_repeats_has_theme_return_1():
    theme = _melody(np.random.default_rng(0), 4)
    piece = Piece(np.concatenate([theme] * 4))
    detail = theme_return_detail(piece)
    assert detail.score == 1.0
    assert (detail.bar, detail.shift) == (4, 0)
    assert bar_repetition(piece) == 1.0


def test_a_transposed_return_counts_and_reports_its_shift():
    theme = _melody(np.random.default_rng(1), 4)
    other = _melody(np.random.default_rng(2), 4)
    up = Piece(theme).transpose(5).grid
    piece = Piece(np.concatenate([theme, other, up]))
    detail = theme_return_detail(piece)
    assert detail.score == 1.0
    assert (detail.bar, detail.shift) == (8, 5)


def test_random_material_scores_low():
    rng = np.random.default_rng(3)
    piece = Piece(_melody(rng, 32, low=40, high=90))
    assert theme_return(piece) < 0.2
    assert bar_repetition(piece) < 0.6


def test_a_lead_less_intro_is_skipped():
    theme = _melody(np.random.default_rng(4), 4)
    intro = np.zeros((32, T.N_VOICES), np.uint8)
    piece = Piece(np.concatenate([intro, theme, theme]))
    detail = theme_return_detail(piece)
    assert detail.score == 1.0 and detail.theme_start == 2 and detail.bar == 6


def test_theme_return_undefined_without_lead_or_room():
    assert math.isnan(theme_return(Piece(np.zeros((16 * 16, T.N_VOICES), np.uint8))))
    assert math.isnan(theme_return(Piece(_melody(np.random.default_rng(5), 7))))  # < 8 bars


def test_self_similarity_matrix(tmp_path):
    rng = np.random.default_rng(6)
    a, b = _melody(rng, 1), _melody(rng, 1)
    silent = np.zeros_like(a)
    piece = Piece(np.concatenate([a, b, a, silent, silent]))
    s = self_similarity(piece)
    assert s.shape == (5, 5)
    assert np.allclose(s, s.T) and np.all(np.diag(s) == 1.0)
    assert s[0, 2] == 1.0 and s[0, 1] < 1.0
    assert s[3, 4] == 1.0 and s[0, 3] == 0.0  # two silent bars are alike; silence shares nothing with music
    # one cell differs in bar 2: the Jaccard index of the sounding cells drops by exactly that cell
    changed = piece.grid.copy()
    sounding = np.flatnonzero(changed[32:48, 0] >= T.PITCH_OFFSET)[0]
    changed[32 + sounding, 0] = T.onset(100)
    union = int((a != T.REST).sum())
    assert self_similarity(Piece(changed))[0, 2] == pytest.approx((union - 1) / (union + 0))
    path = plot_self_similarity([piece, Piece(changed)], ["a", "b"], tmp_path / "ssm.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
