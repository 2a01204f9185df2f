"""Style features and classifiers: key-independent features, deterministic training."""

from __future__ import annotations

import numpy as np

from composer.music import tokens as T
from composer.evaluate.style import (
    FEATURE_NAMES,
    piece_predictions,
    real_vs_generated,
    train_classifier,
    window_features,
)
from composer.music.grid import Piece


def _tune(rng, bars: int, drums: bool, step: int) -> np.ndarray:
    """A lead moving in steps of ``step`` semitones over a bass, with or without a beat."""
    grid = np.zeros((bars * 16, T.N_VOICES), np.uint8)
    pitch = int(rng.integers(60, 66))
    for f in range(0, len(grid), step):
        grid[f, 0] = T.onset(pitch + int(rng.integers(-2, 3)) * (1 if step == 2 else 5) % 12)
        grid[f + 1 : f + step, 0] = T.HOLD
    grid[::16, 3] = T.onset(pitch - 24)
    grid[1::16, 3] = T.HOLD
    if drums:
        grid[::4, 4] = T.drum_token("kick")
        grid[2::4, 4] = T.drum_token("hat")
    return grid


def test_features_per_window_are_finite_and_named():
    grid = _tune(np.random.default_rng(0), 9, True, 2)
    X = window_features(grid)
    assert X.shape == (2, len(FEATURE_NAMES))  # 9 bars: two whole windows of 4 bars
    assert np.isfinite(X).all()
    assert window_features(grid[:63]).shape == (0, len(FEATURE_NAMES))
    pc = X[:, :12]
    assert np.allclose(pc.sum(1), 1.0) and np.all(pc[:, 0] == pc.max(1))  # rotated to its largest bin


def test_features_ignore_the_key_except_register():
    grid = _tune(np.random.default_rng(1), 8, True, 2)
    up = Piece(grid).transpose(5).grid
    a, b = window_features(grid), window_features(up)
    register = [i for i, n in enumerate(FEATURE_NAMES) if n.startswith("mean_pitch")]
    other = [i for i in range(len(FEATURE_NAMES)) if i not in register]
    assert np.allclose(a[:, other], b[:, other])
    assert np.allclose(b[:, register][:, [0, 3]] - a[:, register][:, [0, 3]], 5 / 12)


def test_classifier_separates_two_styles_and_is_deterministic():
    rng = np.random.default_rng(2)
    X, y, groups = [], [], []
    for k in range(16):
        label = k % 2
        f = window_features(_tune(rng, 8, drums=label == 0, step=2 if label == 0 else 4))
        X.append(f)
        y += [label] * len(f)
        groups += [f"p{k}"] * len(f)
    X, y, groups = np.concatenate(X), np.array(y), np.array(groups)
    clf = train_classifier(X, y, ["beat", "calm"], epochs=100, seed=0)
    assert (clf.predict(X) == y).mean() == 1.0
    again = train_classifier(X, y, ["beat", "calm"], epochs=100, seed=0)
    assert np.array_equal(clf.log_proba(X), again.log_proba(X))
    uniq, pred = piece_predictions(clf, X, groups)
    assert len(uniq) == 16 and np.array_equal(pred, [int(g[1:]) % 2 for g in uniq])
    # real vs generated: clearly different sets are told apart
    result = real_vs_generated(X[y == 0], groups[y == 0], X[y == 1], groups[y == 1], epochs=100)
    assert result["balanced_accuracy"] > 0.9 and result["folds"] == 4


def test_real_excerpts_of_one_piece_share_a_fold():
    """Many excerpts of a label's few held-out pieces: grouped by excerpt, the classifier learns
    those pieces and calls music just like them (but not them) generated; grouped by piece, the
    way the evaluation groups them, it cannot tell the two apart."""
    from composer.evaluate.sections import _sources, _windows_of

    rng = np.random.default_rng(3)
    songs = [Piece(_tune(rng, 16, True, 2), source=f"corpus:doom/e1m{k}") for k in range(3)]
    excerpts = [song.bars(start, start + 4) for song in songs for start in (0, 4, 8, 12)]
    X, groups = _windows_of(excerpts)
    sources = _sources(excerpts, groups)
    assert len(set(sources)) == 3 and all(sources[i] == excerpts[g].source for i, g in enumerate(groups))

    # each piece its own manner (a mean), real and generated pieces drawn alike
    def pieces(n, excerpts_each):
        means = rng.normal(size=(n, 12))
        return (np.concatenate([m + 0.05 * rng.normal(size=(excerpts_each, 12)) for m in means]),
                np.repeat(np.arange(n), excerpts_each))
    real_X, real_piece = pieces(4, 24)
    gen_X, gen_piece = pieces(48, 2)
    by_excerpt = real_vs_generated(real_X, np.arange(len(real_X)), gen_X, gen_piece, epochs=100)
    by_piece = real_vs_generated(real_X, real_piece, gen_X, gen_piece, epochs=100)
    assert by_excerpt["balanced_accuracy"] > 0.8
    assert by_piece["balanced_accuracy"] < 0.65


def test_real_splices_show_what_the_parents_themselves_score():
    """A blend's figure beside what real music of its two parents scores, laid out alike: each of
    the piece's runs of windows filled from a held-out piece of that parent. Parents the classifier
    knows are heard as a parent every time; a composer whose real pieces it hears as a third label
    is not, wherever the composer has most of the windows."""
    from composer.evaluate.splices import SPLICES_PER_PIECE, real_splices

    rng = np.random.default_rng(4)
    classes = ["beat", "calm", "other"]
    manners = {"beat": (True, 2), "calm": (False, 4), "other": (True, 4)}
    X, y = [], []
    for k, label in enumerate(classes * 6):
        f = window_features(_tune(rng, 8, *manners[label]))
        X.append(f)
        y += [k % 3] * len(f)
    clf = train_classifier(np.concatenate(X), np.array(y), classes, epochs=100, seed=0)

    class HeldOut:  # RealData's held-out splits: two pieces of each parent, 12 bars (3 windows)
        def __init__(self, calm_manner):
            self.held = [Piece(_tune(rng, 12, *manners["beat"]), game="beat") for _ in range(2)]
            self.held += [Piece(_tune(rng, 12, *calm_manner), composer="calm") for _ in range(2)]

        def pieces(self, split):
            return self.held if split == "test" else []

    blend = Piece(np.zeros((16 * 16, T.N_VOICES), np.uint8), game="beat", composer="calm",
                  extra={"style": "beat-calm"})
    layouts = [[True, True, False, True]]  # A A B A: the composer's theme, the game's bridge
    known = real_splices(clf, classes, HeldOut(manners["calm"]), [blend], layouts, seed=0)["beat-calm"]
    assert known == {"share": 1.0, "splices": SPLICES_PER_PIECE, "real_pieces": {"beat": 2, "calm": 2}}
    unknown = real_splices(clf, classes, HeldOut(manners["other"]), [blend] * 4, layouts * 4, seed=0)["beat-calm"]
    assert unknown["share"] < 0.5 and unknown["splices"] == 4 * SPLICES_PER_PIECE
    single = real_splices(clf, classes, HeldOut(manners["calm"]), [blend], [None], seed=0)
    assert single == {}  # a single label, or parents mixed throughout: nothing to splice
