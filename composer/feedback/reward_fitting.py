"""Fitting the reward model (``composer/judge/reward.py``) on exported ratings, and measuring it.

One example per rating: the piece's features and style labels, target 1 for 👍, 0 for 👎, fitted
by Newton's method in numpy (L2-penalised logistic regression): a few milliseconds for thousands of
ratings.

``evaluate_reward`` holds out a share of the *pieces* (a piece's ratings, and the ratings
of the same music under another record, e.g. a change of sound, never straddle the
split), fits on the rest, and compares accuracy on the held-out ratings with the majority
vote (always the training set's most common answer); the model it returns is then refit on
every rating and carries that report in ``summary``.

    python -m composer ratings reward --ratings ratings.jsonl --out reward.json --into my_model/
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from composer.errors import MozartError
from composer.feedback.records import RatedRecord
from composer.generate.styles import StyleCatalog
from composer.judge.features import FEATURES, piece_features
from composer.judge.reward import DEFAULT_L2, RewardError, RewardModel, RewardSummary, sigmoid, style_labels

__all__ = ["MIN_RATINGS", "evaluate_reward", "fit_reward"]

MIN_RATINGS = 10  # fewer cannot be split into something to learn from and something to check
BIAS_L2 = 1e-3  # keeps the intercept finite when a training split holds only one answer
NEWTON_STEPS = 50


# -- examples ----------------------------------------------------------------------------
@dataclass
class _Examples:
    features: list[dict[str, float]]  # one per rating
    styles: list[str]
    y: np.ndarray  # 1 👍, 0 👎
    groups: list[str]  # the piece each rating is of (hash of its MIDI)


def _examples(records: Sequence[RatedRecord], cache: dict[bytes, dict[str, float] | None] | None = None) -> _Examples:
    cache = {} if cache is None else cache
    feats, styles, ys, groups = [], [], [], []
    for record in records:
        votes = [v for v in record.ratings.values() if v]
        if not votes:
            continue
        if record.midi not in cache:
            try:
                cache[record.midi] = piece_features(record.piece())
            except MozartError:  # a stored MIDI that no longer reads (e.g. drums only): no features
                cache[record.midi] = None
        if cache[record.midi] is None:
            continue
        group = hashlib.sha256(record.midi).hexdigest()
        for v in votes:
            feats.append(cache[record.midi])
            styles.append(record.style)
            ys.append(1.0 if v > 0 else 0.0)
            groups.append(group)
    return _Examples(feats, styles, np.array(ys, np.float64), groups)


# -- fitting -----------------------------------------------------------------------------
def _newton(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Minimise sum log-loss + 0.5 l2 |w|^2 (+ a tiny penalty on the bias) by Newton's method."""
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, float(l2))
    penalty[-1] = BIAS_L2
    theta = np.zeros(d + 1)
    for _ in range(NEWTON_STEPS):
        p = sigmoid(a @ theta)
        grad = a.T @ (p - y) + penalty * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def fit_reward(records: Sequence[RatedRecord], *, catalog: StyleCatalog | None = None, l2: float = DEFAULT_L2,
               seed: int = 0, cache: dict[bytes, dict[str, float]] | None = None) -> RewardModel:
    """Fit on every rating of ``records`` (``cache``: MIDI bytes -> piece_features, filled as it goes)."""
    examples = _examples(records, cache)
    if not examples.y.size:
        raise RewardError("These ratings hold no 👍 or 👎 to learn from.")
    if catalog is not None:
        games, composers, aliases = list(catalog.games), list(catalog.composers), dict(catalog.aliases)
    else:  # the labels the ratings' style names use
        aliases = {}
        pairs = [style_labels(s) for s in examples.styles]
        games = sorted({g for g, c in pairs if g and c})
        composers = sorted({c for g, c in pairs if g and c})
        singles = {g for g, c in pairs if g and not c} - set(composers)
        games = sorted(set(games) | singles)
    x = np.array([[f[n] for n in FEATURES] for f in examples.features], np.float64)
    mean = x.mean(0)
    std = x.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    model = RewardModel(list(FEATURES), mean, std, games, composers,
                        np.zeros(len(FEATURES) + len(games) + len(composers)), 0.0, aliases)
    rows = np.stack([model.row(f, s) for f, s in zip(examples.features, examples.styles)])
    model.weights, model.bias = _newton(rows, examples.y, l2)
    model.summary = RewardSummary(pieces=len(set(examples.groups)), ratings=int(examples.y.size),
                                  liked=int(examples.y.sum()), seed=seed, l2=l2)
    return model


# -- measuring ---------------------------------------------------------------------------
def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def evaluate_reward(records: Sequence[RatedRecord], holdout: float = 0.2, seed: int = 0, *,
                    catalog: StyleCatalog | None = None, l2: float = DEFAULT_L2) -> RewardModel:
    """Hold out ``holdout`` of the pieces (drawn with ``seed``), fit on the others, score the
    held-out ratings against the majority vote; return the model refit on every rating,
    with that report in its ``summary``."""
    if not 0 < holdout < 1:
        raise RewardError(f"--holdout must be between 0 and 1 (received {holdout:g}).")
    cache: dict[bytes, dict[str, float]] = {}
    examples = _examples(records, cache)
    n = int(examples.y.size)
    if n < MIN_RATINGS:
        raise RewardError(f"Only {n} rating{'s' * (n != 1)} to learn from; a reward model needs at least "
                          f"{MIN_RATINGS} (more than a hundred to be of use). Collect more 👍/👎 and export again.")
    if examples.y.min() == examples.y.max():
        answer = "👍" if examples.y[0] else "👎"
        raise RewardError(f"Every one of the {n} ratings is {answer}: there is nothing to tell liked music "
                          "from disliked music by. Collect more ratings and export again.")
    pieces = sorted(set(examples.groups))
    if len(pieces) < 2:
        raise RewardError("All the ratings are of one piece: a reward model needs ratings of several pieces.")
    rng = np.random.default_rng(seed)
    order = [pieces[i] for i in rng.permutation(len(pieces))]
    n_out = min(len(pieces) - 1, max(1, round(holdout * len(pieces))))
    held = set(order[:n_out])
    by_group = {}
    for record in records:
        by_group.setdefault(hashlib.sha256(record.midi).hexdigest(), []).append(record)
    train_records = [r for g in order[n_out:] for r in by_group[g]]
    test_records = [r for g in order[:n_out] for r in by_group[g]]

    model = fit_reward(train_records, catalog=catalog, l2=l2, seed=seed, cache=cache)
    test = _examples(test_records, cache)
    train_y = np.array([y for y, g in zip(examples.y, examples.groups) if g not in held])
    rate = float(train_y.mean())
    p = np.array([model.predict_features(f, s) for f, s in zip(test.features, test.styles)])
    majority = 1.0 if rate >= 0.5 else 0.0

    final = fit_reward(records, catalog=catalog, l2=l2, seed=seed, cache=cache)
    final.summary = RewardSummary(
        pieces=len(pieces), ratings=n, liked=int(examples.y.sum()), holdout=holdout, heldout_pieces=n_out,
        heldout_ratings=int(test.y.size),
        heldout_accuracy=float(((p >= 0.5) == (test.y > 0.5)).mean()),
        baseline_accuracy=float((test.y == majority).mean()),
        heldout_log_loss=_log_loss(p, test.y),
        baseline_log_loss=_log_loss(np.full(test.y.size, rate), test.y),
        seed=seed, l2=l2)
    return final
