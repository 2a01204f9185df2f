"""The reward model: the chance that a listener gives a piece 👍, from its features and style.

A logistic regression with L2 on one example per rating: the piece's ``piece_features``
(standardised with the training mean and standard deviation) and one-hot indicators of
the style's game and composer labels (``zelda-bach`` -> game ``zelda``, composer
``bach``; with a ``StyleCatalog`` the trained labels, aliases resolved: game ``dink``);
target 1 for 👍, 0 for 👎. Fitted by Newton's method in numpy: a few milliseconds for
thousands of ratings.

``evaluate_reward`` holds out a share of the *pieces* (a piece's ratings, and the ratings
of the same music under another record, e.g. a change of sound, never straddle the
split), fits on the rest, and compares accuracy on the held-out ratings with the majority
vote (always the training set's most common answer); the model it returns is then refit on
every rating and carries that report in ``summary``.

    python -m composer ratings reward --ratings ratings.jsonl --out reward.json --into my_model/

The generator loads ``reward.json`` from its checkpoint folder and uses it for ``best_of``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from composer.corpus.store import atomic_write
from composer.errors import MozartError
from composer.feedback.features import FEATURES, piece_features
from composer.feedback.records import RatedRecord
from composer.music.grid import Piece
from composer.generate.styles import Style, StyleCatalog

__all__ = ["FORMAT", "MIN_RATINGS", "RewardError", "RewardModel", "RewardSummary", "evaluate_reward",
           "style_labels"]

FORMAT = "mozart.reward/1"
MIN_RATINGS = 10  # fewer cannot be split into something to learn from and something to check
DEFAULT_L2 = 1.0  # penalty 0.5 x l2 x |w|^2 on the summed log-loss (standardised inputs)
BIAS_L2 = 1e-3  # keeps the intercept finite when a training split holds only one answer
NEWTON_STEPS = 50


class RewardError(MozartError):
    """Ratings a reward model cannot be learnt from, or a reward file that cannot be used."""


# -- styles ------------------------------------------------------------------------------
def style_labels(style: str | Style | None, aliases: dict[str, str] | None = None,
                 games: Sequence[str] = (), composers: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """(game, composer) labels of a style name (a ``Style`` by its name). ``aliases`` (a
    checkpoint's) map a word to its trained label (``zelda`` -> ``dink``). A word in
    ``games`` or ``composers`` is that, in either order, as ``StyleCatalog.resolve`` reads
    it; otherwise two words are a game and a composer, one word is a game."""
    name = style.name if isinstance(style, Style) else str(style or "")
    words = [w for w in name.strip().lower().replace(" ", "-").replace("_", "-").split("-") if w]
    labels = [(aliases or {}).get(w, w) for w in words]
    game = next((x for x in labels if x in games), None)
    composer = next((x for x in labels if x in composers and x != game), None)
    if game or composer:
        return game, composer
    if len(labels) == 2:
        return labels[0], labels[1]
    return (labels[0], None) if len(labels) == 1 else (None, None)


# -- the model ---------------------------------------------------------------------------
@dataclass
class RewardSummary:
    """How the model was made and how well it predicts ratings it did not see."""

    pieces: int = 0  # distinct pieces (the same music under two records counts once)
    ratings: int = 0
    liked: int = 0  # 👍 among the ratings
    holdout: float = 0.0  # share of pieces held out
    heldout_pieces: int = 0
    heldout_ratings: int = 0
    heldout_accuracy: float = math.nan  # the model on the held-out ratings (P >= 0.5 means 👍)
    baseline_accuracy: float = math.nan  # always the training split's majority answer
    heldout_log_loss: float = math.nan  # nats per rating
    baseline_log_loss: float = math.nan  # the training split's 👍 rate as a constant prediction
    seed: int = 0
    l2: float = DEFAULT_L2
    ratings_sha256: str = ""  # of the ratings file, when fitted from one
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> RewardSummary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for k, v in known.items():
            if v is None and isinstance(cls.__dataclass_fields__[k].default, float):
                known[k] = math.nan
        return cls(**known)


@dataclass
class RewardModel:
    """P(👍 | piece, style) = sigmoid(bias + w . [standardised features, game one-hot, composer one-hot])."""

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    games: list[str]
    composers: list[str]
    weights: np.ndarray  # len(features) + len(games) + len(composers)
    bias: float
    aliases: dict[str, str] = field(default_factory=dict)  # style word -> label (from a checkpoint's catalog)
    summary: RewardSummary = field(default_factory=RewardSummary)

    # -- inputs ----------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return self.features + [f"game={g}" for g in self.games] + [f"composer={c}" for c in self.composers]

    def labels_of(self, style: str | Style | None) -> tuple[str | None, str | None]:
        return style_labels(style, self.aliases, self.games, self.composers)

    def _row(self, features: dict[str, float], style: str | Style | None) -> np.ndarray:
        try:
            x = np.array([features[n] for n in self.features], np.float64)
        except KeyError as e:
            raise RewardError(f"This reward model reads a feature ({e.args[0]}) this Mozart does not compute; "
                              "train it again with: python -m composer ratings reward") from None
        x = (x - self.mean) / self.std
        game, composer = self.labels_of(style)
        onehot = np.zeros(len(self.games) + len(self.composers))
        if game in self.games:
            onehot[self.games.index(game)] = 1.0
        if composer in self.composers:
            onehot[len(self.games) + self.composers.index(composer)] = 1.0
        return np.concatenate([x, onehot])

    # -- predictions -----------------------------------------------------------------------
    def predict_features(self, features: dict[str, float], style: str | Style | None) -> float:
        """P(👍) for a piece's ``piece_features``."""
        return float(_sigmoid(self.log_odds_features(features, style)))

    def log_odds_features(self, features: dict[str, float], style: str | Style | None) -> float:
        """log P(👍) / P(👎) for a piece's ``piece_features``: what best_of adds to the critic's."""
        return float(self.bias + self._row(features, style) @ self.weights)

    def predict(self, piece: Piece, style: str | Style | None = None) -> float:
        """P(👍) for ``piece`` in ``style`` (default: the style the piece records)."""
        return float(_sigmoid(self.log_odds(piece, style)))

    def log_odds(self, piece: Piece, style: str | Style | None = None) -> float:
        """log P(👍) / P(👎) for ``piece`` in ``style`` (default: the style the piece records)."""
        if style is None:
            style = piece.extra.get("style") or "-".join(x for x in (piece.game, piece.composer) if x)
        return self.log_odds_features(piece_features(piece), style)

    def predict_many(self, pieces: Iterable[Piece], style: str | Style | None = None) -> list[float]:
        return [self.predict(p, style) for p in pieces]

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, records: Sequence[RatedRecord], *, catalog: StyleCatalog | None = None, l2: float = DEFAULT_L2,
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
        model = cls(list(FEATURES), mean, std, games, composers, np.zeros(len(FEATURES) + len(games) + len(composers)),
                    0.0, aliases)
        rows = np.stack([model._row(f, s) for f, s in zip(examples.features, examples.styles)])
        model.weights, model.bias = _newton(rows, examples.y, l2)
        model.summary = RewardSummary(pieces=len(set(examples.groups)), ratings=int(examples.y.size),
                                      liked=int(examples.y.sum()), seed=seed, l2=l2)
        return model

    # -- files -----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "features": self.features,
            "scaler": {"mean": self.mean.tolist(), "std": self.std.tolist()},
            "labels": {"games": self.games, "composers": self.composers, "aliases": self.aliases},
            "columns": self.columns,
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "summary": self.summary.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> RewardModel:
        if data.get("format") != FORMAT:
            raise RewardError(f"Not a Mozart reward model (format {data.get('format')!r}, expected {FORMAT}).")
        labels = data["labels"]
        model = cls(list(data["features"]), np.array(data["scaler"]["mean"], np.float64),
                    np.array(data["scaler"]["std"], np.float64), list(labels["games"]), list(labels["composers"]),
                    np.array(data["weights"], np.float64), float(data["bias"]), dict(labels.get("aliases", {})),
                    RewardSummary.from_json(data.get("summary", {})))
        if len(model.weights) != len(model.columns) or len(model.mean) != len(model.features):
            raise RewardError("The reward model's weights do not match its features and labels.")
        return model

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (atomically)."""
        path = Path(path)
        atomic_write(path, json.dumps(self.to_json(), indent=1, allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RewardModel:
        path = Path(path)
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise RewardError(f"No reward model at {path}.") from None
        except (ValueError, KeyError, TypeError) as e:
            raise RewardError(f"{path} is not a readable reward model: {e}") from None

    @property
    def fingerprint(self) -> str:
        """A short hash of the model: which reward model chose a ``best_of`` piece."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def _newton(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Minimise sum log-loss + 0.5 l2 |w|^2 (+ a tiny penalty on the bias) by Newton's method."""
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, float(l2))
    penalty[-1] = BIAS_L2
    theta = np.zeros(d + 1)
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(a @ theta)
        grad = a.T @ (p - y) + penalty * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta[:-1], float(theta[-1])


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

    model = RewardModel.fit(train_records, catalog=catalog, l2=l2, seed=seed, cache=cache)
    test = _examples(test_records, cache)
    train_y = np.array([y for y, g in zip(examples.y, examples.groups) if g not in held])
    rate = float(train_y.mean())
    p = np.array([model.predict_features(f, s) for f, s in zip(test.features, test.styles)])
    majority = 1.0 if rate >= 0.5 else 0.0

    final = RewardModel.fit(records, catalog=catalog, l2=l2, seed=seed, cache=cache)
    final.summary = RewardSummary(
        pieces=len(pieces), ratings=n, liked=int(examples.y.sum()), holdout=holdout, heldout_pieces=n_out,
        heldout_ratings=int(test.y.size),
        heldout_accuracy=float(((p >= 0.5) == (test.y > 0.5)).mean()),
        baseline_accuracy=float((test.y == majority).mean()),
        heldout_log_loss=_log_loss(p, test.y),
        baseline_log_loss=_log_loss(np.full(test.y.size, rate), test.y),
        seed=seed, l2=l2)
    return final


# -- the command ---------------------------------------------------------------------------
