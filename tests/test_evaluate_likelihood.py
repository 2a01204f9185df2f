"""Likelihood: exact NLLs of stub models, the n-gram baseline, shared masks and positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from composer.music import tokens as T
from composer.corpus.encoded import EncodedSplit
from composer.evaluate import likelihood as L
from composer.music.grid import Piece
from composer.nn.model import ModelConfig


def _split(grids: list[np.ndarray]) -> EncodedSplit:
    """4/4 pieces of the game "g"."""
    pieces = [Piece(grid, game="g") for grid in grids]
    return EncodedSplit.from_pieces("test", pieces, [f"p{i}" for i in range(len(grids))], ["g"], [])


class Stub(nn.Module):
    """A model that ignores its input: one-hot logits for ``token`` (or uniform logits)."""

    def __init__(self, token: int | None, causal: bool = False):
        super().__init__()
        self.config = ModelConfig.tiny(arch="lstm" if causal else "td_bilstm")
        self.token = token
        self.seen = []

    def forward(self, tokens, game, composer, frames_per_bar):
        self.seen.append(tokens.clone())
        B, W, _ = tokens.shape
        out = []
        for V in T.VOCAB_SIZES:
            logits = torch.zeros(B, W, V)
            if self.token is not None:
                logits[..., self.token] = 1e4
            out.append(logits)
        return out


@pytest.fixture
def silent_split() -> EncodedSplit:
    return _split([np.zeros((16 * 20, T.N_VOICES), np.uint8), np.zeros((16 * 9, T.N_VOICES), np.uint8)])


def _maps():
    return L.label_map(["g"], ["g"]), L.label_map([], [])


def test_a_model_certain_of_the_true_token_has_nll_zero(silent_split):
    games, composers = _maps()
    model = Stub(T.REST)
    windows = L.masked_windows(silent_split, max_windows=None)
    masked = L.model_masked_nll(model, windows, games, composers, rates=(0.25, 1.0))
    for rate in ("0.25", "1.0"):
        assert masked[rate]["nll"] == 0.0 and masked[rate]["cells"] > 0
        assert all(v == 0.0 for v in masked[rate]["per_voice"].values())
    cset = L.continuation_set(silent_split, 64)
    assert L.model_continuation_nll(model, cset, games, composers)["nll"] == 0.0


def test_a_uniform_model_scores_log_vocabulary(silent_split):
    games, composers = _maps()
    cset = L.continuation_set(silent_split, 64)
    result = L.model_continuation_nll(Stub(None), cset, games, composers)
    assert result["cells"] == 64 * T.N_VOICES
    for v, V in zip(T.VOICES, T.VOCAB_SIZES):
        assert result["per_voice"][v] == pytest.approx(math.log(V))
    assert result["frame_nll"] == pytest.approx(sum(math.log(V) for V in T.VOCAB_SIZES))


def test_continuation_hides_the_whole_future_from_bidirectional_models(silent_split):
    games, composers = _maps()
    model = Stub(T.REST)
    cset = L.continuation_set(silent_split, 16)
    L.model_continuation_nll(model, cset, games, composers, batch_size=16)
    seen = model.seen[0].numpy()
    mask = np.array(T.VOCAB_SIZES)
    for b, t in enumerate(cset.target):
        assert (seen[b, t:] == mask).all()  # frame t and everything after: MASK
        assert (seen[b, :t] != mask).all()  # the past: visible
    # windows start on bar lines and hold at most CONTEXT_FRAMES of past
    assert np.all(cset.start % 16 == 0) and np.all(cset.target <= L.CONTEXT_FRAMES) and np.all(cset.target >= 1)


def test_the_causal_model_has_no_masked_nll_but_a_continuation_nll(silent_split):
    games, composers = _maps()
    model = Stub(T.REST, causal=True)
    windows = L.masked_windows(silent_split)
    masked = L.model_masked_nll(model, windows, games, composers)
    assert all(math.isnan(r["nll"]) and "causal" in r["note"] for r in masked.values())
    cset = L.continuation_set(silent_split, 16)
    assert L.model_continuation_nll(model, cset, games, composers)["nll"] == 0.0
    assert (model.seen[0].numpy() != np.array(T.VOCAB_SIZES)).all()  # the causal model gets the true tokens


def test_masks_and_positions_are_shared_and_seeded(silent_split):
    windows = L.masked_windows(silent_split)
    assert np.array_equal(L.random_mask(windows, 0.5), L.random_mask(windows, 0.5))
    assert not np.array_equal(L.random_mask(windows, 0.5), L.random_mask(windows, 0.5, seed=1))
    assert L.random_mask(windows, 1.0)[windows.valid].all() and not L.random_mask(windows, 1.0)[~windows.valid].any()
    a, b = L.continuation_set(silent_split, 32), L.continuation_set(silent_split, 32)
    assert np.array_equal(a.target, b.target) and np.array_equal(a.piece, b.piece)
    assert np.array_equal(windows.start, [0, 256, 0])  # consecutive windows of 20 bars, then 9 bars


def _repetitive(rng, bars, root: int | None = None) -> np.ndarray:
    grid = np.zeros((bars * 16, T.N_VOICES), np.uint8)
    root = int(rng.integers(55, 67)) if root is None else root
    for f in range(0, len(grid), 2):
        grid[f, 0] = T.onset(root + (0, 4, 7, 12)[(f // 2) % 4])
        grid[f + 1, 0] = T.HOLD
    grid[::16, 3] = T.onset(root - 24)
    grid[::4, 4] = T.drum_token("kick")
    return grid


def _random(rng, bars) -> np.ndarray:
    grid = np.zeros((bars * 16, T.N_VOICES), np.uint8)
    grid[:, :4] = rng.integers(0, T.PITCHED_VOCAB, (bars * 16, 4))
    grid[:, 4] = rng.integers(0, T.DRUM_VOCAB, bars * 16)
    return grid


def test_ngram_is_finite_and_lower_on_repetitive_than_random_data():
    rng = np.random.default_rng(0)
    results = {}
    for name, make in (("repetitive", _repetitive), ("random", _random)):
        train = _split([make(rng, 16) for _ in range(6)])
        test = _split([make(rng, 16) for _ in range(2)])
        ngram = L.NGramBaseline.fit(train, order=3)
        cont = L.ngram_continuation_nll(ngram, L.continuation_set(test, 200))
        masked = L.ngram_masked_nll(ngram, L.masked_windows(test), rates=(0.5,))
        assert math.isfinite(cont["nll"]) and math.isfinite(masked["0.5"]["nll"])
        results[name] = cont["nll"]
    assert results["repetitive"] < 0.5 < math.log(T.PITCHED_VOCAB) - 0.5 < results["random"]


def test_ngram_probabilities_sum_to_one_with_any_history():
    rng = np.random.default_rng(1)
    ngram = L.NGramBaseline.fit(_split([_repetitive(rng, 8), _random(rng, 8)]), order=4)
    for v, V in enumerate(T.VOCAB_SIZES):
        histories = [[3, 3, 3], [-1, 2, 2], [V, V, V], [1, -1, 5], [0, 0, 0]]
        for h in histories:
            h = [min(x, V) if x >= 0 else -1 for x in h]
            p = np.exp(ngram.log_prob(v, np.array([h] * V), np.arange(V)))
            assert p.sum() == pytest.approx(1.0), (v, h)
    assert ngram.with_order(2).order == 2
    with pytest.raises(ValueError, match=r"order must be in 1\.\.\d \(received 5\)"):
        ngram.with_order(5)


def test_ngram_masked_backs_off_past_hidden_cells():
    rng = np.random.default_rng(2)
    grids = [_repetitive(rng, 8) for _ in range(4)]
    ngram = L.NGramBaseline.fit(_split(grids), order=3)
    windows = L.masked_windows(_split(grids[:1]))
    windows.start[:] = 16  # as if cut from mid-piece: no BOS before the window
    unigram = ngram.with_order(1)
    all_hidden = L.ngram_masked_nll(ngram, windows, rates=(1.0,))["1.0"]
    # with every cell hidden no context survives: the n-gram is its unigram
    assert all_hidden["nll"] == pytest.approx(L.ngram_masked_nll(unigram, windows, rates=(1.0,))["1.0"]["nll"])
    assert L.ngram_masked_nll(ngram, windows, rates=(0.25,))["0.25"]["nll"] < all_hidden["nll"]


def test_order_is_chosen_on_valid():
    rng = np.random.default_rng(3)
    train = _split([_repetitive(rng, 8) for _ in range(4)])
    valid = _split([_repetitive(rng, 8) for _ in range(2)])
    ngram, scores = L.ngram_select_order(train, valid, orders=(1, 2, 3), n_positions=100)
    assert set(scores) == {1, 2, 3} and ngram.order == min(scores, key=scores.get)
    assert scores[1] > scores[ngram.order]


def test_transposed_counts_let_the_ngram_follow_a_new_key():
    rng = np.random.default_rng(4)
    train = _split([_repetitive(rng, 8, root=60) for _ in range(3)])
    test = _split([_repetitive(rng, 8, root=65)])  # a key the training pieces never use
    cset = L.continuation_set(test, 100)
    plain = L.ngram_continuation_nll(L.NGramBaseline.fit(train, 3), cset)["nll"]
    shifted = L.ngram_continuation_nll(L.NGramBaseline.fit(train, 3, shifts=range(-6, 7)), cset)["nll"]
    assert shifted < plain / 2
    # shift 0 alone is the plain model; a shift counts every frame again
    assert L.NGramBaseline.fit(train, 3, shifts=(0,)).tables[0][1]["c_hx"].sum() == len(train.grid)
    assert L.NGramBaseline.fit(train, 3, shifts=(0, 5)).tables[0][1]["c_hx"].sum() == 2 * len(train.grid)
