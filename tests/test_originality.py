"""Originality: copied spans are found, in any key; fresh material is not."""

from __future__ import annotations

import numpy as np

from composer.music import tokens as T
from composer.nn.originality import OriginalityIndex
from composer.music.grid import Piece


def _melody(rng, bars, fpb=16):
    grid = np.zeros((bars * fpb, T.N_VOICES), np.uint8)
    f = 0
    while f < len(grid):
        length = int(rng.choice([2, 4, 4, 8]))
        grid[f, 0] = T.onset(int(rng.integers(60, 80)))
        grid[f + 1 : f + length, 0] = T.HOLD
        f += length
    return grid


def test_a_training_piece_shares_its_full_length_with_itself():
    rng = np.random.default_rng(0)
    grids = [_melody(rng, 8) for _ in range(5)]
    index = OriginalityIndex.from_grids(grids, [f"p{i}" for i in range(5)], [16] * 5)
    match = index.longest_match(Piece(grids[3]))
    assert match.source == "p3"
    starts = np.flatnonzero(grids[3][:, 0] >= T.PITCH_OFFSET)
    assert match.bars == (starts[-1] - starts[0]) / 16  # first to last onset: the whole piece
    assert index.longest_match(Piece(grids[3]), exclude="p3").bars < 2


def test_a_copied_phrase_is_found_transposed_and_measured_in_bars(tmp_path):
    rng = np.random.default_rng(1)
    training = _melody(rng, 16)
    index = OriginalityIndex.from_grids([training], ["game/tune"], [16])
    index.save(tmp_path / "index.npz")
    index = OriginalityIndex.load(tmp_path / "index.npz")
    fresh = _melody(np.random.default_rng(2), 8)
    assert index.longest_match(Piece(fresh)).bars < 1
    # bars 4..8 of the training tune, up a fourth, in the middle of new material
    copy = Piece(training[4 * 16 : 8 * 16].copy()).transpose(5).grid
    fresh[2 * 16 : 6 * 16] = copy
    fresh[6 * 16, 0] = T.onset(50)  # a clear break after the copy
    match = index.longest_match(Piece(fresh))
    assert match.source == "game/tune"
    assert 3.0 <= match.bars <= 4.0
    assert match.query_start_bar >= 2.0
