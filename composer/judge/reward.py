"""The reward model as a judge: the chance that a listener gives a piece 👍, from its features and style.

A logistic regression: the piece's ``piece_features`` (standardised with the training mean and
standard deviation) and one-hot indicators of the style's game and composer labels (``zelda-bach`` ->
game ``zelda``, composer ``bach``; with a checkpoint's labels, aliases resolved: game ``dink``). This
module holds the model, its file (``reward.json``) and its predictions; it is fitted from exported
ratings by ``composer/feedback/reward_fitting.py``.

The generator loads ``reward.json`` from its checkpoint folder and uses it for ``best_of``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from composer.corpus.store import atomic_write
from composer.errors import MozartError
from composer.judge.features import piece_features
from composer.music.grid import Piece

__all__ = ["DEFAULT_L2", "FORMAT", "RewardError", "RewardModel", "RewardSummary", "sigmoid", "style_labels"]

FORMAT = "mozart.reward/1"
DEFAULT_L2 = 1.0  # penalty 0.5 x l2 x |w|^2 on the summed log-loss (standardised inputs)


class RewardError(MozartError):
    """Ratings a reward model cannot be learnt from, or a reward file that cannot be used."""


class Named(Protocol):
    """A style (``generate.styles.Style``) as the reward model reads it: by its name."""

    name: str


StyleName = str | Named | None


# -- styles ------------------------------------------------------------------------------
def style_labels(style: StyleName, aliases: dict[str, str] | None = None,
                 games: Sequence[str] = (), composers: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """(game, composer) labels of a style name (a ``Style`` by its name). ``aliases`` (a
    checkpoint's) map a word to its trained label (``zelda`` -> ``dink``). A word in
    ``games`` or ``composers`` is that, in either order, as ``StyleCatalog.resolve`` reads
    it; otherwise two words are a game and a composer, one word is a game."""
    name = str(getattr(style, "name", style) or "")
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

    def labels_of(self, style: StyleName) -> tuple[str | None, str | None]:
        return style_labels(style, self.aliases, self.games, self.composers)

    def row(self, features: dict[str, float], style: StyleName) -> np.ndarray:
        """The model's inputs for a piece's ``piece_features`` in ``style``: standardised features, then one-hots."""
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
    def predict_features(self, features: dict[str, float], style: StyleName) -> float:
        """P(👍) for a piece's ``piece_features``."""
        return float(sigmoid(self.log_odds_features(features, style)))

    def log_odds_features(self, features: dict[str, float], style: StyleName) -> float:
        """log P(👍) / P(👎) for a piece's ``piece_features``: what best_of adds to the critic's."""
        return float(self.bias + self.row(features, style) @ self.weights)

    def predict(self, piece: Piece, style: StyleName = None) -> float:
        """P(👍) for ``piece`` in ``style`` (default: the style the piece records)."""
        return float(sigmoid(self.log_odds(piece, style)))

    def log_odds(self, piece: Piece, style: StyleName = None) -> float:
        """log P(👍) / P(👎) for ``piece`` in ``style`` (default: the style the piece records)."""
        if style is None:
            style = piece.extra.get("style") or "-".join(x for x in (piece.game, piece.composer) if x)
        return self.log_odds_features(piece_features(piece), style)

    def predict_many(self, pieces: Iterable[Piece], style: StyleName = None) -> list[float]:
        return [self.predict(p, style) for p in pieces]

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


def sigmoid(z):
    """The logistic function, clipped so that it never overflows."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
